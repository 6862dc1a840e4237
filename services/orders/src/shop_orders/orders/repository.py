"""SQL for orders: the one place that knows the tables.

Placement is one statement on the API's driver pool (its own transaction); everything else
runs in the caller's session and transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from shop_common.db import DriverPool, Keyset
from shop_orders.idempotency.models import Claim
from shop_orders.orders.models import Order, OrderStatus

# A placed order in one statement, all or nothing: the key's stored response first, and
# only if this request's claim still holds the key (a takeover's token differs); then the
# order, its lines and its event, each only if the step before wrote its row. The database
# stamps the order (`now()`, the statement's transaction time) and the stored response with
# the same instant, formatted as the API writes UTC times. Run twice, the second run finds
# the key answered and writes nothing: the caller then reads the stored response.
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
    INSERT INTO orders (id, customer_id, status, total_cents, currency, pricing_source)
    SELECT $1, $2, $3, $4, $5, $6 FROM answered
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
