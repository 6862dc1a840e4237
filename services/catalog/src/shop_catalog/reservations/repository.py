"""SQL for reservations: the one row per order, created on first sight and locked."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.reservations.models import Reservation, ReservationStatus


async def lock(session: AsyncSession, order_id: uuid.UUID) -> Reservation:
    """The order's reservation, created NEW if Catalog has not heard of the order yet,
    locked FOR UPDATE: so the events of one order apply one at a time, whatever their
    order of arrival."""
    await session.execute(
        insert(Reservation)
        .values(order_id=order_id, status=ReservationStatus.NEW, lines=())
        .on_conflict_do_nothing(index_elements=[Reservation.order_id])
    )
    stmt = (
        select(Reservation)
        .where(Reservation.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).one()
