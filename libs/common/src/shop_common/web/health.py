"""Liveness, readiness and the checks readiness runs.

`/livez` answers while the process runs. `/readyz` runs the app's `READINESS_CHECKS`: an API
checks only its database (it writes events to its outbox and never talks to the broker), a
worker its database and its subscription to the broker. The database check is a
`DatabaseProbe`: one connection of its own, so a probe never waits behind requests for a
pooled connection and a busy pod is not taken out of its Service for being busy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url

from shop_common.state import StateKey

ReadinessCheck = Callable[[], Awaitable[None]]
log = logging.getLogger(__name__)
# Kubernetes gives the probe 2 s (timeoutSeconds); a check answers within that.
CHECK_TIMEOUT_SECONDS = 1.5
READINESS_CHECKS = StateKey[dict[str, ReadinessCheck]]("readiness_checks")


def health_router() -> APIRouter:
    """`/livez` answers while the process runs; `/readyz` runs the app's `READINESS_CHECKS`."""
    router = APIRouter(include_in_schema=False)

    @router.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        checks = READINESS_CHECKS.from_request(request)
        results = await asyncio.gather(*(_run(name, c) for name, c in checks.items()))
        body = dict(zip(checks, results, strict=True))
        ready = all(v == "ok" for v in results)
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": body},
            status_code=200 if ready else 503,
        )

    return router


async def _run(name: str, check: ReadinessCheck) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check()
    except Exception as exc:  # any failure means "not ready"; say which
        log.warning("readiness check %s failed: %r", name, exc)
        return "unavailable"
    return "ok"


class DatabaseProbe:
    """A readiness check on a connection of its own, never one of the pools requests use.

    The connection is opened on first use and kept. When the kept one fails (the server
    restarted, failed over or closed it), the probe tries once more on a new connection, so
    only a database that cannot be reached now makes the process unready.
    """

    def __init__(self, database_url: str, *, application_name: str) -> None:
        # The services' URLs name SQLAlchemy's driver (postgresql+asyncpg://); asyncpg wants
        # the plain scheme.
        self._dsn = make_url(database_url).set(drivername="postgresql")
        self._application_name = application_name
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one query at a time on one connection

    async def __call__(self) -> None:
        async with self._lock:
            if self._connection is not None:
                try:
                    await self._select_one()
                    return
                except Exception as exc:  # asyncpg reports a dropped connection many ways
                    log.info("readiness: the probe's connection failed (%r); reconnecting", exc)
            self._connection = await asyncpg.connect(
                self._dsn.render_as_string(hide_password=False),
                timeout=CHECK_TIMEOUT_SECONDS,
                server_settings={"application_name": self._application_name},
            )
            await self._select_one()

    async def _select_one(self) -> None:
        connection = self._connection
        assert connection is not None
        try:
            await connection.fetchval("SELECT 1", timeout=CHECK_TIMEOUT_SECONDS)
        except BaseException:
            # Broken, or cancelled mid-query by the probe's deadline: not reusable.
            self._connection = None
            connection.terminate()
            raise

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), CHECK_TIMEOUT_SECONDS)
            except Exception:  # closing on the way out: a dead connection is gone anyway
                connection.terminate()
