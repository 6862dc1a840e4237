"""Reservation rules: reserve all lines of an order or none, release a reservation once.

Both functions run inside the caller's unit of work, the consumer's inbox transaction
(ADR 0006), so that the effect, its event and the inbox record commit together: they
never begin or commit one. Locks are taken in one order, the reservation row first, then
the products in id order, so concurrent orders over the same products cannot deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog import metrics
from shop_catalog.messaging import outbox
from shop_catalog.products import repository as products
from shop_catalog.products.repository import LockedStock, StockMove
from shop_catalog.reservations import repository as reservations
from shop_catalog.reservations.models import Reservation, ReservationStatus
from shop_common.events import (
    EventType,
    RejectedLineV1,
    RejectionReason,
    StockLineV1,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
)


async def reserve_for_order(
    session: AsyncSession, order_id: uuid.UUID, lines: Iterable[StockLineV1]
) -> None:
    """Reserve every line, or none if any line cannot be had; publishes the outcome.

    A repeated placement of a decided order (Orders asks again when no answer came, ADR
    0012) publishes the same outcome again and moves no stock; one cancelled before its
    placement got here gets nothing.
    """
    reservation = await reservations.lock(session, order_id)
    if reservation.status is not ReservationStatus.NEW:
        await _answer_again(session, reservation, lines)
        return
    wanted = _merged(lines)
    found = await products.lock_products(session, [line.product_id for line in wanted])
    verdicts = tuple(
        RejectedLineV1(
            product_id=line.product_id,
            quantity=line.quantity,
            reason=_refusal(found.get(line.product_id), line.quantity),
        )
        for line in wanted
    )
    metrics.reservation_decided(session, (verdict.reason for verdict in verdicts))
    if any(verdict.reason for verdict in verdicts):
        reservation.reject(verdicts)
        await reservations.save(session, reservation)
        rejected = StockRejectedV1(order_id=order_id, lines=verdicts)
        await outbox.enqueue(session, EventType.STOCK_REJECTED_V1, rejected, subject=order_id)
        return
    await products.move_stock(
        session,
        [
            StockMove(line.product_id, available=-line.quantity, reserved=+line.quantity)
            for line in wanted
        ],
    )
    reservation.reserve(wanted)
    await reservations.save(session, reservation)
    reserved = StockReservedV1(order_id=order_id, lines=wanted)
    await outbox.enqueue(session, EventType.STOCK_RESERVED_V1, reserved, subject=order_id)


async def release_for_order(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Give back the order's reservation exactly once; publishes the release.

    An order not decided yet gets a tombstone instead, so its placement, if it still
    arrives, reserves nothing. Rejected orders hold nothing to give back. A repeated
    cancel of a released order (Orders asks again when the release was never reported,
    ADR 0012) publishes the release again and moves no stock.
    """
    reservation = await reservations.lock(session, order_id)
    if reservation.status is ReservationStatus.NEW:
        reservation.forbid()
        await reservations.save(session, reservation)
        return
    if reservation.status is ReservationStatus.RELEASED:
        released = StockReleasedV1(order_id=order_id, lines=reservation.lines)
        await outbox.enqueue(session, EventType.STOCK_RELEASED_V1, released, subject=order_id)
        return
    if reservation.status is not ReservationStatus.RESERVED:
        return
    held = reservation.release()
    await reservations.save(session, reservation)
    await products.lock_products(session, [line.product_id for line in held])
    await products.move_stock(
        session,
        [
            StockMove(line.product_id, available=+line.quantity, reserved=-line.quantity)
            for line in held
        ],
    )
    released = StockReleasedV1(order_id=order_id, lines=held)
    await outbox.enqueue(session, EventType.STOCK_RELEASED_V1, released, subject=order_id)


async def _answer_again(
    session: AsyncSession, reservation: Reservation, asked: Iterable[StockLineV1]
) -> None:
    """The decided outcome, published again: nothing is reserved or checked a second time."""
    order_id = reservation.order_id
    if reservation.status is ReservationStatus.RESERVED:
        reserved = StockReservedV1(order_id=order_id, lines=reservation.lines)
        await outbox.enqueue(session, EventType.STOCK_RESERVED_V1, reserved, subject=order_id)
    elif reservation.status is ReservationStatus.REJECTED:
        # Rejections decided before their verdicts were kept answer without reasons.
        verdicts = reservation.rejected_lines or tuple(
            RejectedLineV1(product_id=line.product_id, quantity=line.quantity)
            for line in _merged(asked)
        )
        rejected = StockRejectedV1(order_id=order_id, lines=verdicts)
        await outbox.enqueue(session, EventType.STOCK_REJECTED_V1, rejected, subject=order_id)
    # RELEASED or CANCELLED: the order was cancelled, and Orders waits for no placement.


def _refusal(product: LockedStock | None, quantity: int) -> RejectionReason | None:
    if product is None:
        return "unknown_product"
    if not product.active:
        return "inactive"
    if product.available < quantity:
        return "insufficient_stock"
    return None


def _merged(lines: Iterable[StockLineV1]) -> tuple[StockLineV1, ...]:
    """One line per product, in id order (Orders sends no duplicates; a reader is tolerant)."""
    quantities: dict[uuid.UUID, int] = {}
    for line in lines:
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    return tuple(StockLineV1(product_id=p, quantity=q) for p, q in sorted(quantities.items()))
