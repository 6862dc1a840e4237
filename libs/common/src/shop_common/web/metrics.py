"""RED metrics of an API (rate, errors, duration per route template) as pure ASGI middleware."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "handler", "status"],
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration by method and route template, until the response is sent.",
    ["method", "handler"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
UNMATCHED = "none"  # the handler label of requests no route matched (404s): bounded cardinality
UNTRACKED = frozenset({"/metrics", "/livez", "/readyz"})


class RedMetrics:
    """Counts and times each request under its route template (`/v1/products/{product_id}`),
    never the raw path, so label cardinality stays bounded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACKED:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            handler = getattr(route, "path", None) or UNMATCHED
            key = (scope["method"], handler, status)
            children = self._children.get(key)
            if children is None:
                children = (REQUESTS.labels(*key), DURATION.labels(key[0], handler))
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


async def metrics_endpoint(_: Request) -> Response:
    """Prometheus text exposition of the process's default registry."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
