"""SQL for the product replica."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.events import ProductSnapshotV1
from shop_orders.replica.models import ReplicaProduct


async def get_products(session: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, ReplicaProduct]:
    rows = await session.scalars(select(ReplicaProduct).where(ReplicaProduct.product_id.in_(ids)))
    return {r.product_id: r for r in rows}


async def upsert_if_newer(session: AsyncSession, snapshot: ProductSnapshotV1) -> bool:
    """Store the snapshot unless the replica already holds this or a newer version."""
    stmt = insert(ReplicaProduct).values(
        product_id=snapshot.id,
        sku=snapshot.sku,
        name=snapshot.name,
        price_cents=snapshot.price_cents,
        currency=snapshot.currency,
        active=snapshot.active,
        version=snapshot.version,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[ReplicaProduct.product_id],
        set_={
            "sku": stmt.excluded.sku,
            "name": stmt.excluded.name,
            "price_cents": stmt.excluded.price_cents,
            "currency": stmt.excluded.currency,
            "active": stmt.excluded.active,
            "version": stmt.excluded.version,
            "received_at": func.now(),
        },
        where=ReplicaProduct.version < stmt.excluded.version,
    )
    result = await session.execute(stmt.returning(ReplicaProduct.product_id))
    return result.first() is not None
