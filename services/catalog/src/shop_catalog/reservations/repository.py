"""SQL for reservations: the one row per order, created on first sight and locked."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.reservations.models import Reservation, ReservationStatus


async def lock(session: AsyncSession, order_id: uuid.UUID) -> Reservation:
    """The order's reservation, created NEW if Catalog has not heard of the order yet,
    locked FOR UPDATE: so the events of one order apply one at a time, whatever their
    order of arrival.

    One round trip: ON CONFLICT DO UPDATE locks the existing row as FOR UPDATE does, and
    RETURNING hands back whichever row it is (a no-op SET keeps it as it was).
    """
    new = insert(Reservation).values(order_id=order_id, status=ReservationStatus.NEW, lines=())
    upsert = new.on_conflict_do_update(
        index_elements=[Reservation.order_id], set_={"order_id": new.excluded.order_id}
    ).returning(Reservation)
    result = await session.scalars(upsert, execution_options={"populate_existing": True})
    reservation: Reservation = result.one()
    return reservation
