"""SQL for orders: the one place that knows the tables. Runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from sqlalchemy import func, select, tuple_
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
