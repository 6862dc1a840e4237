"""SQL of Catalog's reconciliation: stock counters against what the reservations hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import BigInteger, Uuid, cast, column, func, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.products.models import Product
from shop_catalog.reservations.models import Reservation, ReservationStatus


@dataclass(frozen=True, slots=True)
class StockDrift:
    product_id: UUID
    counted: int  # the product's stock_reserved
    held: int  # units its RESERVED reservations hold


async def stock_drift(
    session: AsyncSession, product_ids: Sequence[UUID] | None = None
) -> list[StockDrift]:
    """Products whose `stock_reserved` differs from what RESERVED reservations hold.

    One statement, so one snapshot: a reservation and its stock move commit together and
    are seen together. Reads every RESERVED reservation (no index makes a sum cheaper).
    """
    reservations = Reservation.__table__
    line = (
        func.jsonb_array_elements(reservations.c.lines)
        .table_valued(column("value", JSONB))
        .lateral("line")
    )
    product_id = cast(line.c.value["product_id"].astext, Uuid()).label("product_id")
    held = (
        select(
            product_id, func.sum(cast(line.c.value["quantity"].astext, BigInteger)).label("units")
        )
        .select_from(reservations)
        .join(line, true())
        .where(reservations.c.status == ReservationStatus.RESERVED.value)
        .group_by(product_id)
        .cte("held")
    )
    units = func.coalesce(held.c.units, 0)
    stmt = (
        select(Product.id, Product.stock_reserved, units)
        .outerjoin(held, held.c.product_id == Product.id)
        .where(Product.stock_reserved != units)
        .order_by(Product.id)
    )
    if product_ids is not None:
        stmt = stmt.where(Product.id.in_(product_ids))
    rows = (await session.execute(stmt)).all()
    return [StockDrift(pid, counted, int(held_units)) for pid, counted, held_units in rows]
