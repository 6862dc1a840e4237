"""The resilient HTTP client: deadline > retries > circuit breaker > one pooled httpx attempt."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Self

import httpx
from opentelemetry import propagate
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from shop_common import tracing

from ._breaker import AsyncCircuitBreaker
from ._config import ResilientHttpClientConfig
from ._errors import (
    CircuitOpen,
    DeadlineExceeded,
    RetriesExhausted,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamUnavailable,
)
from ._metrics import AttemptOutcome, CallOutcome, HttpClientMetrics, default_metrics
from ._retry import TRANSIENT_ERRORS, AttemptFailed, RetryPlan, response_status
from ._retry_after import parse_retry_after

logger = logging.getLogger("shop_common.http")

Primitive = str | int | float | bool | None
QueryParams = Mapping[str, Primitive | Sequence[Primitive]]


class ResilientHttpClient:
    """Calls one upstream target through a timeout, retries, a deadline and a breaker.

    Owns one pooled `httpx.AsyncClient`: create it once at startup, `aclose()` it (or leave
    its `async with`) at shutdown. Responses below 500 are returned; upstream trouble raises
    the `UpstreamUnavailable` family, which is the caller's cue to use its fallback.

    `transport` replaces the pooled transport (then the pool limits are the transport's
    business): tests pass `httpx.MockTransport`. `sleep` is how retries wait and `clock`
    times the breaker's reset timeout; tests may substitute both.
    """

    def __init__(
        self,
        config: ResilientHttpClientConfig,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: HttpClientMetrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._target = config.target
        self._metrics = metrics if metrics is not None else default_metrics()
        self._sleep = sleep
        self.breaker = AsyncCircuitBreaker(
            config.target,
            fail_max=config.breaker_fail_max,
            reset_timeout=config.breaker_reset_timeout,
            listeners=[self._metrics.track(config.target)],
            clock=clock,
        )
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            headers=headers,
            timeout=config.timeout(),
            limits=config.limits(),
            transport=transport,
            trust_env=config.trust_env,
            follow_redirects=False,
        )
        # Where spans are recorded, a CLIENT span per attempt, its context injected as
        # `traceparent`; where not, only the context is injected (the instrumentation costs
        # 60 us and more per call even with nothing recording). Either way the upstream
        # continues the caller's trace.
        self._inject = not tracing.active()
        if not self._inject:
            HTTPXClientInstrumentor.instrument_client(self._http)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Calls made afterwards raise RuntimeError."""
        await self._http.aclose()

    async def get_json(
        self,
        url: str,
        *,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> object:
        """GET a 2xx JSON body. Raises `UpstreamRejected` on 4xx (and 1xx/3xx)."""
        merged = httpx.Headers({"Accept": "application/json"})
        merged.update(headers or {})
        response = await self.request("GET", url, params=params, headers=merged, deadline=deadline)
        if not response.is_success:
            raise UpstreamRejected(self._target, response)
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamUnavailable(self._target, f"GET {url}: body is not JSON") from exc

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
        json: object = None,
        content: bytes | None = None,
        idempotent: bool | None = None,
        deadline: float | None = None,
    ) -> httpx.Response:
        """Send one logical request; returns any response below 500.

        Retried only if idempotent: by default GET/HEAD/OPTIONS (`config.idempotent_methods`),
        or whatever `idempotent` says (e.g. True for a PUT, or a POST with an
        Idempotency-Key). `deadline` overrides `config.deadline` for this call.

        Raises `CircuitOpen`, `RetriesExhausted`, `UpstreamFailed` or `DeadlineExceeded`
        (all `UpstreamUnavailable`).
        """
        method = method.upper()
        budget = self.config.deadline if deadline is None else deadline
        timer = asyncio.timeout(budget)
        if idempotent is None:
            idempotent = method in self.config.idempotent_methods
        plan = RetryPlan(self.config, idempotent=idempotent, timer=timer)
        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=plan.stop,
            wait=plan.wait,
            retry=retry_if_exception(plan.should_retry),
            before_sleep=self._log_retry,
            reraise=True,
        )

        async def attempt() -> httpx.Response:
            return await self._attempt(
                plan, method, url, params=params, headers=headers, json=json, content=content
            )

        try:
            async with timer:
                response: httpx.Response = await retrying(attempt)
        except CircuitOpen:
            self._metrics.observe_call(self._target, CallOutcome.CIRCUIT_OPEN)
            raise
        except AttemptFailed as failure:
            raise self._give_up(method, url, plan, failure, budget) from failure.cause
        except TimeoutError:
            if not timer.expired():
                raise
            self._metrics.observe_call(self._target, CallOutcome.DEADLINE_EXCEEDED)
            last = plan.last_failure.cause if plan.last_failure is not None else None
            raise DeadlineExceeded(self._target, deadline=budget, attempts=plan.attempts) from last
        self._metrics.observe_call(
            self._target,
            CallOutcome.SUCCESS if response.status_code < 400 else CallOutcome.REJECTED,
        )
        return response

    async def _attempt(
        self,
        plan: RetryPlan,
        method: str,
        url: str,
        *,
        params: QueryParams | None,
        headers: Mapping[str, str] | None,
        json: object,
        content: bytes | None,
    ) -> httpx.Response:
        plan.attempts += 1
        try:
            permit = self.breaker.admit()
        except CircuitOpen:
            self._metrics.observe_attempt(self._target, AttemptOutcome.CIRCUIT_OPEN)
            raise
        with permit:  # leaving without an outcome (cancelled) frees a half-open trial slot
            request = self._http.build_request(
                method,
                url,
                params=params,
                headers=headers,
                json=json,
                content=content,
                timeout=plan.attempt_timeout(),
            )
            if self._inject:
                propagate.inject(request.headers)
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                permit.record_failure()
                timed_out = isinstance(exc, httpx.TimeoutException)
                self._metrics.observe_attempt(
                    self._target,
                    AttemptOutcome.TIMEOUT if timed_out else AttemptOutcome.TRANSPORT_ERROR,
                )
                raise plan.failed(
                    AttemptFailed(transient=isinstance(exc, TRANSIENT_ERRORS), error=exc)
                ) from exc
            except asyncio.CancelledError:
                self._metrics.observe_attempt(self._target, AttemptOutcome.CANCELLED)
                raise

            retryable = response.status_code in self.config.retry_statuses
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status_code >= 500:
                permit.record_failure()
                self._metrics.observe_attempt(self._target, AttemptOutcome.SERVER_ERROR)
                raise plan.failed(
                    AttemptFailed(transient=retryable, response=response, retry_after=retry_after)
                )
            # Any answer below 500, 4xx included, shows the upstream is up: a breaker success.
            permit.record_success()
            if response.status_code >= 400:
                self._metrics.observe_attempt(self._target, AttemptOutcome.REJECTED)
            else:
                self._metrics.observe_attempt(self._target, AttemptOutcome.SUCCESS)
            if retryable and plan.idempotent:  # 429, when configured
                raise plan.failed(
                    AttemptFailed(transient=True, response=response, retry_after=retry_after)
                )
            return response

    def _give_up(
        self,
        method: str,
        url: str,
        plan: RetryPlan,
        failure: AttemptFailed,
        budget: float,
    ) -> UpstreamUnavailable:
        if plan.stopped_by_deadline:
            self._metrics.observe_call(self._target, CallOutcome.DEADLINE_EXCEEDED)
            return DeadlineExceeded(self._target, deadline=budget, attempts=plan.attempts)
        status = response_status(failure.response)
        last = f"HTTP {status}" if status is not None else type(failure.error).__name__
        message = f"{method} {url} failed after {plan.attempts} attempt(s), last: {last}"
        if plan.should_retry(failure):
            self._metrics.observe_call(self._target, CallOutcome.RETRIES_EXHAUSTED)
            return RetriesExhausted(
                self._target, message, attempts=plan.attempts, response=failure.response
            )
        self._metrics.observe_call(self._target, CallOutcome.FAILED)
        return UpstreamFailed(
            self._target, message, attempts=plan.attempts, response=failure.response
        )

    def _log_retry(self, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        logger.info(
            "retrying call to %s in %.3fs after attempt %d failed: %s",
            self._target,
            state.upcoming_sleep,
            state.attempt_number,
            failure,
        )
