"""Relay throughput: how fast the orders worker's relay drains a backlog of outbox rows.

The rows are what `Outbox.enqueue` writes for `orders.order.confirmed.v1` (a real type with
a real binding: Catalog's queue), inserted in one transaction with the NOTIFY that wakes
the relay, so the relay publishes them exactly as in production: persistent, mandatory,
with publisher confirms, into a quorum queue. Catalog's worker is stopped first, so the
time measured is the relay's and the broker's, not a consumer's competing for the cores;
the queue is purged after each backlog and the table emptied and vacuumed before each one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import aio_pika
import asyncpg

EVENT_TYPE = "orders.order.confirmed.v1"
QUEUE = "catalog.events"  # where Catalog's binding routes that type

INSERT = """
INSERT INTO orders.outbox (id, source, type, subject, payload, headers, created_at)
SELECT gen_random_uuid(), '/orders', $2, g.order_id::text,
       jsonb_build_object('order_id', g.order_id::text, 'reason', NULL), '{}'::jsonb,
       clock_timestamp()
FROM (SELECT gen_random_uuid() AS order_id FROM generate_series(1, $1)) AS g
"""


@dataclass(frozen=True)
class RelayResult:
    rows: int
    drained: int  # rows published when the clock stopped (== rows unless it timed out)
    seconds: float
    events_per_s: float
    timed_out: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _purge(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(QUEUE, ensure=True)
        await queue.purge()
    finally:
        await connection.close()


async def _unsent(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM orders.outbox WHERE published_at IS NULL"
    )
    return count


async def drain(admin_url: str, amqp_url: str, rows: int, *, within: float) -> RelayResult:
    conn = await asyncpg.connect(admin_url)
    try:
        if await _unsent(conn):
            raise RuntimeError("orders outbox is not empty before the relay backlog")
        await conn.execute("DELETE FROM orders.outbox")
        await conn.execute("VACUUM (ANALYZE) orders.outbox")
        await _purge(amqp_url)
        async with conn.transaction():
            await conn.execute(INSERT, rows, EVENT_TYPE)
            await conn.execute("SELECT pg_notify('orders_outbox', '')")
        started = time.monotonic()  # committed: from here on the relay can see every row
        deadline = started + within
        while True:
            # Cheap check (an index probe) at a short interval: the clock stops within 50 ms.
            left = await conn.fetchval(
                "SELECT NOT EXISTS (SELECT 1 FROM orders.outbox WHERE published_at IS NULL)"
            )
            now = time.monotonic()
            if left or now > deadline:
                break
            await asyncio.sleep(0.05)
        seconds = now - started
        drained = rows - (0 if left else await _unsent(conn))
        return RelayResult(
            rows=rows,
            drained=drained,
            seconds=seconds,
            events_per_s=drained / seconds if seconds > 0 else 0.0,
            timed_out=not left,
        )
    finally:
        await conn.close()
