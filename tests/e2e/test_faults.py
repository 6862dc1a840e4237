"""Nothing lost, nothing doubled: redelivery, killed workers, dropped broker connections, poison."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

import aio_pika
import asyncpg
import pytest

from tests.support.e2e import Shop, eventually

pytestmark = pytest.mark.e2e


async def _invariant(shop: Shop, product_id: str, initial: int, orders: list[str]) -> None:
    """Reserved stock equals the units of CONFIRMED orders; nothing created or lost."""
    finals = [await shop.order(o) for o in orders]
    confirmed_units = sum(
        line["quantity"] for o in finals if o["status"] == "CONFIRMED" for line in o["lines"]
    )
    product = await shop.product(product_id)
    assert product["stock_reserved"] == confirmed_units
    assert product["stock_available"] + product["stock_reserved"] == initial


async def test_every_event_delivered_again_changes_nothing(
    shop: Shop, db: asyncpg.Connection
) -> None:
    product = await shop.new_product(stock_available=6)
    placed = [await shop.place((product["id"], 2)) for _ in range(4)]
    ids = [p.json()["id"] for p in placed]
    finals = [await shop.final(i) for i in ids]
    assert Counter(o["status"] for o in finals) == {"CONFIRMED": 3, "REJECTED": 1}
    before = await shop.product(product["id"])
    outbox_rows = await db.fetchval(
        "SELECT (SELECT count(*) FROM orders.outbox) + (SELECT count(*) FROM catalog.outbox)"
    )
    # Make both relays send every event of these orders again (a relay crash after publish
    # and before marking it sent looks exactly like this to the consumers).
    order_ids = [str(i) for i in ids]
    resent = await db.fetchval(
        "WITH a AS (UPDATE orders.outbox SET published_at = NULL WHERE subject = ANY($1) "
        "RETURNING 1), b AS (UPDATE catalog.outbox SET published_at = NULL "
        "WHERE subject = ANY($1) RETURNING 1) SELECT (SELECT count(*) FROM a) + "
        "(SELECT count(*) FROM b)",
        order_ids,
    )
    assert resent >= 4 * 3
    await db.execute("NOTIFY orders_outbox; NOTIFY catalog_outbox")
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM orders.outbox WHERE published_at IS NULL AND subject = ANY($1)",
            order_ids,
        ),
        lambda n: n == 0,
    )
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM catalog.outbox WHERE published_at IS NULL AND subject = ANY($1)",
            order_ids,
        ),
        lambda n: n == 0,
    )
    await asyncio.sleep(2.0)  # let consumers see the duplicates
    assert [await shop.order(i) for i in ids] == finals
    assert await shop.product(product["id"]) == before
    assert (
        await db.fetchval(
            "SELECT (SELECT count(*) FROM orders.outbox) + (SELECT count(*) FROM catalog.outbox)"
        )
        == outbox_rows
    ), "a duplicate delivery produced a new event"


async def test_workers_killed_mid_run_lose_nothing_and_double_nothing(shop: Shop) -> None:
    product = await shop.new_product(stock_available=15)
    ids: list[str] = []
    for round_ in range(3):
        batch = await asyncio.gather(*(shop.place((product["id"], 1)) for _ in range(8)))
        ids += [b.json()["id"] for b in batch]
        await asyncio.sleep(0.05 * round_)
        worker = "catalog-worker" if round_ % 2 == 0 else "orders-worker"
        shop.stack.restart(worker, kill=True)  # SIGKILL: relay and consumers die mid-flight
    finals = await asyncio.gather(*(shop.final(i, within=90) for i in ids))
    assert Counter(o["status"] for o in finals) == {"CONFIRMED": 15, "REJECTED": 9}
    await _invariant(shop, product["id"], 15, ids)


async def test_dropped_broker_connections_mid_run_lose_nothing(shop: Shop) -> None:
    product = await shop.new_product(stock_available=20)
    ids: list[str] = []
    for _ in range(3):
        batch = await asyncio.gather(*(shop.place((product["id"], 1)) for _ in range(6)))
        ids += [b.json()["id"] for b in batch]
        closing = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-q", "close_all_connections", "-p", shop.stack.vhost, "e2e fault"
        )
        assert await asyncio.wait_for(closing.wait(), timeout=60) == 0
    finals = await asyncio.gather(*(shop.final(i, within=120) for i in ids))
    assert Counter(o["status"] for o in finals) == {"CONFIRMED": 18}
    await _invariant(shop, product["id"], 20, ids)
    # Consumers are back: a fresh order still completes.
    fresh = await shop.place((product["id"], 1))
    assert (await shop.final(fresh.json()["id"], within=60))["status"] == "CONFIRMED"


async def test_a_malformed_message_is_parked_and_the_consumer_keeps_going(
    shop: Shop, amqp_url: str
) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("shop.events")
        marker = uuid.uuid4().hex
        await exchange.publish(
            aio_pika.Message(body=b"{not json " + marker.encode(), content_type="application/json"),
            routing_key="orders.order.placed.v1",
            mandatory=True,
        )
        await exchange.publish(
            aio_pika.Message(
                body=json.dumps({"order_id": "nope"}).encode(),
                headers={"cloudEvents_specversion": "1.0", "cloudEvents_id": marker},
            ),
            routing_key="orders.order.placed.v1",
            mandatory=True,
        )
        parking = await channel.declare_queue("catalog.events.parking", passive=True)

        async def parked_count() -> int:
            declared = await channel.declare_queue("catalog.events.parking", passive=True)
            return declared.declaration_result.message_count or 0

        await eventually(parked_count, lambda n: n >= 2)
        assert parking is not None
    finally:
        await connection.close()
    product = await shop.new_product(stock_available=1)
    placed = await shop.place((product["id"], 1))
    assert (await shop.final(placed.json()["id"]))["status"] == "CONFIRMED"
