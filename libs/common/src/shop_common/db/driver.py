"""A plain asyncpg pool for an API's hot statements: no ORM, no transaction around them.

The hottest statements (a product by id, a page of products, claiming an Idempotency-Key,
writing an order) cost more in SQLAlchemy's execution path than in PostgreSQL. They run
here instead, as single statements in autocommit (prepared once per connection, which
asyncpg caches), on connections that see only the service's schema. Everything else stays
on the SQLAlchemy engine and its units of work.

A connection the server dropped (a restart, `pg_terminate_backend`, a failover) costs one
retry on a fresh connection, so a statement sent here must be safe to run twice: a read, or
a write whose own conditions make a repeat a no-op (the repository that writes it says how).
When the database cannot be reached, the call raises `DatabaseUnavailable` (503 with
`Retry-After`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from shop_common.db.errors import DatabaseUnavailable, is_connection_error
from shop_common.tracing import db_span

__all__ = ["DriverPool"]

Row = Mapping[str, Any]


async def _keep_state(_: asyncpg.Connection) -> None:
    """Release without asyncpg's reset (a round trip of UNLISTEN, RESET ALL, ...): these
    connections only ever run single statements, which leave no session state behind."""


class DriverPool:
    """Up to `size` connections, opened on first use and kept while in use."""

    def __init__(
        self,
        url: str,
        *,
        schema: str,
        application_name: str,
        size: int,
        retry_after_seconds: int = 1,
    ) -> None:
        if size < 1:
            raise ValueError("a driver pool needs at least one connection")
        # The services' URLs name SQLAlchemy's driver (postgresql+asyncpg://); asyncpg wants
        # the plain scheme.
        parsed = make_url(url)
        self._dsn = parsed.set(drivername="postgresql").render_as_string(False)
        self._database = parsed.database
        self._schema = schema
        self._application_name = application_name
        self.size = size
        self._retry_after = retry_after_seconds
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        """Create the pool without connecting: an API starts (and says not ready) while its
        database is away, instead of failing to start."""
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=self.size,
            reset=_keep_state,
            command_timeout=30,
            timeout=5,
            server_settings={
                "search_path": self._schema,
                "application_name": self._application_name,
            },
        )

    @property
    def in_use(self) -> int:
        """Connections running a statement now (the pool gauge reads it at scrape time)."""
        if self._pool is None:
            return 0
        in_use: int = self._pool.get_size() - self._pool.get_idle_size()
        return in_use

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def fetchrow(self, query: str, *args: Any) -> Row | None:
        """The first row of one statement (safe to run twice), or None."""
        rows = await self._run(query, args, first=True)
        return rows[0] if rows else None

    async def fetch(self, query: str, *args: Any) -> Sequence[Row]:
        """Every row of one statement (safe to run twice)."""
        return await self._run(query, args, first=False)

    async def _run(self, query: str, args: tuple[Any, ...], *, first: bool) -> list[Row]:
        if self._pool is None:
            raise RuntimeError("the driver pool is not open (is the lifespan running?)")
        with db_span(query, database=self._database):
            return await self._attempt(self._pool, query, args, first=first)

    async def _attempt(
        self, pool: asyncpg.Pool, query: str, args: tuple[Any, ...], *, first: bool
    ) -> list[Row]:
        for attempt in (1, 2):
            try:
                # No acquire timeout: asyncpg runs a timed acquire as a task of its own, a
                # third of the pool's cost per statement. A wait is bounded anyway: by the
                # API's in-flight limit times a statement's `command_timeout`.
                async with pool.acquire() as conn:
                    try:
                        if first:
                            row: Row | None = await conn.fetchrow(query, *args)
                            return [] if row is None else [row]
                        rows: list[Row] = await conn.fetch(query, *args)
                        return rows
                    except Exception as exc:
                        # A backend killed while idle can surface as any protocol error on
                        # the next statement; a closed connection says what it was.
                        if not conn.is_closed() and not is_connection_error(exc):
                            raise
                        lost: Exception = exc
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                lost = exc
            if attempt == 2:
                raise DatabaseUnavailable(
                    "The database is not reachable; try again shortly.",
                    retry_after_seconds=self._retry_after,
                ) from lost
        raise AssertionError("unreachable")
