"""One read-only connection to a service's schema, as that service's own role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shop_common.db import create_engine
from shop_ops.settings import Target

APPLICATION_NAME = "shop-ops"


@asynccontextmanager
async def read_only(target: Target) -> AsyncIterator[AsyncConnection]:
    """A connection whose reads all see one snapshot and that can write nothing."""
    engine = create_engine(
        target.database_url,
        schema=target.schema,
        application_name=APPLICATION_NAME,
        pool_size=1,
        max_overflow=0,
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            yield conn
    finally:
        await engine.dispose()
