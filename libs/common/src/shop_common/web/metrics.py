"""RED metrics of an API (rate, errors, duration per route template), load-shedding counts,
and the Prometheus endpoint, which is served on a port of its own (never the public one)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
SHED = Counter(
    "http_requests_shed_total",
    "Requests answered 503 at once because the process had max_in_flight requests in hand.",
)
IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "Requests the API process is working on (health probes excluded), read at scrape time.",
)
# The handler label of requests no route matched (404s, and shed requests, which never reach
# the router): bounded cardinality.
UNMATCHED = "none"


async def metrics_endpoint(_: Request) -> Response:
    """Prometheus text exposition of the process's default registry."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def metrics_app() -> Starlette:
    """What an API serves on its metrics port: `GET /metrics` and nothing else."""
    return Starlette(routes=[Route("/metrics", metrics_endpoint)])
