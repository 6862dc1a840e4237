"""Running an API process: uvicorn on the public port, Prometheus on the metrics port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from shop_common.observability import configure_logging
from shop_common.runtime import freeze_startup_objects
from shop_common.settings import ServiceSettings
from shop_common.tracing import configure_tracing
from shop_common.web.metrics import metrics_app

log = logging.getLogger(__name__)


class SideServer(uvicorn.Server):
    """A second listener in a process that already has one (metrics, a worker's probes):
    it leaves SIGTERM/SIGINT to the process and stops when `should_exit` is set."""

    def __init__(self, app: ASGIApp, *, host: str, port: int, access_log: bool = False) -> None:
        # uvicorn's access log is one logger for the whole process (a config can only turn it
        # off for everyone): a side server of an API must pass the API's own setting.
        super().__init__(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,
                access_log=access_log,
                lifespan="off",
                server_header=False,
            )
        )

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def serve(app: FastAPI, settings: ServiceSettings, service: str) -> None:
    """Run `app` with JSON logs, and `/metrics` on `settings.metrics_port` (never on the
    public port); SIGINT/SIGTERM stop the API gracefully, then the metrics listener."""
    configure_logging(service, settings.log_level)
    configure_tracing(f"{service}-api")
    api = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            proxy_headers=False,
            access_log=settings.access_log,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    )
    metrics = SideServer(
        metrics_app(),
        host=settings.host,
        port=settings.metrics_port,
        access_log=settings.access_log,
    )
    metrics_socket = _listen(settings.host, settings.metrics_port)
    host, port = metrics_socket.getsockname()[:2]
    log.info("metrics on http://%s:%d/metrics", host, port)
    freeze_startup_objects()
    with asyncio.Runner(loop_factory=api.config.get_loop_factory()) as runner:
        runner.run(_serve_both(api, metrics, metrics_socket))


def _listen(host: str, port: int) -> socket.socket:
    """The metrics port, bound before anything starts: a taken port stops the process at
    once, with the error logged, as a taken API port does (uvicorn's exit status 3)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        log.error("cannot listen for metrics on %s:%d: %s", host, port, exc)
        raise SystemExit(3) from exc


async def _serve_both(api: uvicorn.Server, metrics: SideServer, sock: socket.socket) -> None:
    metrics_task = asyncio.create_task(metrics.serve(sockets=[sock]))
    try:
        await api.serve()
    finally:
        metrics.should_exit = True
        await metrics_task
