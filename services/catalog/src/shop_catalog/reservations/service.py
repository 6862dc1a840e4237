"""Reserving and releasing stock for orders; handlers of Orders' events.

Both handlers first make sure the order's reservation row exists and lock it, so the
events of one order apply one at a time whatever order they arrive in; product rows are
then locked in id order, so concurrent orders over the same products cannot deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.messaging import outbox
from shop_catalog.products.models import Product
from shop_catalog.reservations.models import Reservation, ReservationStatus
from shop_common.events import (
    EventType,
    OrderCancelledV1,
    OrderLineV1,
    OrderPlacedV1,
    RejectedLineV1,
    RejectionReason,
    StockLineV1,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
)
from shop_common.messaging import Envelope, Handler


async def on_order_placed(session: AsyncSession, _: Envelope, event: OrderPlacedV1) -> None:
    reservation = await _lock_reservation(session, event.order_id)
    if reservation.status != ReservationStatus.NEW:
        return  # already decided, or cancelled before we got here
    quantities = _merged(event.lines)
    products = await _lock_products(session, list(quantities))
    reasons = {pid: _refusal(products.get(pid), qty) for pid, qty in quantities.items()}
    if any(reasons.values()):
        reservation.status = ReservationStatus.REJECTED
        await outbox.enqueue(
            session,
            EventType.STOCK_REJECTED_V1,
            StockRejectedV1(
                order_id=event.order_id,
                lines=tuple(
                    RejectedLineV1(product_id=pid, quantity=qty, reason=reasons[pid])
                    for pid, qty in quantities.items()
                ),
            ),
            subject=event.order_id,
        )
        return
    for pid, qty in quantities.items():
        await _move_stock(session, pid, available=-qty, reserved=+qty)
    reservation.status = ReservationStatus.RESERVED
    reservation.lines = [{"product_id": str(p), "quantity": q} for p, q in quantities.items()]
    await outbox.enqueue(
        session,
        EventType.STOCK_RESERVED_V1,
        StockReservedV1(order_id=event.order_id, lines=_stock_lines(quantities)),
        subject=event.order_id,
    )


async def on_order_cancelled(session: AsyncSession, _: Envelope, event: OrderCancelledV1) -> None:
    reservation = await _lock_reservation(session, event.order_id)
    if reservation.status == ReservationStatus.NEW:
        reservation.status = ReservationStatus.CANCELLED
        return
    if reservation.status != ReservationStatus.RESERVED:
        return  # rejected, already released or already cancelled: nothing to give back
    quantities = {
        uuid.UUID(line["product_id"]): int(line["quantity"]) for line in reservation.lines
    }
    await _lock_products(session, list(quantities))
    for pid, qty in quantities.items():
        await _move_stock(session, pid, available=+qty, reserved=-qty)
    reservation.status = ReservationStatus.RELEASED
    await outbox.enqueue(
        session,
        EventType.STOCK_RELEASED_V1,
        StockReleasedV1(order_id=event.order_id, lines=_stock_lines(quantities)),
        subject=event.order_id,
    )


async def _lock_reservation(session: AsyncSession, order_id: uuid.UUID) -> Reservation:
    await session.execute(
        insert(Reservation)
        .values(order_id=order_id, status=ReservationStatus.NEW, lines=[])
        .on_conflict_do_nothing(index_elements=[Reservation.order_id])
    )
    stmt = (
        select(Reservation)
        .where(Reservation.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).one()


async def _lock_products(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Product]:
    stmt = (
        select(Product)
        .where(Product.id.in_(ids))
        .order_by(Product.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {p.id: p for p in await session.scalars(stmt)}


def _refusal(product: Product | None, quantity: int) -> RejectionReason | None:
    if product is None:
        return "unknown_product"
    if not product.active:
        return "inactive"
    if product.stock_available < quantity:
        return "insufficient_stock"
    return None


async def _move_stock(
    session: AsyncSession, product_id: uuid.UUID, *, available: int, reserved: int
) -> None:
    await session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(
            stock_available=Product.stock_available + available,
            stock_reserved=Product.stock_reserved + reserved,
            version=Product.version + 1,
            updated_at=func.now(),
        )
        .execution_options(synchronize_session=False)
    )


def _merged(lines: Sequence[OrderLineV1]) -> dict[uuid.UUID, int]:
    """Quantities per product in id order (Orders sends no duplicates; a reader is tolerant)."""
    merged: dict[uuid.UUID, int] = {}
    for line in lines:
        merged[line.product_id] = merged.get(line.product_id, 0) + line.quantity
    return dict(sorted(merged.items()))


def _stock_lines(quantities: dict[uuid.UUID, int]) -> tuple[StockLineV1, ...]:
    return tuple(StockLineV1(product_id=p, quantity=q) for p, q in quantities.items())


async def on_order_settled(_: AsyncSession, __: Envelope, ___: object) -> None:
    """Confirmed and rejected orders need nothing from Catalog today; consuming them keeps
    them routable (the relay treats an unroutable event as a failure) and leaves room for
    turning a confirmed reservation into a shipment later."""


HANDLERS: dict[str, Handler] = {
    EventType.ORDER_PLACED_V1: on_order_placed,
    EventType.ORDER_CANCELLED_V1: on_order_cancelled,
    EventType.ORDER_CONFIRMED_V1: on_order_settled,
    EventType.ORDER_REJECTED_V1: on_order_settled,
}
