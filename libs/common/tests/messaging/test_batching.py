"""Batched consumption: several deliveries per transaction, every per-message rule intact."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from shop_common.events import EventType, OrderCancelledV1
from shop_common.messaging import Envelope, EventConsumer, to_message

pytestmark = pytest.mark.integration

CANCELLED = str(EventType.ORDER_CANCELLED_V1)


def cancelled(reason: str | None = None, *, event_id: uuid.UUID | None = None) -> Envelope:
    order_id = uuid.uuid4()
    return Envelope(
        id=event_id or uuid.uuid4(),
        source="/orders",
        type=CANCELLED,
        subject=str(order_id),
        time=datetime.now(UTC),
        data=OrderCancelledV1(order_id=order_id, reason=reason).to_event_data(),
    )


async def publish(kit, *envelopes: Envelope) -> None:
    target = await kit.channel.get_exchange(kit.exchange)
    for envelope in envelopes:
        await target.publish(to_message(envelope), routing_key=CANCELLED)


def consumed(queue: str, outcome: str) -> float:
    labels = {"queue": queue, "type": CANCELLED, "outcome": outcome}
    return REGISTRY.get_sample_value("shop_events_consumed_total", labels) or 0.0


async def effects(db) -> Counter[uuid.UUID]:
    async with db.sessions() as session:
        return Counter((await session.execute(select(db.effects.c.event_id))).scalars())


class Gate:
    """Holds the first delivery's transaction open until the rest are in the consumer's hands,
    so they arrive as one batch."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    async def __call__(self) -> None:
        if not self.open.is_set():
            self.entered.set()
            await self.open.wait()


