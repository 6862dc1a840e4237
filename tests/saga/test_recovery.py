"""A PENDING order waits for Catalog's answer through outages and lost messages, and ends
CONFIRMED (or REJECTED) as its stock says (ADR 0012): real workers, PostgreSQL, RabbitMQ.

Outages and losses are made for real where that is quick (a worker on a broker URL nothing
listens on, a queue purged); lengths of time are made by moving timestamps back.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika
import asyncpg
import pytest

from tests.saga.conftest import BROKER_DOWN, Workers
from tests.support.e2e import Shop, eventually

pytestmark = pytest.mark.integration


async def place(shop: Shop, product: dict[str, Any], quantity: int) -> str:
    placed = await shop.place((product["id"], quantity))
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "PENDING"
    order_id: str = placed.json()["id"]
    return order_id


async def stock(shop: Shop, product: dict[str, Any]) -> tuple[int, int]:
    now = await shop.product(product["id"])
    return now["stock_available"], now["stock_reserved"]


async def events_of(sdb: asyncpg.Connection, schema: str, order_id: str) -> list[str]:
    rows = await sdb.fetch(
        f"SELECT type FROM {schema}.outbox WHERE subject = $1 ORDER BY seq",
        order_id,
    )
    return [row["type"] for row in rows]


async def all_published(sdb: asyncpg.Connection, schema: str, order_id: str) -> None:
    await eventually(
        lambda: sdb.fetchval(
            f"SELECT count(*) FROM {schema}.outbox WHERE subject = $1 AND published_at IS NULL",
            order_id,
        ),
        lambda unsent: unsent == 0,
        within=15,
    )


async def lose_everything_queued_for(amqp_url: str, service: str) -> None:
    """What a purged queue (or a parked message an operator threw away) looks like."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{service}.events", passive=True)
        await queue.purge()
    finally:
        await connection.close()


async def test_an_order_that_waited_out_a_broker_outage_longer_than_the_old_timeout_confirms(
    shop: Shop, workers: Workers, sdb: asyncpg.Connection
) -> None:
    workers.start("catalog")
    product = await shop.new_product(stock_available=5)
    order_id = await place(shop, product, 2)
    # The broker has been down for 20 minutes since the order was accepted (the old
    # sweeper cancelled PENDING orders after 15); its placement is still in the outbox.
    await sdb.execute(
        "UPDATE orders.orders SET created_at = created_at - interval '20 minutes' WHERE id = $1;",
        uuid.UUID(order_id),
    )
    workers.start("orders", broker=BROKER_DOWN)
    await asyncio.sleep(1.5)  # housekeeping has swept several times (at start, then each 0.2 s)
    assert (await shop.order(order_id))["status"] == "PENDING"
    await workers.stop("orders")

    workers.start("orders")  # the broker is back
    assert (await shop.final(order_id, within=15))["status"] == "CONFIRMED"
    assert await stock(shop, product) == (3, 2)
    # Nothing was sent again while the placement sat in the outbox.
    assert await events_of(sdb, "orders", order_id) == [
        "orders.order.placed.v1",
        "orders.order.confirmed.v1",
    ]


async def test_a_placement_lost_after_the_broker_took_it_is_sent_again_and_confirms(
    shop: Shop, workers: Workers, sdb: asyncpg.Connection
) -> None:
    product = await shop.new_product(stock_available=5)
    order_id = await place(shop, product, 2)
    # The broker confirmed it ten minutes ago, then it was lost before Catalog read it.
    await sdb.execute(
        "UPDATE orders.outbox SET published_at = now() - interval '10 minutes' WHERE subject = $1",
        order_id,
    )
    workers.start("catalog")
    workers.start("orders")
    assert (await shop.final(order_id, within=15))["status"] == "CONFIRMED"
    assert await stock(shop, product) == (3, 2)
    placements = [t for t in await events_of(sdb, "orders", order_id) if t.endswith("placed.v1")]
    assert len(placements) == 2  # the original and one copy


@pytest.mark.parametrize(
    ("quantity", "final", "stock_after"),
    [(2, "CONFIRMED", (3, 2)), (9, "REJECTED", (5, 0))],
)
async def test_an_answer_lost_on_its_way_back_is_given_again_and_moves_no_stock_twice(
    shop: Shop,
    workers: Workers,
    sdb: asyncpg.Connection,
    saga_amqp_url: str,
    quantity: int,
    final: str,
    stock_after: tuple[int, int],
) -> None:
    product = await shop.new_product(stock_available=5)
    workers.start("orders")
    order_id = await place(shop, product, quantity)
    await all_published(sdb, "orders", order_id)
    await workers.stop("orders")
    workers.start("catalog")  # decides, and answers into Orders' queue
    await eventually(
        lambda: sdb.fetchval(
            "SELECT status FROM catalog.reservations WHERE order_id = $1", uuid.UUID(order_id)
        ),
        lambda status: status in ("RESERVED", "REJECTED"),
        within=15,
    )
    await all_published(sdb, "catalog", order_id)
    await lose_everything_queued_for(saga_amqp_url, "orders")
    await sdb.execute(
        "UPDATE orders.outbox SET published_at = published_at - interval '10 minutes'"
        " WHERE subject = $1",
        order_id,
    )

    workers.start("orders")
    order = await shop.final(order_id, within=15)
    assert order["status"] == final
    if final == "REJECTED":
        assert "insufficient_stock" in order["status_reason"]  # the verdicts came back too
    assert await stock(shop, product) == stock_after
    answers = [t for t in await events_of(sdb, "catalog", order_id) if ".stock." in t]
    assert len(answers) == 2  # the same answer, given twice
    assert answers[0] == answers[1]


async def test_a_cancel_catalog_never_got_is_sent_again_and_the_stock_comes_back(
    shop: Shop, workers: Workers, sdb: asyncpg.Connection
) -> None:
    product = await shop.new_product(stock_available=5)
    workers.start("catalog")
    workers.start("orders")
    order_id = await place(shop, product, 2)
    assert (await shop.final(order_id, within=15))["status"] == "CONFIRMED"
    await workers.stop("orders")
    assert (await shop.cancel(order_id)).json()["status"] == "CANCELLED"
    # The broker took the cancel ten minutes ago and lost it: Catalog still holds the stock.
    await sdb.execute(
        "UPDATE orders.outbox SET published_at = now() - interval '10 minutes'"
        " WHERE subject = $1 AND type = 'orders.order.cancelled.v1'",
        order_id,
    )
    await sdb.execute(
        "UPDATE orders.orders SET updated_at = now() - interval '10 minutes' WHERE id = $1",
        uuid.UUID(order_id),
    )
    assert await stock(shop, product) == (3, 2)

    workers.start("orders")  # its reconciliation runs at start
    await eventually(lambda: stock(shop, product), lambda s: s == (5, 0), within=15)
    await eventually(
        lambda: sdb.fetchval(
            "SELECT stock_released_at IS NOT NULL FROM orders.orders WHERE id = $1",
            uuid.UUID(order_id),
        ),
        bool,
        within=15,
    )
    assert await stock(shop, product) == (5, 0)
