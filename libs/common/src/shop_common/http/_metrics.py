"""Prometheus metrics of the resilient HTTP clients: breaker state, transitions, outcomes."""

from __future__ import annotations

import enum
import functools

import pybreaker
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

STATE_VALUES = {
    pybreaker.STATE_CLOSED: 0,
    pybreaker.STATE_HALF_OPEN: 1,
    pybreaker.STATE_OPEN: 2,
}


class CallOutcome(enum.StrEnum):
    """How one call (all of its attempts) ended."""

    SUCCESS = "success"  # 1xx-3xx
    REJECTED = "rejected"  # 4xx: answered, the request is at fault
    FAILED = "failed"  # UpstreamFailed
    RETRIES_EXHAUSTED = "retries_exhausted"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CIRCUIT_OPEN = "circuit_open"


class AttemptOutcome(enum.StrEnum):
    """How one attempt (one request on the wire, or one refused by the breaker) ended."""

    SUCCESS = "success"
    REJECTED = "rejected"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    TRANSPORT_ERROR = "transport_error"
    CIRCUIT_OPEN = "circuit_open"
    CANCELLED = "cancelled"


class HttpClientMetrics:
    """The metric families, registered once per registry; series are labelled by target."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.circuit_state = Gauge(
            "shop_http_client_circuit_state",
            "Circuit breaker state per upstream target: 0 closed, 1 half-open, 2 open.",
            ["target"],
            registry=registry,
        )
        self.circuit_transitions = Counter(
            "shop_http_client_circuit_transitions",
            "Circuit breaker state transitions per upstream target.",
            ["target", "from_state", "to_state"],
            registry=registry,
        )
        self.calls = Counter(
            "shop_http_client_calls",
            "Calls to an upstream target (retries included in one call), by outcome.",
            ["target", "outcome"],
            registry=registry,
        )
        self.attempts = Counter(
            "shop_http_client_attempts",
            "Attempts at an upstream target, by outcome.",
            ["target", "outcome"],
            registry=registry,
        )

    def track(self, target: str) -> pybreaker.CircuitBreakerListener:
        """Start the target's series at zero/closed; the listener keeps the state current."""
        self.circuit_state.labels(target).set(STATE_VALUES[pybreaker.STATE_CLOSED])
        for call_outcome in CallOutcome:
            self.calls.labels(target, call_outcome.value)
        for attempt_outcome in AttemptOutcome:
            self.attempts.labels(target, attempt_outcome.value)
        return _ExportCircuitState(self, target)

    def observe_call(self, target: str, outcome: CallOutcome) -> None:
        self.calls.labels(target, outcome.value).inc()

    def observe_attempt(self, target: str, outcome: AttemptOutcome) -> None:
        self.attempts.labels(target, outcome.value).inc()


class _ExportCircuitState(pybreaker.CircuitBreakerListener):
    def __init__(self, metrics: HttpClientMetrics, target: str) -> None:
        self._metrics = metrics
        self._target = target

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        old = old_state.name if old_state is not None else "none"
        self._metrics.circuit_state.labels(self._target).set(STATE_VALUES[new_state.name])
        self._metrics.circuit_transitions.labels(self._target, old, new_state.name).inc()


@functools.cache
def default_metrics() -> HttpClientMetrics:
    """The process-wide metrics on prometheus_client's default registry (what /metrics serves)."""
    return HttpClientMetrics(REGISTRY)
