"""Each handler of Catalog's events as a unit of work: applied twice, the second time changes
nothing (order status, outbox rows, replica row), on real PostgreSQL.

The consumer's inbox normally drops the duplicate before the handler runs; these tests call
the handler directly, inside a transaction as the consumer would, to prove that the handler
itself is idempotent (the inbox is a second line, not the only one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.auth import Principal
from shop_common.events import (
    EventPayload,
    EventType,
    ProductSnapshotV1,
    RejectedLineV1,
    StockLineV1,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
    parse_payload,
)
from shop_common.messaging import Envelope
from shop_orders.events.handlers import HANDLERS
from shop_orders.messaging import outbox
from shop_orders.orders import service
from shop_orders.orders.models import Order, PricedLine, PricingSource
from tests.support import ServiceDb
from tests.support.sessions import role_sessions

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]
S = TypeVar("S")
ADMIN = Principal(subject="root", roles=frozenset({"admin"}))


@pytest.fixture(scope="session")
async def sessions(orders_db: ServiceDb) -> AsyncIterator[Sessions]:
    """Sessions as the worker's: Orders' own role, Orders' schema."""
    # One test at a time uses one session: keep the shared server's connection slots free.
    async with role_sessions(orders_db.url, orders_db.schema, name="orders-test") as sessions:
        yield sessions


@dataclass(frozen=True)
class OrderState:
    status: str
    status_reason: str | None
    updated_at: datetime
    outbox: list[tuple[str, dict[str, Any]]]


async def order_state(db: asyncpg.Connection, order_id: uuid.UUID) -> OrderState:
    row = await db.fetchrow(
        "SELECT status, status_reason, updated_at FROM orders.orders WHERE id = $1", order_id
    )
    assert row is not None
    events = await db.fetch(
        "SELECT type, payload FROM orders.outbox WHERE subject = $1 ORDER BY seq", str(order_id)
    )
    return OrderState(
        status=row["status"],
        status_reason=row["status_reason"],
        updated_at=row["updated_at"],
        outbox=[(e["type"], json.loads(e["payload"])) for e in events],
    )


async def replica_row(db: asyncpg.Connection, product_id: uuid.UUID) -> dict[str, Any]:
    row = await db.fetchrow(
        "SELECT * FROM orders.product_replica WHERE product_id = $1", product_id
    )
    assert row is not None
    return dict(row)


async def deliver(sessions: Sessions, event_type: EventType, payload: EventPayload) -> None:
    """One delivery as the consumer makes it after its inbox check: parse, handle, commit."""
    data = payload.to_event_data()
    envelope = Envelope(
        id=uuid.uuid4(),
        source="/catalog",
        type=event_type,
        subject=str(data.get("order_id") or data.get("id")),
        time=datetime.now(UTC),
        data=data,
    )
    async with sessions() as session, session.begin():
        await HANDLERS[event_type](session, envelope, parse_payload(event_type, data))


async def apply_twice(
    sessions: Sessions,
    event_type: EventType,
    payload: EventPayload,
    observe: Callable[[], Awaitable[S]],
) -> S:
    """What the first application left, after checking the second left it exactly so."""
    await deliver(sessions, event_type, payload)
    first = await observe()
    await deliver(sessions, event_type, payload)
    assert await observe() == first
    return first


PRODUCT = uuid.uuid4()


async def placed_order(sessions: Sessions, *, cancelled: bool = False) -> uuid.UUID:
    """A PENDING order with its placed event, as placement leaves it (optionally cancelled)."""
    line = PricedLine(PRODUCT, "SKU-1", "Thing", unit_price_cents=250, quantity=2)
    order, placed = Order.place(
        f"handlers-{uuid.uuid4().hex[:8]}",
        [line],
        currency="EUR",
        pricing_source=PricingSource.CATALOG,
    )
    async with sessions() as session, session.begin():
        session.add(order)
        await outbox.enqueue(session, placed.type, placed.payload, subject=placed.subject)
    if cancelled:
        async with sessions() as session:
            await service.cancel_order(session, ADMIN, order.id)
    return order.id


def reserved(order_id: uuid.UUID) -> StockReservedV1:
    return StockReservedV1(order_id=order_id, lines=(StockLineV1(product_id=PRODUCT, quantity=2),))


def rejected(order_id: uuid.UUID) -> StockRejectedV1:
    line = RejectedLineV1(product_id=PRODUCT, quantity=2, reason="insufficient_stock")
    return StockRejectedV1(order_id=order_id, lines=(line,))


