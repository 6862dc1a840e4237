"""The consumer's own database failing is not the message's fault: no retry spent, nothing
parked; the consumer pauses (not ready) and goes on when the database answers again."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from shop_common.events import EventType, OrderCancelledV1
from shop_common.messaging import (
    Backoff,
    Envelope,
    EventConsumer,
    Failure,
    PermanentError,
    to_message,
)
from shop_common.messaging.failures import failure_of

pytestmark = pytest.mark.integration

CANCELLED = str(EventType.ORDER_CANCELLED_V1)
# The whole retry ladder of these tests' topology: 0.05 + 0.1 + 0.1 s before parking.
RETRY_DELAYS = (0.05, 0.1)
MAX_RETRIES = 3


def cancelled(reason: str | None = None) -> Envelope:
    order_id = uuid.uuid4()
    return Envelope(
        id=uuid.uuid4(),
        source="/orders",
        type=CANCELLED,
        subject=str(order_id),
        time=datetime.now(UTC),
        data=OrderCancelledV1(order_id=order_id, reason=reason).to_event_data(),
    )


def consumed(kit, outcome: str) -> float:
    labels = {"queue": f"{kit.names}.events", "type": CANCELLED, "outcome": outcome}
    return REGISTRY.get_sample_value("shop_events_consumed_total", labels) or 0.0


@pytest.fixture
async def own_role(db, pg_admin_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A login role of this test's own (never the server's or another test's), with rights
    on the test's schema, and an engine that connects as it."""
    role = f"dlv_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN')
        await admin.execute(f'GRANT USAGE ON SCHEMA "{db.schema}" TO "{role}"')
        await admin.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA "{db.schema}" TO "{role}"')
        await admin.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA "{db.schema}" TO "{role}"')
        url = pg_admin_url.rsplit("@", 1)
        engine = create_async_engine(f"postgresql+asyncpg://{role}@{url[1]}", pool_size=3)
        try:
            yield role, engine
        finally:
            await engine.dispose()
            await admin.execute(f'ALTER ROLE "{role}" LOGIN')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
            )
            await admin.execute(f'DROP OWNED BY "{role}"')
            await admin.execute(f'DROP ROLE "{role}"')
    finally:
        await admin.close()


def consumer_for(db, kit, engine: AsyncEngine, handler) -> EventConsumer:
    return EventConsumer(
        amqp_url=kit.amqp_url,
        sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
        inbox=db.inbox_table,
        topology=kit.topology(retry_delays=RETRY_DELAYS, max_retries=MAX_RETRIES),
        handlers={CANCELLED: handler},
        prefetch=5,
        probe_timeout=1.0,
        pause_backoff=Backoff(initial=0.1, maximum=0.4),
    )


