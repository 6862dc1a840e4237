"""Keeping the product replica: Catalog's snapshots, newest version wins."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.events import ProductSnapshotV1
from shop_orders.replica import repository as repo


async def record_snapshot(session: AsyncSession, snapshot: ProductSnapshotV1) -> bool:
    """Keep the snapshot unless a newer or equal version is held already (in any arrival order).

    Runs in the consumer's transaction. True when the replica changed.
    """
    return await repo.upsert_if_newer(session, snapshot)
