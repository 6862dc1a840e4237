"""Handlers of Orders' events. Each runs inside the consumer's inbox transaction.

A handler translates the event into one call of the service that owns the rule, and
never begins or commits a transaction of its own.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.reservations import service as reservations
from shop_common.events import (
    EventType,
    OrderCancelledV1,
    OrderPlacedV1,
    StockLineV1,
)
from shop_common.messaging import Envelope, Handler, acknowledge


async def on_order_placed(session: AsyncSession, _: Envelope, event: OrderPlacedV1) -> None:
    lines = (
        StockLineV1(product_id=line.product_id, quantity=line.quantity) for line in event.lines
    )
    await reservations.reserve_for_order(session, event.order_id, lines)


async def on_order_cancelled(session: AsyncSession, _: Envelope, event: OrderCancelledV1) -> None:
    await reservations.release_for_order(session, event.order_id)


# Confirmed and rejected orders need nothing from Catalog today; consuming them keeps them
# routable (the relay treats an unroutable event as a failure) and leaves room for turning
# a confirmed reservation into a shipment later. `acknowledge`: validated, then acked
# without a transaction.
on_order_settled = acknowledge

HANDLERS: dict[str, Handler] = {
    EventType.ORDER_PLACED_V1: on_order_placed,
    EventType.ORDER_CANCELLED_V1: on_order_cancelled,
    EventType.ORDER_CONFIRMED_V1: on_order_settled,
    EventType.ORDER_REJECTED_V1: on_order_settled,
}
