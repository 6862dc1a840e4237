"""Database access for routes: a request-scoped session, or the pool for single reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shop_common.state import StateKey

SESSIONMAKER = StateKey[async_sessionmaker[AsyncSession]]("sessionmaker")
# The engine in autocommit mode (`shop_common.db.autocommit`): no session, no transaction.
READS = StateKey[AsyncEngine]("reads")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with SESSIONMAKER.from_request(request)() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadsDep = Annotated[AsyncEngine, Depends(READS.dependency)]
