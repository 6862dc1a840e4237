"""Product rules: creation, optimistic-concurrency updates, deactivation and stock changes.

Each function is one unit of work and begins it here, visibly; the repository and the
outbox write inside it and never begin or commit on their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog.errors import DuplicateSku, InsufficientStock, ProductNotFound, StaleProduct
from shop_catalog.products import repository as repo
from shop_catalog.products.events import product_changed
from shop_catalog.products.models import MAX_STOCK, Product
from shop_catalog.products.schemas import ProductCreate, ProductPatch
from shop_common.db import DriverPool, Keyset, page_of_rows
from shop_common.events import EventType


async def create_product(session: AsyncSession, body: ProductCreate) -> Product:
    try:
        async with session.begin():
            product = await repo.insert_product(session, body.model_dump())
            await product_changed(session, EventType.PRODUCT_CREATED_V1, product)
            return product
    except IntegrityError as exc:
        if repo.is_unique_violation(exc, repo.SKU_UNIQUE):
            raise DuplicateSku(f"A product with sku {body.sku!r} already exists.") from exc
        raise


async def get_product(reads: DriverPool, product_id: UUID) -> Mapping[str, Any]:
    """A product as a plain row in ProductOut's shape: one statement, no transaction."""
    row = await repo.read_product(reads, product_id)
    if row is None:
        raise ProductNotFound(f"No product {product_id}.")
    return row


async def list_products(
    reads: DriverPool,
    *,
    limit: int,
    after: Keyset | None,
    q: str | None,
    active: bool | None,
    ids: Sequence[UUID] | None,
) -> dict[str, Any]:
    """A page (`Page[ProductOut]`'s shape, as plain data) of products matching the filters."""
    rows = await repo.list_products(
        reads, limit=limit + 1, after=after, q=q, active=active, ids=ids
    )
    return page_of_rows(rows, limit)


async def has_products(session: AsyncSession) -> bool:
    async with session.begin():
        return await repo.any_product(session)


async def update_product(
    session: AsyncSession, product_id: UUID, versions: list[int] | None, patch: ProductPatch
) -> Product:
    async with session.begin():
        product = await repo.update_if_version(session, product_id, versions, patch.changes())
        if product is None:
            await _raise_missing_or_stale(session, product_id)
        assert product is not None
        await product_changed(session, EventType.PRODUCT_UPDATED_V1, product)
        return product


async def deactivate_product(session: AsyncSession, product_id: UUID) -> Product | None:
    """Idempotent: returns the deactivated product, or None if it was already inactive."""
    async with session.begin():
        product = await repo.deactivate(session, product_id)
        if product is None:
            if not await repo.product_exists(session, product_id):
                raise ProductNotFound(f"No product {product_id}.")
            return None
        await product_changed(session, EventType.PRODUCT_DEACTIVATED_V1, product)
        return product


async def adjust_stock(
    session: AsyncSession, product_id: UUID, *, delta: int, reason: str, actor: str
) -> Product:
    async with session.begin():
        product = await repo.adjust_stock(session, product_id, delta, reason, actor)
        if product is None:
            if not await repo.product_exists(session, product_id):
                raise ProductNotFound(f"No product {product_id}.")
            raise InsufficientStock(
                f"Adjusting by {delta} would take available stock below 0 or the total "
                f"(available plus reserved) above {MAX_STOCK}."
            )
        return product


async def _raise_missing_or_stale(session: AsyncSession, product_id: UUID) -> None:
    if not await repo.product_exists(session, product_id):
        raise ProductNotFound(f"No product {product_id}.")
    raise StaleProduct("The product changed since you read it; GET it again and retry.")
