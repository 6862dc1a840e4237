"""Liveness, readiness (database and broker) and the checks readiness runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shop_common.state import StateKey

ReadinessCheck = Callable[[], Awaitable[None]]
log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0
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


def broker_check(amqp_url: str) -> ReadinessCheck:
    """Opens and closes an AMQP connection (probes are infrequent; this proves auth too)."""

    async def check() -> None:
        connection = await aio_pika.connect(amqp_url, timeout=CHECK_TIMEOUT_SECONDS)
        await connection.close()

    return check
