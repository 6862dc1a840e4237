"""Sessions as a service's worker opens them (its own role, its own schema), for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.db import create_engine, create_sessionmaker


@asynccontextmanager
async def role_sessions(
    url: str, schema: str, *, name: str, pool_size: int = 1, max_overflow: int = 1
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Idle connections count against the server's limit for the whole run, which every
    suite shares: keep `pool_size` small; overflow connections close when returned."""
    engine = create_engine(
        url, schema=schema, application_name=name, pool_size=pool_size, max_overflow=max_overflow
    )
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()
