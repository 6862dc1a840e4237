"""The one exception family raised about upstream calls, so callers know when to fall back."""

from __future__ import annotations

import httpx


class UpstreamError(Exception):
    """Base of every error this package raises about a call to an upstream service."""

    def __init__(self, target: str, message: str) -> None:
        super().__init__(f"{target}: {message}")
        self.target = target


class UpstreamUnavailable(UpstreamError):
    """No usable answer from the upstream: the caller should use its fallback.

    Raised directly only when a 2xx body is not the JSON the caller asked for.
    """


class CircuitOpen(UpstreamUnavailable):
    """The circuit breaker refused the call; nothing was sent.

    `retry_after` is how many seconds remain before the breaker lets a trial call through,
    or None while a trial call is already in flight (half-open).
    """

    def __init__(self, target: str, retry_after: float | None) -> None:
        detail = "trial call in flight" if retry_after is None else f"retry in {retry_after:.2f}s"
        super().__init__(target, f"circuit open ({detail})")
        self.retry_after = retry_after


class UpstreamFailed(UpstreamUnavailable):
    """The last attempt failed (transport error or 5xx) and it is not worth retrying.

    For example a POST that timed out, or a 500. `response` is the last 5xx response, if any.
    """

    def __init__(
        self,
        target: str,
        message: str,
        *,
        attempts: int,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(target, message)
        self.attempts = attempts
        self.response = response


class RetriesExhausted(UpstreamFailed):
    """Every attempt allowed (`max_attempts`) failed with a transient failure."""


class DeadlineExceeded(UpstreamUnavailable):
    """The call's overall deadline passed, or leaves no room for the next retry."""

    def __init__(self, target: str, *, deadline: float, attempts: int) -> None:
        super().__init__(target, f"deadline of {deadline:.2f}s exceeded after {attempts} attempts")
        self.deadline = deadline
        self.attempts = attempts


class UpstreamRejected(UpstreamError):
    """The upstream answered with a non-2xx status below 500 (the request is at fault).

    Not an availability problem: no fallback fixes it. Raised by the JSON helpers only;
    `request()` hands such responses back to the caller.
    """

    def __init__(self, target: str, response: httpx.Response) -> None:
        request = response.request
        super().__init__(
            target, f"{request.method} {request.url.path} answered {response.status_code}"
        )
        self.response = response
