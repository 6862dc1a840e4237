"""The worker process's small HTTP side: /livez, /readyz and /metrics for probes and scraping."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from shop_common.web import READINESS_CHECKS, ReadinessCheck, SideServer, health_router
from shop_common.web.metrics import metrics_endpoint


class WorkerHttp:
    """A worker `Component`: serves until the worker stops (the worker owns the signals)."""

    def __init__(self, *, host: str, port: int, checks: dict[str, ReadinessCheck]) -> None:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        READINESS_CHECKS.set(app, checks)
        app.include_router(health_router())
        app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
        self._server = SideServer(app, host=host, port=port)

    async def run(self, stop: asyncio.Event) -> None:
        serving = asyncio.create_task(self._server.serve())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        self._server.should_exit = True
        stopping.cancel()
        await serving
