"""Handlers of Catalog's events. Each runs inside the consumer's inbox transaction."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.events import (
    EventType,
    OrderConfirmedV1,
    OrderRejectedV1,
    ProductSnapshotV1,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
)
from shop_common.messaging import Envelope, Handler
from shop_orders.messaging import outbox
from shop_orders.orders import repository as orders
from shop_orders.orders.models import OrderStatus
from shop_orders.replica import repository as replica

log = logging.getLogger(__name__)


async def on_stock_reserved(session: AsyncSession, _: Envelope, event: StockReservedV1) -> None:
    order = await orders.get_order(session, event.order_id, for_update=True)
    if order is None:
        log.warning("stock reserved for unknown order %s", event.order_id)
        return
    if order.status != OrderStatus.PENDING:
        # Cancelled meanwhile: Catalog releases the reservation when the cancel reaches it.
        return
    order.status = OrderStatus.CONFIRMED
    orders.touch(order)
    await outbox.enqueue(
        session,
        EventType.ORDER_CONFIRMED_V1,
        OrderConfirmedV1(order_id=order.id),
        subject=order.id,
    )


async def on_stock_rejected(session: AsyncSession, _: Envelope, event: StockRejectedV1) -> None:
    order = await orders.get_order(session, event.order_id, for_update=True)
    if order is None:
        log.warning("stock rejected for unknown order %s", event.order_id)
        return
    if order.status != OrderStatus.PENDING:
        return
    reasons = sorted({f"{line.product_id}: {line.reason}" for line in event.lines if line.reason})
    order.status = OrderStatus.REJECTED
    order.status_reason = ("stock: " + "; ".join(reasons))[:200]
    orders.touch(order)
    await outbox.enqueue(
        session,
        EventType.ORDER_REJECTED_V1,
        OrderRejectedV1(order_id=order.id, reason=order.status_reason),
        subject=order.id,
    )


async def on_product_snapshot(
    session: AsyncSession, _: Envelope, snapshot: ProductSnapshotV1
) -> None:
    await replica.upsert_if_newer(session, snapshot)


async def on_stock_released(_: AsyncSession, __: Envelope, event: StockReleasedV1) -> None:
    """The order was cancelled already; consuming the event keeps it routable."""
    log.info("stock released for cancelled order %s", event.order_id)


HANDLERS: dict[str, Handler] = {
    EventType.STOCK_RELEASED_V1: on_stock_released,
    EventType.STOCK_RESERVED_V1: on_stock_reserved,
    EventType.STOCK_REJECTED_V1: on_stock_rejected,
    EventType.PRODUCT_CREATED_V1: on_product_snapshot,
    EventType.PRODUCT_UPDATED_V1: on_product_snapshot,
    EventType.PRODUCT_DEACTIVATED_V1: on_product_snapshot,
}
