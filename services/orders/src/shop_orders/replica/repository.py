"""SQL for the product replica."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shop_orders.replica.models import ReplicaProduct


async def get_products(session: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, ReplicaProduct]:
    rows = await session.scalars(select(ReplicaProduct).where(ReplicaProduct.product_id.in_(ids)))
    return {r.product_id: r for r in rows}
