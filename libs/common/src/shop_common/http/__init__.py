"""Resilient HTTP calls between services: timeout, retries, deadline, breaker, metrics.

Typical use (docs/adr/0005-resilience-policy.md has the policy and its numbers). Here an
`httpx.MockTransport` stands in for the Catalog, first up, then down:

>>> import asyncio, httpx
>>> config = ResilientHttpClientConfig(target="catalog", base_url="http://catalog.test")
>>> def catalog_up(request: httpx.Request) -> httpx.Response:
...     return httpx.Response(200, json={"items": [], "next_cursor": None})
>>> def catalog_down(request: httpx.Request) -> httpx.Response:
...     return httpx.Response(503)
>>> async def products(catalog):
...     async with ResilientHttpClient(config, transport=httpx.MockTransport(catalog)) as c:
...         try:
...             return await c.get_json("/v1/products", params={"ids": "a,b"})
...         except UpstreamUnavailable:  # retries spent, deadline passed or breaker open
...             return "fallback"
>>> asyncio.run(products(catalog_up))
{'items': [], 'next_cursor': None}
>>> asyncio.run(products(catalog_down))
'fallback'
"""

from ._breaker import AsyncCircuitBreaker, BreakerState, Permit
from ._client import QueryParams, ResilientHttpClient
from ._config import ResilientHttpClientConfig
from ._errors import (
    CircuitOpen,
    DeadlineExceeded,
    RetriesExhausted,
    UpstreamError,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamUnavailable,
)
from ._metrics import AttemptOutcome, CallOutcome, HttpClientMetrics, default_metrics
from ._retry_after import parse_retry_after

__all__ = [
    "AsyncCircuitBreaker",
    "AttemptOutcome",
    "BreakerState",
    "CallOutcome",
    "CircuitOpen",
    "DeadlineExceeded",
    "HttpClientMetrics",
    "Permit",
    "QueryParams",
    "ResilientHttpClient",
    "ResilientHttpClientConfig",
    "RetriesExhausted",
    "UpstreamError",
    "UpstreamFailed",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "default_metrics",
    "parse_retry_after",
]
