"""SQL for orders: the one place that knows the tables.

Placement is one statement on the API's driver pool (its own transaction); everything else
runs in the caller's session and transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Table,
    bindparam,
    case,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from shop_common.db import DriverPool, Keyset
from shop_orders.idempotency.models import Claim
from shop_orders.orders.models import Order, OrderStatus

# A placed order in one statement, all or nothing: the key's stored response first, and
# only if this request's claim still holds the key (a takeover's token differs); then the
# order, its lines and its event, each only if the step before wrote its row. The database
# stamps the order (`now()`, the statement's transaction time) and the stored response with
# the same instant, formatted as the API writes UTC times. The order remembers its event's id
# as its request to Catalog, so the saga's sweeper can tell when it left the outbox (ADR
# 0012). Run twice, the second run finds the key answered and writes nothing: the caller then
# reads the stored response.
_PLACE = """
WITH stamp AS (
    SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
), answered AS (
    UPDATE idempotency_keys
       SET response_status = 201, order_id = $1,
           response_body = $13::jsonb || jsonb_build_object('created_at', stamp.at,
                                                            'updated_at', stamp.at)
      FROM stamp
     WHERE customer_id = $2 AND key = $14 AND claim_token = $15 AND response_status IS NULL
 RETURNING response_body
), placed AS (
    INSERT INTO orders (id, customer_id, status, total_cents, currency, pricing_source,
                        catalog_request_id)
    SELECT $1, $2, $3, $4, $5, $6, $16 FROM answered
 RETURNING id
), lines AS (
    INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price_cents,
                             quantity)
    SELECT placed.id, line.* FROM placed,
           unnest($7::int[], $8::uuid[], $9::text[], $10::text[], $11::bigint[], $12::int[])
           AS line
), event AS (
    INSERT INTO outbox (id, source, type, subject, payload, headers, created_at)
    SELECT $16, $17, $18, $19, $20::jsonb, $21::jsonb, $22 FROM placed
 RETURNING id
)
SELECT answered.response_body::text AS body, (SELECT pg_notify($23, '') FROM event) AS woken
  FROM answered
"""


async def insert_placed(
    driver: DriverPool,
    order: Order,
    *,
    claim: Claim,
    response_body: Mapping[str, Any],
    event_row: Mapping[str, Any],
    notify_channel: str,
) -> str | None:
    """Write a new order with its lines, its outbox row (waking the relay) and the key's
    stored response; returns that response as JSON text, or None if `claim` no longer holds
    the key (nothing was written)."""
    lines = order.lines
    row = await driver.fetchrow(
        _PLACE,
        order.id,
        order.customer_id,
        order.status,
        order.total_cents,
        order.currency,
        order.pricing_source,
        [line.line_no for line in lines],
        [line.product_id for line in lines],
        [line.sku for line in lines],
        [line.name for line in lines],
        [line.unit_price_cents for line in lines],
        [line.quantity for line in lines],
        json.dumps(response_body),
        claim.key,
        claim.token,
        event_row["id"],
        event_row["source"],
        event_row["type"],
        event_row["subject"],
        json.dumps(event_row["payload"]),
        json.dumps(event_row["headers"]),
        event_row["created_at"],
        notify_channel,
    )
    return None if row is None else str(row["body"])


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


async def pending_backlog(session: AsyncSession) -> tuple[int, float]:
    """How many orders are PENDING, and the oldest one's age in seconds (0 when none), by
    the database's clock. Served by the partial index on PENDING orders (0003)."""
    age = func.extract("epoch", func.now() - func.min(Order.created_at))
    stmt = select(func.count(), func.coalesce(age, 0)).where(Order.status == OrderStatus.PENDING)
    count, oldest = (await session.execute(stmt)).one()
    return int(count), float(oldest)


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


_ORDERS = cast(Table, Order.__table__)
# The saga's status changes, as plain statements built once: the consumer applies one per
# event, and loading the order through the ORM (identity map, flush, refresh) cost more
# than the SQL.
_LOCK_STATUS = (
    select(
        _ORDERS.c.status,
        _ORDERS.c.status_reason,
        _ORDERS.c.stock_reserved_at,
        _ORDERS.c.created_at,
    )
    .where(_ORDERS.c.id == bindparam("id"))
    .with_for_update()
)
_SAVE_STATUS = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("key"))
    .values(
        status=bindparam("status"),
        status_reason=bindparam("reason"),
        updated_at=case(
            (bindparam("moved", type_=Boolean()), func.now()), else_=_ORDERS.c.updated_at
        ),
        stock_reserved_at=case(
            (
                bindparam("reserved", type_=Boolean()),
                func.coalesce(_ORDERS.c.stock_reserved_at, func.now()),
            ),
            else_=_ORDERS.c.stock_reserved_at,
        ),
    )
)


async def lock_status(session: AsyncSession, order_id: UUID) -> Order | None:
    """The order's status, locked FOR UPDATE, as an `Order` outside the session that knows
    only its id, status and reason, when it was placed and whether Catalog reported its
    stock reserved: enough
    to apply a saga transition, which `save_status` writes."""
    row = (await session.execute(_LOCK_STATUS, {"id": order_id})).first()
    if row is None:
        return None
    return Order(
        id=order_id,
        status=row.status,
        status_reason=row.status_reason,
        stock_reserved_at=row.stock_reserved_at,
        created_at=row.created_at,
    )


async def save_status(session: AsyncSession, order: Order, *, moved: bool) -> None:
    """Write what a saga transition changed on an order from `lock_status`: its status
    (`updated_at` becomes now() if it `moved`) and that Catalog holds its stock."""
    values = {
        "key": order.id,
        "status": order.status,
        "reason": order.status_reason,
        "moved": moved,
        "reserved": order.stock_reserved_at is not None,
    }
    await session.execute(_SAVE_STATUS, values)