async def test_what_arrives_together_commits_together_and_each_is_acked_after(db, kit) -> None:
    gate = Gate()
    transactions: dict[uuid.UUID, int] = {}

    async def apply(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        await gate()
        transactions[envelope.id] = (await session.execute(text("SELECT txid_current()"))).one()[0]
        await session.execute(insert(db.effects).values(event_id=envelope.id))

    consumer = EventConsumer(
        amqp_url=kit.amqp_url,
        sessionmaker=db.sessions,
        inbox=db.inbox_table,
        topology=kit.topology(),
        handlers={CANCELLED: apply},
        prefetch=20,
    )
    first, rest = cancelled(), [cancelled() for _ in range(8)]
    async with kit.running(consumer):
        queue = await kit.channel.get_queue(consumer.topology.queue)
        await publish(kit, first)
        await asyncio.wait_for(gate.entered.wait(), 10)
        await publish(kit, *rest)
        await asyncio.sleep(0.5)  # all in the consumer's hands, none acked yet
        assert (await queue.declare()).message_count == 0
        assert consumed(consumer.topology.queue, "handled") == 0
        gate.open.set()
        await kit.wait_until(lambda: _count_is(db, 9), what="nine effects")
        await kit.wait_until(
            lambda: _true(consumed(consumer.topology.queue, "handled") == 9), what="nine acks"
        )
    assert len({transactions[e.id] for e in rest}) == 1  # one transaction for the batch ...
    assert transactions[first.id] != transactions[rest[0].id]  # ... after the first one's
    assert await effects(db) == Counter({e.id: 1 for e in [first, *rest]})
    assert (await queue.declare()).message_count == 0  # every one was acked


async def test_a_failing_message_fails_alone_and_a_duplicate_in_the_batch_applies_once(
    db, kit
) -> None:
    gate = Gate()
    calls: Counter[uuid.UUID] = Counter()

    async def apply(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        await gate()
        calls[envelope.id] += 1
        await session.execute(insert(db.effects).values(event_id=envelope.id))
        if payload.reason == "poison":
            raise ValueError("cannot digest this")

    consumer = EventConsumer(
        amqp_url=kit.amqp_url,
        sessionmaker=db.sessions,
        inbox=db.inbox_table,
        topology=kit.topology(retry_delays=(0.05,), max_retries=1),
        handlers={CANCELLED: apply},
        prefetch=20,
    )
    queue = consumer.topology.queue
    first, good, poison, later = cancelled(), cancelled(), cancelled("poison"), cancelled()
    async with kit.running(consumer):
        await publish(kit, first)
        await asyncio.wait_for(gate.entered.wait(), 10)
        await publish(kit, good, good, poison, later)  # `good` twice in one batch
        await asyncio.sleep(0.5)
        gate.open.set()
        parking = await kit.channel.get_queue(consumer.topology.parking_queue, ensure=False)

        async def parked() -> bool:
            return (await parking.declare()).message_count == 1

        await kit.wait_until(parked, what="the poison parked")
        await kit.wait_until(lambda: _count_is(db, 3), what="the three good effects")
    assert await effects(db) == Counter({first.id: 1, good.id: 1, later.id: 1})
    assert consumed(queue, "handled") == 3
    assert consumed(queue, "duplicate") == 1
    assert consumed(queue, "retried") == 1  # only the poison, and only its own retries
    assert consumed(queue, "parked") == 1
    # The batch ran once, rolled back, and ran again one message per transaction.
    assert calls[good.id] == 2
    assert calls[later.id] == 1  # the batch stopped at the poison
    [message] = await kit.drain(parking, idle=0.1)
    assert message.message_id == str(poison.id)


async def test_batches_of_two_consumers_that_deadlock_both_finish_with_nothing_retried(
    db, kit, engine
) -> None:
    """Two replicas' batches lock the same two rows in opposite orders: PostgreSQL breaks the
    deadlock, the losing batch is applied again one message per transaction, and nothing is
    counted as a retry, parked or applied twice."""
    rows = Table("locks", MetaData(schema=db.schema), Column("k", Integer, primary_key=True))
    async with engine.begin() as conn:
        await conn.run_sync(rows.metadata.create_all)
        await conn.execute(insert(rows), [{"k": 1}, {"k": 2}])
    gates = {"a": Gate(), "b": Gate()}
    first_locks = {"a": asyncio.Event(), "b": asyncio.Event()}
    calls: Counter[uuid.UUID] = Counter()

    def handler(replica: str):
        async def apply(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
            await gates[replica]()
            calls[envelope.id] += 1
            if payload.reason is not None:  # "<first or second>:<row>"
                position, key = payload.reason.split(":")
                await session.execute(
                    select(rows.c.k).where(rows.c.k == int(key)).with_for_update()
                )
                if position == "first" and not first_locks[replica].is_set():
                    first_locks[replica].set()
                    await asyncio.wait_for(
                        asyncio.gather(*(e.wait() for e in first_locks.values())), 10
                    )
            await session.execute(insert(db.effects).values(event_id=envelope.id))

        return apply

    # Two consumers of one queue would share its messages at random: each replica gets a
    # queue of its own (its share of the work), over the same database, and its messages
    # are published straight to that queue.
    consumers = {
        replica: EventConsumer(
            amqp_url=kit.amqp_url,
            sessionmaker=db.sessions,
            inbox=db.inbox_table,
            topology=kit.topology(service=f"{kit.names}{replica}"),
            handlers={CANCELLED: handler(replica)},
            prefetch=10,
        )
        for replica in ("a", "b")
    }
    warm = {r: cancelled() for r in consumers}
    batches = {
        "a": [cancelled("first:1"), cancelled("second:2")],
        "b": [cancelled("first:2"), cancelled("second:1")],
    }

    async def send(replica: str, *envelopes: Envelope) -> None:
        for envelope in envelopes:
            await kit.channel.default_exchange.publish(
                to_message(envelope), routing_key=consumers[replica].topology.queue
            )

    async with kit.running(*consumers.values()):
        for replica in consumers:
            await send(replica, warm[replica])
            await asyncio.wait_for(gates[replica].entered.wait(), 10)
        for replica in consumers:
            await send(replica, *batches[replica])
        await asyncio.sleep(0.5)
        for gate in gates.values():
            gate.open.set()
        await kit.wait_until(lambda: _count_is(db, 6), within=30, what="every effect")
    everything = [*warm.values(), *batches["a"], *batches["b"]]
    assert await effects(db) == Counter({e.id: 1 for e in everything})
    for consumer in consumers.values():
        assert consumed(consumer.topology.queue, "retried") == 0
        assert consumed(consumer.topology.queue, "parked") == 0
    # One batch lost the deadlock and ran again, one message per transaction.
    assert sum(calls.values()) > len(everything)


async def _count_is(db, n: int) -> bool:
    return sum((await effects(db)).values()) == n


async def _true(value: bool) -> bool:
    return value


async def test_a_batch_waits_briefly_behind_a_lock_then_goes_one_by_one(db, kit, engine) -> None:
    """A batch holds its messages' locks until it commits, so it does not queue behind
    another transaction for long: after `batch_lock_timeout` its messages go one by one,
    and those wait as long as they need. Nothing is counted as a retry."""
    rows = Table("held", MetaData(schema=db.schema), Column("k", Integer, primary_key=True))
    async with engine.begin() as conn:
        await conn.run_sync(rows.metadata.create_all)
        await conn.execute(insert(rows), [{"k": 1}])
    gate = Gate()
    calls: Counter[uuid.UUID] = Counter()

    async def apply(session, envelope: Envelope, payload: OrderCancelledV1) -> None:
        await gate()
        calls[envelope.id] += 1
        if payload.reason == "locks":
            await session.execute(select(rows.c.k).where(rows.c.k == 1).with_for_update())
        await session.execute(insert(db.effects).values(event_id=envelope.id))

    consumer = EventConsumer(
        amqp_url=kit.amqp_url,
        sessionmaker=db.sessions,
        inbox=db.inbox_table,
        topology=kit.topology(),
        handlers={CANCELLED: apply},
        prefetch=10,
        batch_lock_timeout=0.2,
    )
    first, batch = cancelled(), [cancelled(), cancelled("locks")]
    async with kit.running(consumer):
        await publish(kit, first)
        await asyncio.wait_for(gate.entered.wait(), 10)
        await publish(kit, *batch)
        await asyncio.sleep(0.5)
        async with engine.connect() as holder:  # another transaction holds the row
            await holder.execute(select(rows.c.k).with_for_update())
            gate.open.set()
            await asyncio.sleep(1.5)
            # The batch gave up: its first message is in, the other one waits for the lock.
            assert sum((await effects(db)).values()) == 2
            await holder.rollback()
        await kit.wait_until(lambda: _count_is(db, 3), what="every effect")
    assert await effects(db) == Counter({e.id: 1 for e in [first, *batch]})
    assert calls[batch[1].id] == 2  # in the batch (gave up), then alone (waited)
    assert consumed(consumer.topology.queue, "retried") == 0
