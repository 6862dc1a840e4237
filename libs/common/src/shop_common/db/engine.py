"""Async SQLAlchemy engine and session factory bound to the service's own schema."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from shop_common.tracing import instrument_engine


def create_engine(
    url: str,
    *,
    schema: str,
    application_name: str,
    pool_size: int = 10,
    max_overflow: int = 10,
    pre_ping: bool = False,
) -> AsyncEngine:
    """An asyncpg engine whose connections see only `schema` on their search path.

    `pre_ping` checks each connection as it leaves the pool (one short round trip) and
    replaces one the server dropped, so a unit of work never starts on a dead connection:
    for APIs, whose answer would otherwise be a 503 after a database restart or failover.
    """
    engine = _create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_pre_ping=pre_ping,
        connect_args={
            "server_settings": {"search_path": schema, "application_name": application_name},
            "command_timeout": 30,
            "timeout": 5,
        },
    )
    instrument_engine(engine)  # a span per statement, under a span that records
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
