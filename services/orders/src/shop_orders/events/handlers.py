"""Handlers of Catalog's events: each translates its event into one call of a service.

They run inside the consumer's inbox transaction (shop_common's consumer begins and
commits it), so they never begin one; the services they call don't either.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.events import (
    EventType,
    ProductSnapshotV1,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
)
from shop_common.messaging import Envelope, Handler
from shop_orders.orders import service as orders
from shop_orders.replica import service as replica


async def on_stock_reserved(session: AsyncSession, _: Envelope, event: StockReservedV1) -> None:
    await orders.confirm_order(session, event.order_id)


async def on_stock_rejected(session: AsyncSession, _: Envelope, event: StockRejectedV1) -> None:
    reasons = sorted({f"{line.product_id}: {line.reason}" for line in event.lines if line.reason})
    await orders.reject_order(session, event.order_id, "stock: " + "; ".join(reasons))


async def on_product_snapshot(
    session: AsyncSession, _: Envelope, snapshot: ProductSnapshotV1
) -> None:
    await replica.record_snapshot(session, snapshot)


async def on_stock_released(session: AsyncSession, _: Envelope, event: StockReleasedV1) -> None:
    """The order was cancelled already; the release is recorded so reconciliation stops
    chasing it (ADR 0012)."""
    await orders.record_release(session, event.order_id)


HANDLERS: dict[str, Handler] = {
    EventType.STOCK_RELEASED_V1: on_stock_released,
    EventType.STOCK_RESERVED_V1: on_stock_reserved,
    EventType.STOCK_REJECTED_V1: on_stock_rejected,
    EventType.PRODUCT_CREATED_V1: on_product_snapshot,
    EventType.PRODUCT_UPDATED_V1: on_product_snapshot,
    EventType.PRODUCT_DEACTIVATED_V1: on_product_snapshot,
}