async def test_stock_reserved_confirms_once(sessions: Sessions, db: asyncpg.Connection) -> None:
    order_id = await placed_order(sessions)
    after = await apply_twice(
        sessions, EventType.STOCK_RESERVED_V1, reserved(order_id), lambda: order_state(db, order_id)
    )
    assert after.status == "CONFIRMED"
    assert after.outbox[1:] == [
        ("orders.order.confirmed.v1", {"order_id": str(order_id), "reason": None})
    ]


async def test_stock_rejected_rejects_once_with_the_reasons(
    sessions: Sessions, db: asyncpg.Connection
) -> None:
    order_id = await placed_order(sessions)
    after = await apply_twice(
        sessions, EventType.STOCK_REJECTED_V1, rejected(order_id), lambda: order_state(db, order_id)
    )
    reason = f"stock: {PRODUCT}: insufficient_stock"
    assert (after.status, after.status_reason) == ("REJECTED", reason)
    assert after.outbox[1:] == [
        ("orders.order.rejected.v1", {"order_id": str(order_id), "reason": reason})
    ]


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [(EventType.STOCK_RESERVED_V1, reserved), (EventType.STOCK_REJECTED_V1, rejected)],
)
async def test_a_late_outcome_leaves_a_cancelled_order_alone(
    sessions: Sessions,
    db: asyncpg.Connection,
    event_type: EventType,
    payload: Callable[[uuid.UUID], EventPayload],
) -> None:
    order_id = await placed_order(sessions, cancelled=True)
    before = await order_state(db, order_id)
    after = await apply_twice(
        sessions, event_type, payload(order_id), lambda: order_state(db, order_id)
    )
    assert after == before
    assert [t for t, _ in before.outbox] == ["orders.order.placed.v1", "orders.order.cancelled.v1"]


async def test_an_outcome_for_an_unknown_order_changes_nothing(
    sessions: Sessions, db: asyncpg.Connection
) -> None:
    order_id = uuid.uuid4()
    for event_type, payload in [
        (EventType.STOCK_RESERVED_V1, reserved(order_id)),
        (EventType.STOCK_REJECTED_V1, rejected(order_id)),
    ]:
        await apply_twice(sessions, event_type, payload, lambda: _count_rows(db, order_id))
    assert await _count_rows(db, order_id) == {"orders": 0, "outbox": 0}


async def _count_rows(db: asyncpg.Connection, order_id: uuid.UUID) -> dict[str, Any]:
    return {
        "orders": await db.fetchval("SELECT count(*) FROM orders.orders WHERE id = $1", order_id),
        "outbox": await db.fetchval(
            "SELECT count(*) FROM orders.outbox WHERE subject = $1", str(order_id)
        ),
    }


async def test_stock_released_changes_nothing(sessions: Sessions, db: asyncpg.Connection) -> None:
    order_id = await placed_order(sessions, cancelled=True)
    before = await order_state(db, order_id)
    released = StockReleasedV1(
        order_id=order_id, lines=(StockLineV1(product_id=PRODUCT, quantity=2),)
    )
    after = await apply_twice(
        sessions, EventType.STOCK_RELEASED_V1, released, lambda: order_state(db, order_id)
    )
    assert after == before


def snapshot(product_id: uuid.UUID, version: int, **changes: Any) -> ProductSnapshotV1:
    fields: dict[str, Any] = {
        "id": product_id,
        "sku": "SKU-R",
        "name": "Replicated",
        "description": "",
        "price_cents": 300,
        "currency": "EUR",
        "active": True,
        "version": version,
        "updated_at": datetime.now(UTC),
    }
    return ProductSnapshotV1(**{**fields, **changes})


async def test_product_events_keep_the_replica_once_each(
    sessions: Sessions, db: asyncpg.Connection
) -> None:
    product_id = uuid.uuid4()

    def row() -> Awaitable[dict[str, Any]]:
        return replica_row(db, product_id)

    created = await apply_twice(
        sessions, EventType.PRODUCT_CREATED_V1, snapshot(product_id, 1), row
    )
    assert (created["version"], created["price_cents"], created["active"]) == (1, 300, True)

    updated = await apply_twice(
        sessions, EventType.PRODUCT_UPDATED_V1, snapshot(product_id, 2, price_cents=450), row
    )
    assert (updated["version"], updated["price_cents"]) == (2, 450)

    deactivated = await apply_twice(
        sessions,
        EventType.PRODUCT_DEACTIVATED_V1,
        snapshot(product_id, 3, price_cents=450, active=False),
        row,
    )
    assert (deactivated["version"], deactivated["active"]) == (3, False)

    # An older snapshot arriving late is a no-op too, whatever its type.
    stale = await apply_twice(
        sessions, EventType.PRODUCT_UPDATED_V1, snapshot(product_id, 2, name="Old"), row
    )
    assert stale == deactivated
