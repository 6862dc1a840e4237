"""Reservation rules on real PostgreSQL: stored lines, one stock statement per order, and
concurrent orders over the same products."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.events import EventType, OrderCancelledV1

pytestmark = pytest.mark.integration


@contextmanager
def statements(sessions: async_sessionmaker[AsyncSession]) -> Iterator[list[str]]:
    """The SQL the sessions' engine sends while the block runs."""
    engine = sessions.kw["bind"].sync_engine
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_reservation_written_as_plain_json_still_releases(
    new_product: Any, db: Any, apply_event: Any, observe: Any
) -> None:
    product = await new_product(stock_available=5)
    await db.execute(
        "UPDATE catalog.products SET stock_available = 2, stock_reserved = 3 WHERE id = $1",
        uuid.UUID(product["id"]),
    )
    order_id = uuid.uuid4()
    lines = [{"product_id": product["id"], "quantity": 3}]
    await db.execute(
        "INSERT INTO catalog.reservations (order_id, status, lines) VALUES ($1, 'RESERVED', $2)",
        order_id,
        json.dumps(lines),
    )
    await apply_event(EventType.ORDER_CANCELLED_V1, OrderCancelledV1(order_id=order_id))
    after = await observe(order_id, [product["id"]])
    row = after.products[product["id"]]
    assert (row["stock_available"], row["stock_reserved"]) == (5, 0)
    assert after.outbox == [
        (EventType.STOCK_RELEASED_V1, {"order_id": str(order_id), "lines": lines})
    ]


async def test_duplicate_lines_are_reserved_as_one(
    placed: Any, new_product: Any, apply_event: Any, observe: Any
) -> None:
    product = await new_product(stock_available=5)
    order_id = uuid.uuid4()
    await apply_event(
        EventType.ORDER_PLACED_V1, placed(order_id, (product["id"], 1), (product["id"], 2))
    )
    after = await observe(order_id, [product["id"]])
    assert after.reservation["lines"] == [{"product_id": product["id"], "quantity": 3}]
    assert after.products[product["id"]]["stock_reserved"] == 3


async def test_all_lines_of_an_order_move_in_one_statement(
    placed: Any,
    new_product: Any,
    apply_event: Any,
    catalog_sessions: async_sessionmaker[AsyncSession],
) -> None:
    products = [await new_product(stock_available=5) for _ in range(4)]
    order_id = uuid.uuid4()
    with statements(catalog_sessions) as reserving:
        await apply_event(
            EventType.ORDER_PLACED_V1, placed(order_id, *((p["id"], 1) for p in products))
        )
    with statements(catalog_sessions) as releasing:
        await apply_event(EventType.ORDER_CANCELLED_V1, OrderCancelledV1(order_id=order_id))
    for sent in (reserving, releasing):
        assert sum(sql.startswith("UPDATE catalog.products") for sql in sent) == 1, sent


async def test_concurrent_orders_in_any_line_order_neither_deadlock_nor_oversell(
    placed: Any, new_product: Any, apply_event: Any, observe: Any
) -> None:
    products = [await new_product(stock_available=10) for _ in range(3)]
    ids = [p["id"] for p in products]
    orders = [uuid.uuid4() for _ in range(16)]

    async def place(order_id: uuid.UUID) -> None:
        await apply_event(
            EventType.ORDER_PLACED_V1, placed(order_id, *((i, 1) for i in random.sample(ids, 3)))
        )

    await asyncio.gather(*(place(order_id) for order_id in orders))
    # Cancel half of them while the rest are placed again (a redelivery): still no deadlock.
    await asyncio.gather(
        *(
            apply_event(EventType.ORDER_CANCELLED_V1, OrderCancelledV1(order_id=o))
            for o in orders[::2]
        ),
        *(place(order_id) for order_id in orders[1::2]),
    )
    outcomes = Counter(
        [(await observe(order_id, ids)).reservation["status"] for order_id in orders]
    )
    held = outcomes["RESERVED"]
    assert outcomes["RESERVED"] + outcomes["RELEASED"] == 10
    assert outcomes["REJECTED"] == 6
    final = (await observe(orders[0], ids)).products
    for product_id in ids:
        assert (final[product_id]["stock_available"], final[product_id]["stock_reserved"]) == (
            10 - held,
            held,
        )
