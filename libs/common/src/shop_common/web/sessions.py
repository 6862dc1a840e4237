"""The request-scoped database session dependency (the app's lifespan sets the factory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.state import StateKey

SESSIONMAKER = StateKey[async_sessionmaker[AsyncSession]]("sessionmaker")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with SESSIONMAKER.from_request(request)() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
