"""SQL for products: the one place that knows the tables.

Every change of a product row goes through `_change` (or, for stock moved by reservations,
`_MOVE_STOCK`), which bumps `version` and `updated_at` (ADR 0008: the version is the ETag
and the order key of its events).
Nothing here begins or commits a transaction: the calling service owns the unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    Update,
    bindparam,
    column,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from shop_catalog.products.models import MAX_STOCK, Product, StockAdjustment
from shop_common.db import DriverPool, Keyset, sqlstate

SKU_UNIQUE = "uq_products_sku"


@dataclass(frozen=True)
class StockMove:
    """Deltas to one product's available and reserved stock (a reservation moves units
    from one to the other, a release moves them back)."""

    product_id: UUID
    available: int
    reserved: int


def _change(*conditions: ColumnElement[bool], **values: Any) -> Update:
    """UPDATE products SET values, bumping version and updated_at, WHERE conditions."""
    return (
        update(Product)
        .where(*conditions)
        .values(**values, version=Product.version + 1, updated_at=func.now())
        .execution_options(synchronize_session=False)
    )


async def _change_one(
    session: AsyncSession, *conditions: ColumnElement[bool], **values: Any
) -> Product | None:
    """`_change` of at most one row, returning it as it is now; None if no row matched."""
    stmt = _change(*conditions, **values).returning(Product)
    stmt = stmt.execution_options(populate_existing=True)
    return (await session.scalars(stmt)).one_or_none()


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def is_unique_violation(exc: IntegrityError, constraint: str) -> bool:
    orig = getattr(exc.orig, "__cause__", None) or exc.orig
    return sqlstate(exc) == "23505" and getattr(orig, "constraint_name", None) == constraint


async def insert_product(session: AsyncSession, values: dict[str, Any]) -> Product:
    product = Product(**values)
    session.add(product)
    await session.flush()
    await session.refresh(product)
    return product


# The hot reads run on the API's plain asyncpg pool as text SQL (prepared once per
# connection): SQLAlchemy's execution path cost more than the query. The columns are in
# ProductOut's order and `id` comes as text, so a row serializes as it is.
PRODUCT_COLUMNS = (
    "id::text AS id, sku, name, description, price_cents, currency, stock_available,"
    " stock_reserved, active, version, created_at, updated_at"
)
_PRODUCT_BY_ID = f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"  # noqa: S608


async def read_product(reads: DriverPool, product_id: UUID) -> Mapping[str, Any] | None:
    """One product as a plain row: the hottest read."""
    return await reads.fetchrow(_PRODUCT_BY_ID, product_id)


async def any_product(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(exists().select_from(Product))))


async def list_products(
    reads: DriverPool,
    *,
    limit: int,
    after: Keyset | None,
    q: str | None,
    active: bool | None,
    ids: Sequence[UUID] | None,
) -> Sequence[Mapping[str, Any]]:
    """Products in (created_at, id) order, after `after`, filtered; at most `limit`."""
    conditions: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if after is not None:
        conditions.append(f"(created_at, id) > ({arg(after.created_at)}, {arg(after.id)})")
    if q:
        pattern = arg(_like_pattern(q))
        conditions.append(f"(name ILIKE {pattern} ESCAPE '\\' OR sku ILIKE {pattern} ESCAPE '\\')")
    if active is not None:
        conditions.append(f"active = {arg(active)}")
    if ids is not None:
        conditions.append(f"id = ANY({arg(list(ids))}::uuid[])")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order = f"ORDER BY created_at, id LIMIT {arg(limit)}"
    # Only placeholders and fixed fragments are formatted in: every value is a parameter.
    return await reads.fetch(f"SELECT {PRODUCT_COLUMNS} FROM products{where} {order}", *args)  # noqa: S608


@dataclass(frozen=True, slots=True)
class LockedStock:
    """What a reservation needs to know of a product it has locked."""

    active: bool
    available: int


_PRODUCTS = cast(Table, Product.__table__)
# Built once, `= ANY(:ids)` so the text (and its prepared plan) fits any number of ids.
_LOCK_PRODUCTS = (
    select(_PRODUCTS.c.id, _PRODUCTS.c.active, _PRODUCTS.c.stock_available)
    .where(_PRODUCTS.c.id == func.any(bindparam("ids", type_=ARRAY(Uuid()))))
    .order_by(_PRODUCTS.c.id)
    .with_for_update()
)


async def lock_products(session: AsyncSession, ids: Sequence[UUID]) -> Mapping[UUID, LockedStock]:
    """The known products among `ids`, locked FOR UPDATE in id order.

    One order for every caller, so two transactions over the same products queue up
    instead of deadlocking.
    """
    rows = await session.execute(_LOCK_PRODUCTS, {"ids": list(ids)})
    return {row.id: LockedStock(row.active, row.stock_available) for row in rows}


async def update_if_version(
    session: AsyncSession, product_id: UUID, versions: Sequence[int] | None, changes: dict[str, Any]
) -> Product | None:
    """Apply `changes` only if the row is at one of `versions` (None: any). Atomic."""
    conditions = [Product.id == product_id]
    if versions is not None:
        conditions.append(Product.version.in_(versions))
    return await _change_one(session, *conditions, **changes)


async def deactivate(session: AsyncSession, product_id: UUID) -> Product | None:
    """Deactivate an active product; None if it is unknown or already inactive."""
    return await _change_one(
        session, Product.id == product_id, Product.active.is_(True), active=False
    )


async def adjust_stock(
    session: AsyncSession, product_id: UUID, delta: int, reason: str, actor: str
) -> Product | None:
    """Add `delta` to available stock unless it would drop below 0 or the total (available
    plus reserved) would pass MAX_STOCK; None if refused. Bounding the total keeps releases,
    which move reserved units back to available, inside the range too."""
    new_level = Product.stock_available + delta
    product = await _change_one(
        session,
        Product.id == product_id,
        new_level >= 0,
        new_level + Product.stock_reserved <= MAX_STOCK,
        stock_available=new_level,
    )
    if product is not None:
        await session.execute(
            insert(StockAdjustment).values(
                product_id=product_id, delta=delta, reason=reason, actor=actor
            )
        )
    return product


def _move_stock_statement() -> Update:
    # Three arrays unnested into rows: the same text (and prepared plan) for any number of
    # lines. Like `_change`, it bumps version and updated_at, in Core: no ORM bulk-update
    # machinery per event.
    moves = (
        func.unnest(
            bindparam("move_ids", type_=ARRAY(Uuid())),
            bindparam("move_available", type_=ARRAY(BigInteger())),
            bindparam("move_reserved", type_=ARRAY(BigInteger())),
        )
        .table_valued(
            column("product_id", Uuid()),
            column("available", BigInteger()),
            column("reserved", BigInteger()),
        )
        .render_derived(name="moves", with_types=False)
    )
    p = _PRODUCTS.c
    return (
        update(_PRODUCTS)
        .where(p.id == moves.c.product_id)
        .values(
            stock_available=p.stock_available + moves.c.available,
            stock_reserved=p.stock_reserved + moves.c.reserved,
            version=p.version + 1,
            updated_at=func.now(),
        )
    )


_MOVE_STOCK = _move_stock_statement()


async def move_stock(session: AsyncSession, moves: Sequence[StockMove]) -> None:
    """Apply every move (at most one per product) in one UPDATE, whatever the line count.

    The caller holds the rows' locks (`lock_products`): an UPDATE joined to a list locks
    rows in whatever order the plan visits them, which alone could deadlock.
    """
    if not moves:
        return
    values = {
        "move_ids": [m.product_id for m in moves],
        "move_available": [m.available for m in moves],
        "move_reserved": [m.reserved for m in moves],
    }
    await session.execute(_MOVE_STOCK, values)


async def product_exists(session: AsyncSession, product_id: UUID) -> bool:
    found = await session.scalar(select(Product.id).where(Product.id == product_id))
    return found is not None
