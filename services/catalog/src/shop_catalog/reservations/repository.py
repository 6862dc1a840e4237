"""SQL for reservations: the one row per order, created on first sight and locked.

Plain Core statements, built once, on the table: a consumer applies one per event, and
the ORM's unit of work (identity map, flush, refresh) cost more than the SQL itself. The
rules stay on `Reservation`, which the service moves as a plain object and saves here.
"""

from __future__ import annotations

import uuid
from typing import cast

from sqlalchemy import Table, bindparam, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.reservations.models import Reservation, ReservationStatus

_TABLE = cast(Table, Reservation.__table__)
_NEW = insert(_TABLE).values(order_id=bindparam("order_id"), status=ReservationStatus.NEW, lines=())
# ON CONFLICT DO UPDATE locks the existing row as FOR UPDATE does, and RETURNING hands
# back whichever row it is (the no-op SET keeps it as it was).
_LOCK = _NEW.on_conflict_do_update(
    index_elements=[_TABLE.c.order_id], set_={"order_id": _NEW.excluded.order_id}
).returning(_TABLE.c.status, _TABLE.c.lines, _TABLE.c.rejected_lines)
_SAVE = (
    update(_TABLE)
    .where(_TABLE.c.order_id == bindparam("key"))
    .values(
        status=bindparam("status"),
        lines=bindparam("lines"),
        rejected_lines=bindparam("rejected_lines"),
        updated_at=func.now(),
    )
)


async def lock(session: AsyncSession, order_id: uuid.UUID) -> Reservation:
    """The order's reservation, created NEW if Catalog has not heard of the order yet,
    locked FOR UPDATE: so the events of one order apply one at a time, whatever their
    order of arrival. One round trip.

    The object is not in the session: move it with its own methods, then `save` it.
    """
    status, lines, rejected = (await session.execute(_LOCK, {"order_id": order_id})).one()
    return Reservation(order_id=order_id, status=status, lines=lines, rejected_lines=rejected)


async def save(session: AsyncSession, reservation: Reservation) -> None:
    """Write the reservation's status, lines and verdicts (its row is locked by `lock`)."""
    values = {
        "key": reservation.order_id,
        "status": reservation.status,
        "lines": reservation.lines,
        "rejected_lines": reservation.rejected_lines,
    }
    await session.execute(_SAVE, values)
