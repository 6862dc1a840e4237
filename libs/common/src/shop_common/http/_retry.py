"""One call's retry policy: what is retried, how long to wait, when to stop (for tenacity)."""

from __future__ import annotations

import asyncio

import httpx
from tenacity import RetryCallState, wait_exponential_jitter

from ._config import ResilientHttpClientConfig

# Failures where the same request may well succeed a moment later. Other transport errors
# (UnsupportedProtocol, LocalProtocolError, ProxyError) are configuration bugs.
TRANSIENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


class AttemptFailed(Exception):
    """One attempt's failure, inside the retry loop; turned into a public error after it."""

    def __init__(
        self,
        *,
        transient: bool,
        response: httpx.Response | None = None,
        error: httpx.TransportError | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(repr(error) if error is not None else f"HTTP {response_status(response)}")
        self.transient = transient
        self.response = response
        self.error = error
        self.retry_after = retry_after

    @property
    def cause(self) -> BaseException:
        """What to chain a public error to: the transport error, else this (a 5xx)."""
        return self.error if self.error is not None else self


def response_status(response: httpx.Response | None) -> int | None:
    return None if response is None else response.status_code


class RetryPlan:
    """Retry decisions for one call, bounded by attempts and by the call's deadline timer."""

    def __init__(
        self,
        config: ResilientHttpClientConfig,
        *,
        idempotent: bool,
        timer: asyncio.Timeout,
    ) -> None:
        self._config = config
        self._timer = timer
        self._backoff = wait_exponential_jitter(
            multiplier=config.backoff_base, max=config.backoff_max, jitter=config.backoff_jitter
        )
        self.idempotent = idempotent
        self.attempts = 0
        self.stopped_by_deadline = False
        self.last_failure: AttemptFailed | None = None

    def remaining(self) -> float:
        when = self._timer.when()
        if when is None:
            return float("inf")
        return when - asyncio.get_running_loop().time()

    def attempt_timeout(self) -> httpx.Timeout:
        """The configured timeouts, none longer than what is left of the deadline."""
        left = max(self.remaining(), 0.001)
        c = self._config
        return httpx.Timeout(
            connect=min(c.connect_timeout, left),
            read=min(c.read_timeout, left),
            write=min(c.write_timeout, left),
            pool=min(c.pool_timeout, left),
        )

    def failed(self, failure: AttemptFailed) -> AttemptFailed:
        """Note an attempt's failure: the cause to report if the deadline cuts the next one."""
        self.last_failure = failure
        return failure

    def should_retry(self, exc: BaseException) -> bool:
        return self.idempotent and isinstance(exc, AttemptFailed) and exc.transient

    def wait(self, state: RetryCallState) -> float:
        """Retry-After when the upstream sent one, otherwise exponential backoff with jitter."""
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, AttemptFailed) and failure.retry_after is not None:
            return failure.retry_after
        return self._backoff(state)

    def stop(self, state: RetryCallState) -> bool:
        # Runs after wait(), so upcoming_sleep is known: give up now rather than sleep past
        # the deadline (this is also what caps a long Retry-After).
        if state.attempt_number >= self._config.max_attempts:
            return True
        if state.upcoming_sleep >= self.remaining():
            self.stopped_by_deadline = True
            return True
        return False
