"""An asyncio circuit breaker: pybreaker's state machine behind a non-blocking admission gate.

pybreaker's own async path (`call_async`) needs Tornado, and wrapping an `await` in its
synchronous `calling()` is not enough either: its half-open state lets every concurrent
caller through, and an outcome that arrives after the state changed (a slow call admitted
while closed finishing after the circuit opened) would be applied to the new state, e.g.
close the circuit on behalf of a request that was never the trial.

So admission and outcome are split:

* `admit()` runs synchronously on the event loop (atomic with respect to other tasks). It
  refuses while open, moves open -> half-open once `reset_timeout` has passed, and hands
  out at most one trial permit while half-open; everyone else fails fast.
* The permit's outcome is replayed through pybreaker's synchronous `call()` only if the
  breaker is still in the very state object it was admitted under. pybreaker then does
  what it is good at: counting consecutive failures, tripping at `fail_max`, closing on a
  successful trial, re-opening on a failed one, and notifying listeners (metrics, logs).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType

import pybreaker

from ._errors import CircuitOpen

logger = logging.getLogger("shop_common.http")


class BreakerState(enum.Enum):
    CLOSED = pybreaker.STATE_CLOSED
    HALF_OPEN = pybreaker.STATE_HALF_OPEN
    OPEN = pybreaker.STATE_OPEN


class _RecordedFailure(Exception):
    """Stands for a failed attempt when its outcome is replayed through pybreaker."""


def _succeed() -> None:
    return None


def _fail() -> None:
    raise _RecordedFailure


class _OpenedAt(pybreaker.CircuitBreakerListener):
    """Remembers, on a monotonic clock, when the circuit last opened."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.value: float | None = None

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self.value = self._clock()


class _LogStateChanges(pybreaker.CircuitBreakerListener):
    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        old = old_state.name if old_state is not None else None
        level = logging.WARNING if new_state.name == pybreaker.STATE_OPEN else logging.INFO
        logger.log(level, "circuit %s: %s -> %s", cb.name, old, new_state.name)


class AsyncCircuitBreaker:
    """Circuit breaker for asyncio callers. One per upstream target per process."""

    def __init__(
        self,
        name: str,
        *,
        fail_max: int,
        reset_timeout: float,
        listeners: Sequence[pybreaker.CircuitBreakerListener] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._opened_at = _OpenedAt(clock)
        self._trial_in_flight = False
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            name=name,
            listeners=[self._opened_at, _LogStateChanges(), *listeners],
        )

    @property
    def name(self) -> str:
        return self._breaker.name or ""

    @property
    def state(self) -> BreakerState:
        return BreakerState(self._breaker.current_state)

    @property
    def fail_counter(self) -> int:
        """Consecutive failed attempts counted so far (reset by any success)."""
        return self._breaker.fail_counter

    def admit(self) -> Permit:
        """A permit to make one attempt now, or `CircuitOpen` (nothing must be sent)."""
        if self.state is BreakerState.OPEN:
            wait = self._open_remaining()
            if wait > 0:
                raise CircuitOpen(self.name, retry_after=wait)
            self._breaker.half_open()
        if self.state is BreakerState.HALF_OPEN:
            if self._trial_in_flight:
                raise CircuitOpen(self.name, retry_after=None)
            self._trial_in_flight = True
            return Permit(self, self._breaker.state, trial=True)
        return Permit(self, self._breaker.state, trial=False)

    def _open_remaining(self) -> float:
        opened_at = self._opened_at.value
        if opened_at is None:
            return 0.0
        return opened_at + self._breaker.reset_timeout - self._clock()

    def _settle(self, permit: Permit, *, failed: bool | None) -> None:
        """Apply a permit's outcome (None: no outcome, e.g. cancelled) and free its slot."""
        if permit.trial:
            self._trial_in_flight = False
        if failed is None or self._breaker.state is not permit.admitted_under:
            return  # admitted under an earlier state: its outcome says nothing about this one
        # pybreaker raises on a trip (CircuitBreakerError) and re-raises the failure itself.
        with contextlib.suppress(_RecordedFailure, pybreaker.CircuitBreakerError):
            self._breaker.call(_fail if failed else _succeed)


class Permit:
    """Leave to make one attempt. Record its outcome; leaving the `with` block frees it."""

    def __init__(
        self,
        breaker: AsyncCircuitBreaker,
        admitted_under: pybreaker.CircuitBreakerState,
        *,
        trial: bool,
    ) -> None:
        self._breaker = breaker
        self.admitted_under = admitted_under
        self.trial = trial
        self._settled = False

    def record_success(self) -> None:
        self._settle(failed=False)

    def record_failure(self) -> None:
        self._settle(failed=True)

    def release(self) -> None:
        """Give the permit back without an outcome (the attempt was cancelled)."""
        self._settle(failed=None)

    def _settle(self, *, failed: bool | None) -> None:
        if self._settled:
            return
        self._settled = True
        self._breaker._settle(self, failed=failed)

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
