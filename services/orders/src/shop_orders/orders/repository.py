"""SQL for orders: the one place that knows the tables. Runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import cast
from uuid import UUID

from sqlalchemy import Table, bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from shop_common.db import Keyset
from shop_orders.orders.models import Order, OrderStatus


async def add_order(session: AsyncSession, order: Order) -> Order:
    session.add(order)
    await session.flush()  # eager_defaults: created_at and updated_at come back with it
    return order


async def get_order(
    session: AsyncSession, order_id: UUID, *, for_update: bool = False, lines: bool = True
) -> Order | None:
    """`lines=False` skips the second query that loads the lines (touching them raises):
    the saga's status changes never read them."""
    stmt = select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    if for_update:
        stmt = stmt.with_for_update()
    if not lines:
        stmt = stmt.options(raiseload(Order.lines))
    return (await session.scalars(stmt)).one_or_none()


async def list_orders(
    session: AsyncSession,
    *,
    limit: int,
    before: Keyset | None,
    customer_id: str | None,
    status: str | None,
) -> Sequence[Order]:
    """Newest first."""
    stmt = select(Order).order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < (before.created_at, before.id))
    if customer_id is not None:
        stmt = stmt.where(Order.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    return (await session.scalars(stmt)).all()


async def reload(session: AsyncSession, order: Order) -> Order:
    """Write the order's changes and read back what the database computed (`updated_at`)."""
    await session.flush()
    await session.refresh(order)
    return order


async def lock_stale_pending(
    session: AsyncSession, *, older_than: timedelta, limit: int
) -> Sequence[Order]:
    """PENDING orders placed more than `older_than` ago, locked (others skip them)."""
    stmt = (
        select(Order)
        .where(Order.status == OrderStatus.PENDING, Order.created_at < func.now() - older_than)
        .order_by(Order.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).all()


_ORDERS = cast(Table, Order.__table__)
# The saga's status changes, as plain statements built once: the consumer applies one per
# event, and loading the order through the ORM (identity map, flush, refresh) cost more
# than the SQL.
_LOCK_STATUS = select(_ORDERS.c.status).where(_ORDERS.c.id == bindparam("id")).with_for_update()
_SAVE_STATUS = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("key"))
    .values(status=bindparam("status"), status_reason=bindparam("reason"), updated_at=func.now())
)


async def lock_status(session: AsyncSession, order_id: UUID) -> Order | None:
    """The order's status, locked FOR UPDATE, as an `Order` outside the session that knows
    only its id and status: enough to apply a saga transition, which `save_status` writes."""
    status = await session.scalar(_LOCK_STATUS, {"id": order_id})
    if status is None:
        return None
    return Order(id=order_id, status=status)


async def save_status(session: AsyncSession, order: Order) -> None:
    """Write a transition of an order from `lock_status`; `updated_at` becomes now()."""
    values = {"key": order.id, "status": order.status, "reason": order.status_reason}
    await session.execute(_SAVE_STATUS, values)
