"""SQL for orders: the one place that knows the tables. Runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import ColumnElement, Table, func, select, tuple_
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


@dataclass(frozen=True, slots=True)
class Chased:
    """An order the saga is chasing, locked, with its latest request to Catalog as the
    outbox knows it: `published_at` None while unsent; `in_outbox` False when the row is
    gone (retention) or the id unknown (orders placed before it was recorded)."""

    order: Order
    published_at: datetime | None
    in_outbox: bool
    now: datetime


async def lock_due_pending(session: AsyncSession, outbox: Table, *, limit: int) -> list[Chased]:
    """PENDING orders due for a look (`ix_orders_pending_due`), longest due first, locked;
    rows another sweeper holds are skipped."""
    return await _lock_chased(
        session, outbox, limit=limit, lines=True, where=(Order.status == OrderStatus.PENDING,)
    )


async def lock_unreleased_cancels(
    session: AsyncSession, outbox: Table, *, limit: int
) -> list[Chased]:
    """Cancelled orders whose stock Catalog reported reserved and never reported released,
    due for a look (`ix_orders_release_unacknowledged`), locked."""
    return await _lock_chased(
        session,
        outbox,
        limit=limit,
        lines=False,
        where=(
            Order.status == OrderStatus.CANCELLED,
            Order.stock_reserved_at.is_not(None),
            Order.stock_released_at.is_(None),
        ),
    )


async def _lock_chased(
    session: AsyncSession,
    outbox: Table,
    *,
    limit: int,
    lines: bool,
    where: tuple[ColumnElement[bool], ...],
) -> list[Chased]:
    """`lines=True` loads the orders' lines too (a re-sent placement carries them)."""
    stmt = (
        select(Order, outbox.c.published_at, outbox.c.id.is_not(None), func.now())
        .outerjoin(outbox, outbox.c.id == Order.catalog_request_id)
        .where(*where, Order.next_check_at <= func.now())
        .order_by(Order.next_check_at)
        .limit(limit)
        .with_for_update(of=Order, skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if not lines:
        stmt = stmt.options(raiseload(Order.lines))
    rows = (await session.execute(stmt)).all()
    return [Chased(order, published, found, now) for order, published, found, now in rows]


async def newest_answered(
    session: AsyncSession, *, created_after: datetime, answered_before: timedelta
) -> datetime | None:
    """Creation time of the newest order created after `created_after` that Catalog
    answered (CONFIRMED or REJECTED) more than `answered_before` ago; None if none.

    Walks `ix_orders_created_at_id` backwards from the newest order and stops at the first
    answered one, so it reads only the orders still waiting.
    """
    stmt = select(func.max(Order.created_at)).where(
        Order.status.in_((OrderStatus.CONFIRMED, OrderStatus.REJECTED)),
        Order.created_at > created_after,
        Order.updated_at < func.now() - answered_before,
    )
    return await session.scalar(stmt)


async def count_pending_older_than(session: AsyncSession, age: timedelta) -> int:
    stmt = select(func.count()).where(
        Order.status == OrderStatus.PENDING, Order.created_at < func.now() - age
    )
    return (await session.scalar(stmt)) or 0


async def count_unreleased_cancels(session: AsyncSession, *, cancelled_before: timedelta) -> int:
    """Cancelled orders Catalog reported holding stock for, and no release since, cancelled
    more than `cancelled_before` ago."""
    stmt = select(func.count()).where(
        Order.status == OrderStatus.CANCELLED,
        Order.stock_reserved_at.is_not(None),
        Order.stock_released_at.is_(None),
        Order.updated_at < func.now() - cancelled_before,
    )
    return (await session.scalar(stmt)) or 0
