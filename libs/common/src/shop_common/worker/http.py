"""The worker process's small HTTP side: /livez, /readyz and /metrics for probes and scraping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

from shop_common.web.health import READINESS_CHECKS, ReadinessCheck, health_router
from shop_common.web.metrics import metrics_endpoint


class _QuietServer(uvicorn.Server):
    """The worker owns SIGTERM/SIGINT; this server just stops when asked."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WorkerHttp:
    """A worker `Component`: serves until the worker stops."""

    def __init__(self, *, host: str, port: int, checks: dict[str, ReadinessCheck]) -> None:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        READINESS_CHECKS.set(app, checks)
        app.include_router(health_router())
        app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
        self._server = _QuietServer(config)

    async def run(self, stop: asyncio.Event) -> None:
        serving = asyncio.create_task(self._server.serve())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        self._server.should_exit = True
        stopping.cancel()
        await serving
