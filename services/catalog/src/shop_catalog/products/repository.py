"""SQL for products: the one place that knows the tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.products.models import MAX_STOCK, Product, StockAdjustment
from shop_common.db.errors import sqlstate
from shop_common.db.pagination import Keyset


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def is_unique_violation(exc: IntegrityError, constraint: str) -> bool:
    orig = getattr(exc.orig, "__cause__", None) or exc.orig
    return sqlstate(exc) == "23505" and getattr(orig, "constraint_name", None) == constraint


SKU_UNIQUE = "uq_products_sku"


async def insert_product(session: AsyncSession, values: dict[str, Any]) -> Product:
    product = Product(**values)
    session.add(product)
    await session.flush()
    await session.refresh(product)
    return product


async def get_product(session: AsyncSession, product_id: UUID) -> Product | None:
    return await session.get(Product, product_id, populate_existing=True)


async def list_products(
    session: AsyncSession,
    *,
    limit: int,
    after: Keyset | None,
    q: str | None,
    active: bool | None,
    ids: Sequence[UUID] | None,
) -> Sequence[Product]:
    stmt = select(Product).order_by(Product.created_at, Product.id).limit(limit)
    if after is not None:
        stmt = stmt.where(tuple_(Product.created_at, Product.id) > (after.created_at, after.id))
    if q:
        pattern = _like_pattern(q)
        stmt = stmt.where(
            or_(Product.name.ilike(pattern, escape="\\"), Product.sku.ilike(pattern, escape="\\"))
        )
    if active is not None:
        stmt = stmt.where(Product.active.is_(active))
    if ids is not None:
        stmt = stmt.where(Product.id.in_(ids))
    return (await session.scalars(stmt)).all()


async def update_if_version(
    session: AsyncSession, product_id: UUID, versions: Sequence[int] | None, changes: dict[str, Any]
) -> Product | None:
    """Apply `changes` only if the row is at one of `versions` (None: any). Atomic."""
    stmt = (
        update(Product)
        .where(Product.id == product_id)
        .values(**changes, version=Product.version + 1, updated_at=func.now())
        .returning(Product)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if versions is not None:
        stmt = stmt.where(Product.version.in_(versions))
    return (await session.scalars(stmt)).one_or_none()


async def deactivate(session: AsyncSession, product_id: UUID) -> Product | None:
    """Deactivate an active product; None if it is unknown or already inactive."""
    stmt = (
        update(Product)
        .where(Product.id == product_id, Product.active.is_(True))
        .values(active=False, version=Product.version + 1, updated_at=func.now())
        .returning(Product)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.scalars(stmt)).one_or_none()


async def adjust_stock(
    session: AsyncSession, product_id: UUID, delta: int, reason: str, actor: str
) -> Product | None:
    """Add `delta` to available stock unless it would drop below 0 or the total (available
    plus reserved) would pass MAX_STOCK; None if refused. Bounding the total keeps releases,
    which move reserved units back to available, inside the range too."""
    new_level = Product.stock_available + delta
    stmt = (
        update(Product)
        .where(
            Product.id == product_id,
            new_level >= 0,
            new_level + Product.stock_reserved <= MAX_STOCK,
        )
        .values(stock_available=new_level, version=Product.version + 1, updated_at=func.now())
        .returning(Product)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    product = (await session.scalars(stmt)).one_or_none()
    if product is not None:
        await session.execute(
            insert(StockAdjustment).values(
                product_id=product_id, delta=delta, reason=reason, actor=actor
            )
        )
    return product


async def product_exists(session: AsyncSession, product_id: UUID) -> bool:
    found = await session.scalar(select(Product.id).where(Product.id == product_id))
    return found is not None
