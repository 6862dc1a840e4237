"""End to end: outbox -> relay -> broker -> inbox consumer, through crashes and outages."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_common.events import EventType, ProductSnapshotV1
from shop_common.messaging import Envelope, EventConsumer, OutboxRelay
from shop_common.worker import Worker

pytestmark = pytest.mark.integration

UPDATED = str(EventType.PRODUCT_UPDATED_V1)

# A relay in its own process that dies (SIGKILL) after the broker confirmed its batch and
# before it could mark the rows sent: the worst moment for at-least-once delivery.
CRASHING_RELAY = """
import asyncio, os, signal, sys
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine
from shop_common.messaging import OutboxRelay, outbox_table

async def main(db_url, schema, amqp_url, exchange):
    async def die(ids):
        print(len(ids), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    relay = OutboxRelay(
        engine=create_async_engine(db_url), table=outbox_table(MetaData(schema=schema)),
        amqp_url=amqp_url, exchange=exchange, on_confirmed=die,
    )
    await relay.publish_pending_once()

asyncio.run(main(*sys.argv[1:]))
"""


def snapshot() -> ProductSnapshotV1:
    return ProductSnapshotV1(
        id=uuid.uuid4(),
        sku="SKU",
        name="Mug",
        description="",
        price_cents=100,
        currency="EUR",
        active=True,
        version=1,
        updated_at=datetime.now(UTC),
    )


async def enqueue(db, count: int) -> list[uuid.UUID]:
    async with db.sessions() as session, session.begin():
        return [
            (await db.outbox.enqueue(session, UPDATED, (p := snapshot()), subject=p.id)).id
            for _ in range(count)
        ]


def parts(db, kit, engine: AsyncEngine) -> tuple[OutboxRelay, EventConsumer]:
    async def apply(session, envelope: Envelope, payload: ProductSnapshotV1) -> None:
        await session.execute(insert(db.effects).values(event_id=envelope.id))

    relay = OutboxRelay(
        engine=engine, table=db.outbox_table, amqp_url=kit.amqp_url, exchange=kit.exchange
    )
    consumer = EventConsumer(
        amqp_url=kit.amqp_url,
        sessionmaker=db.sessions,
        inbox=db.inbox_table,
        topology=kit.topology(retry_delays=(0.1,)),
        handlers={UPDATED: apply},
        prefetch=5,
    )
    return relay, consumer


async def effects(db) -> Counter[uuid.UUID]:
    async with db.sessions() as session:
        return Counter((await session.execute(select(db.effects.c.event_id))).scalars())


async def test_relay_killed_after_confirm_republishes_and_inbox_applies_once(
    db, kit, engine, pg_admin_url
) -> None:
    relay, consumer = parts(db, kit, engine)
    spy = await kit.spy_queue()
    ids = await enqueue(db, 3)
    async with kit.running(consumer):
        crashed = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CRASHING_RELAY,
            pg_admin_url,
            db.schema,
            kit.amqp_url,
            kit.exchange,
            stdout=subprocess.PIPE,
        )
        output, _ = await asyncio.wait_for(crashed.communicate(), 30)
        assert crashed.returncode == -signal.SIGKILL
        assert output.strip() == b"3"  # it did get its confirms before dying
        try:
            assert await relay.publish_pending_once() == 3  # nothing was marked sent
        finally:
            await relay.close()

        async def applied() -> bool:
            return set(await effects(db)) == set(ids)

        await kit.wait_until(applied, what="the effects")
        await asyncio.sleep(0.3)  # let the duplicates reach the consumer too
    copies = Counter(m.message_id for m in await kit.drain(spy))
    assert copies == Counter({str(i): 2 for i in ids})  # each event went out twice ...
    assert await effects(db) == Counter(dict.fromkeys(ids, 1))  # ... and took effect once


async def test_closing_every_broker_connection_mid_run_loses_nothing(
    db, kit, engine, amqp_url
) -> None:
    relay, consumer = parts(db, kit, engine)
    vhost = amqp_url.rsplit("/", 1)[1]
    sessions = {"queue": f"{kit.names}.events"}
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(relay, consumer).run(stop, handle_signals=False))
    ids: list[uuid.UUID] = []
    try:
        await asyncio.wait_for(consumer.ready.wait(), 15)
        ids += await enqueue(db, 5)
        outage = asyncio.create_task(
            asyncio.to_thread(
                subprocess.run,
                ["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "test"],
                check=True,
                capture_output=True,
                timeout=60,
            )
        )
        # Keep producing before, while and after the broker drops every connection.
        after = 0
        while after < 5:
            ids += await enqueue(db, 5)
            await asyncio.sleep(0.1)
            after += outage.done()
        await outage

        async def all_applied() -> bool:
            return len(await effects(db)) == len(ids)

        async def reconnected() -> bool:
            return (REGISTRY.get_sample_value("shop_consumer_sessions_total", sessions) or 0) >= 2

        await kit.wait_until(all_applied, within=30, what="every effect after the outage")
        await kit.wait_until(reconnected, within=5, what="the consumer's second session")
    finally:
        stop.set()
        await asyncio.wait_for(worker, 20)
    assert await effects(db) == Counter(dict.fromkeys(ids, 1))