def picky(db):
    async def apply(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        await session.execute(insert(db.effects).values(event_id=envelope.id))
        if payload.reason == "poison":
            raise ValueError("cannot digest this")  # a handler bug: still the message's fault

    return apply


async def effects(db) -> Counter[uuid.UUID]:
    async with db.sessions() as session:
        return Counter((await session.execute(select(db.effects.c.event_id))).scalars())


async def parked_ids(kit) -> list[str]:
    parking = await kit.channel.get_queue(f"{kit.names}.events.parking")
    return [str(m.message_id) for m in await kit.drain(parking, idle=0.2)]


async def publish(kit, *envelopes: Envelope) -> None:
    exchange = await kit.channel.get_exchange(kit.exchange)
    for envelope in envelopes:
        await exchange.publish(to_message(envelope), routing_key=CANCELLED)


async def test_a_database_outage_longer_than_the_retry_ladder_parks_nothing(
    db, kit, own_role, pg_admin_url
) -> None:
    role, engine = own_role
    consumer = consumer_for(db, kit, engine, picky(db))
    before = [cancelled() for _ in range(3)]
    during = [cancelled() for _ in range(6)]
    poison = cancelled("poison")
    admin = await asyncpg.connect(pg_admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with kit.running(consumer):
            await publish(kit, *before)
            await kit.wait_until(lambda: _has(db, before), what="the first messages")
            # The database goes away for this role only: no new logins, sessions cut.
            await admin.execute(f'ALTER ROLE "{role}" NOLOGIN')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
            )
            await publish(kit, *during, poison)
            await kit.wait_until(lambda: _true(consumer.paused), what="the consumer to pause")
            assert not consumer.ready.is_set()  # readiness says not ready meanwhile
            await asyncio.sleep(2.0)  # several times the whole retry ladder
            assert consumer.paused
            assert consumed(kit, "retried") == 0
            assert await parked_ids(kit) == []
            await admin.execute(f'ALTER ROLE "{role}" LOGIN')
            await kit.wait_until(lambda: _has(db, during), within=20, what="the held messages")
            await kit.wait_until(lambda: _true(consumer.ready.is_set()), what="ready again")
            assert not consumer.paused
            await kit.wait_until(lambda: _parked_now(kit, poison), within=10, what="the poison")
    finally:
        await admin.close()
    # Every message took effect once; only the handler bug spent retries and was parked.
    assert await effects(db) == Counter({e.id: 1 for e in [*before, *during]})
    assert consumed(kit, "retried") == MAX_RETRIES
    assert consumed(kit, "parked") == 1
    assert consumed(kit, "handled") == len(before) + len(during)
    failures = {"queue": f"{kit.names}.events", "kind": "unavailable"}
    assert REGISTRY.get_sample_value("shop_consumer_infrastructure_failures_total", failures)


async def test_an_exhausted_pool_pauses_the_consumer_instead_of_retrying(
    db, kit, pg_admin_url
) -> None:
    engine = create_async_engine(pg_admin_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    consumer = consumer_for(db, kit, engine, picky(db))
    envelopes = [cancelled() for _ in range(4)]
    try:
        async with kit.running(consumer):
            async with engine.connect() as hog:  # the only connection, held elsewhere
                await hog.exec_driver_sql("SELECT 1")
                await publish(kit, *envelopes)
                await kit.wait_until(lambda: _true(consumer.paused), what="the consumer to pause")
                await asyncio.sleep(1.0)
                assert consumed(kit, "retried") == 0
                assert not await effects(db)
            await kit.wait_until(lambda: _has(db, envelopes), within=10, what="every message")
    finally:
        await engine.dispose()
    assert await effects(db) == Counter({e.id: 1 for e in envelopes})
    assert consumed(kit, "retried") == 0
    assert await parked_ids(kit) == []


class _Deadlock(asyncpg.exceptions.DeadlockDetectedError):
    pass


async def test_a_lost_connection_and_contention_are_retried_uncounted(db, kit, engine) -> None:
    """While the database answers, a broken connection or a deadlock is retried soon, outside
    the retry budget; only a failure of the handler itself spends it."""
    attempts: Counter[uuid.UUID] = Counter()
    blips = {"connection": cancelled(), "contention": cancelled()}

    async def flaky(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        attempts[envelope.id] += 1
        if attempts[envelope.id] <= 2 and envelope.id == blips["connection"].id:
            # What a backend killed under a transaction looks like to SQLAlchemy.
            raise DBAPIError("SELECT 1", None, ConnectionResetError(), connection_invalidated=True)
        if attempts[envelope.id] <= 2 and envelope.id == blips["contention"].id:
            raise _Deadlock("deadlock detected")
        await session.execute(insert(db.effects).values(event_id=envelope.id))

    consumer = consumer_for(db, kit, engine, flaky)
    async with kit.running(consumer):
        await publish(kit, *blips.values())
        await kit.wait_until(lambda: _has(db, list(blips.values())), what="both messages")
    assert consumed(kit, "retried") == 0
    assert consumed(kit, "handled") == 2
    assert {attempts[e.id] for e in blips.values()} == {3}
    assert await parked_ids(kit) == []


@pytest.mark.parametrize(
    ("exc", "answers", "failure"),
    [
        (ValueError("bug"), True, Failure.MESSAGE),
        (ConnectionError("a handler's own call"), True, Failure.MESSAGE),
        (PermanentError("no"), False, Failure.MESSAGE),
        (ConnectionRefusedError(), False, Failure.UNAVAILABLE),
        (ValueError("anything"), False, Failure.UNAVAILABLE),
        (_Deadlock("deadlock detected"), True, Failure.CONTENTION),
        (DBAPIError("x", None, OSError(), connection_invalidated=True), True, Failure.CONNECTION),
    ],
)
def test_failures_are_classified_by_whose_fault_they_are(
    exc: Exception, answers: bool, failure: Failure
) -> None:
    assert failure_of(exc, database_answers=answers) is failure


async def _has(db, envelopes: list[Envelope]) -> bool:
    done = await effects(db)
    return all(e.id in done for e in envelopes)


async def _parked_now(kit, envelope: Envelope) -> bool:
    parking = await kit.channel.get_queue(f"{kit.names}.events.parking")
    return (await parking.declare()).message_count == 1


async def _true(value: bool) -> bool:
    with contextlib.suppress(Exception):
        return bool(value)
    return False
