"""Resilient HTTP calls between services: timeout, retries, deadline, breaker, metrics.

Typical use (see docs/adr/0005-resilience-policy.md for the policy and its numbers)::

    async with ResilientHttpClient(ResilientHttpClientConfig(target="catalog", base_url=url)) as c:
        try:
            page = await c.get_json("/v1/products", params={"ids": "a,b"})
        except UpstreamUnavailable:
            page = fallback()
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
