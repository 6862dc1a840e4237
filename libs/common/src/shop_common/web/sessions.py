"""Database access for routes: a request-scoped session, or the driver pool for hot statements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_common.db import DriverPool
from shop_common.state import StateKey

SESSIONMAKER = StateKey[async_sessionmaker[AsyncSession]]("sessionmaker")
# Plain asyncpg for hot single statements (`shop_common.db.DriverPool`): no ORM, no BEGIN.
DRIVER_POOL = StateKey[DriverPool]("driver_pool")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with SESSIONMAKER.from_request(request)() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
# The factory itself, for a route that needs a session only now and then (no session, and
# no generator dependency to unwind, on the requests that don't).
SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(SESSIONMAKER.dependency)]
DriverPoolDep = Annotated[DriverPool, Depends(DRIVER_POOL.dependency)]
