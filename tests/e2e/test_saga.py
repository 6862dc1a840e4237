"""The order saga end to end: four real processes, real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import asyncpg
import pytest

from tests.support.e2e import Shop, eventually

pytestmark = pytest.mark.e2e


async def test_an_order_is_confirmed_and_its_stock_reserved(shop: Shop) -> None:
    a = await shop.new_product(stock_available=5)
    b = await shop.new_product(stock_available=3)
    placed = await shop.place((a["id"], 2), (b["id"], 3))
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "PENDING"
    order = await shop.final(placed.json()["id"])
    assert order["status"] == "CONFIRMED"
    for product, available, reserved in ((a, 3, 2), (b, 0, 3)):
        now = await shop.product(product["id"])
        assert (now["stock_available"], now["stock_reserved"]) == (available, reserved)


async def test_over_ordering_is_rejected_and_leaves_stock_untouched(shop: Shop) -> None:
    a = await shop.new_product(stock_available=5)
    b = await shop.new_product(stock_available=1)
    placed = await shop.place((a["id"], 2), (b["id"], 2))
    order = await shop.final(placed.json()["id"])
    assert order["status"] == "REJECTED"
    assert "insufficient_stock" in order["status_reason"]
    for product, available in ((a, 5), (b, 1)):
        now = await shop.product(product["id"])
        assert (now["stock_available"], now["stock_reserved"]) == (available, 0)


async def test_cancelling_a_confirmed_order_restores_stock_once(shop: Shop) -> None:
    product = await shop.new_product(stock_available=4)
    placed = await shop.place((product["id"], 3))
    order_id = placed.json()["id"]
    assert (await shop.final(order_id))["status"] == "CONFIRMED"
    for _ in range(3):
        cancelled = await shop.cancel(order_id)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "CANCELLED"
    restored = await eventually(
        lambda: shop.product(product["id"]), lambda p: p["stock_reserved"] == 0
    )
    assert restored["stock_available"] == 4
    await asyncio.sleep(1.0)  # a second release would show up by now
    assert (await shop.product(product["id"]))["stock_available"] == 4


async def test_a_cancel_racing_the_reservation_ends_with_nothing_reserved(
    shop: Shop, db: asyncpg.Connection
) -> None:
    product = await shop.new_product(stock_available=50)
    placed = [await shop.place((product["id"], 1)) for _ in range(10)]
    ids = [uuid.UUID(p.json()["id"]) for p in placed]
    await asyncio.gather(*(shop.cancel(str(i)) for i in ids))
    for i in ids:
        assert (await shop.order(str(i)))["status"] == "CANCELLED"

    # Wait until Catalog has settled every one of these orders (released, or cancelled
    # before it could reserve), so stock is checked after the race, not before it.
    async def settled() -> list[str]:
        rows = await db.fetch(
            "SELECT status FROM catalog.reservations WHERE order_id = ANY($1)", ids
        )
        return [r["status"] for r in rows]

    statuses = await eventually(
        settled, lambda s: len(s) == 10 and set(s) <= {"RELEASED", "CANCELLED"}, within=60
    )
    assert len(statuses) == 10
    now = await shop.product(product["id"])
    assert (now["stock_available"], now["stock_reserved"]) == (50, 0)
    releases = await db.fetch(
        "SELECT subject, count(*) AS n FROM catalog.outbox "
        "WHERE type = 'catalog.stock.released.v1' AND subject = ANY($1) GROUP BY subject",
        [str(i) for i in ids],
    )
    assert all(r["n"] == 1 for r in releases)
    assert len(releases) == statuses.count("RELEASED")


async def test_a_price_change_reaches_the_orders_replica(
    shop: Shop, db: asyncpg.Connection
) -> None:
    product = await shop.new_product(price_cents=1000)
    changed = await shop.http.patch(
        f"{shop.stack.catalog_url}/v1/products/{product['id']}",
        json={"price_cents": 1234, "name": "Repriced"},
        headers={**shop.stack.admin, "If-Match": '"1"'},
    )
    assert changed.status_code == 200

    async def replica() -> tuple[int, str, int] | None:
        row = await db.fetchrow(
            "SELECT price_cents, name, version FROM orders.product_replica WHERE product_id = $1",
            uuid.UUID(product["id"]),
        )
        return None if row is None else (row["price_cents"], row["name"], row["version"])

    assert await eventually(replica, lambda r: r == (1234, "Repriced", 2))


async def test_fifty_concurrent_orders_for_ten_units_never_oversell(shop: Shop) -> None:
    product = await shop.new_product(stock_available=10)
    placed = await asyncio.gather(*(shop.place((product["id"], 1)) for _ in range(50)))
    assert all(p.status_code == 201 for p in placed), [
        p.text for p in placed if p.status_code != 201
    ]
    finals = await asyncio.gather(*(shop.final(p.json()["id"], within=60) for p in placed))
    statuses = Counter(o["status"] for o in finals)
    assert statuses == {"CONFIRMED": 10, "REJECTED": 40}
    now = await shop.product(product["id"])
    assert (now["stock_available"], now["stock_reserved"]) == (0, 10)
    assert now["stock_available"] + now["stock_reserved"] == 10
