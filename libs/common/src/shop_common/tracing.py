"""The seam for trace context: which W3C `traceparent` rides on the events we publish.

Today it is a context variable. The consumer sets it from the event it is handling, so the
events a handler enqueues continue that trace; HTTP middleware may set it from the request.
When OpenTelemetry arrives, `current_traceparent` becomes a propagator call and nothing
else changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = [
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "current_traceparent",
    "trace_context",
    "valid_traceparent",
]

TRACEPARENT_HEADER = "traceparent"
TRACESTATE_HEADER = "tracestate"

# version 00: 00-<trace-id>-<parent-id>-<flags>; all-zero ids are invalid.
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")

_traceparent: ContextVar[str | None] = ContextVar("shop_traceparent", default=None)


def valid_traceparent(value: str | None) -> str | None:
    """`value` if it is a well-formed version-00 traceparent; otherwise None (W3C: ignore it)."""
    if value is not None and _TRACEPARENT.match(value):
        return value
    return None


def current_traceparent() -> str | None:
    return _traceparent.get()


@contextmanager
def trace_context(traceparent: str | None) -> Iterator[None]:
    """Make `traceparent` current for the events enqueued inside the block."""
    token = _traceparent.set(valid_traceparent(traceparent))
    try:
        yield
    finally:
        _traceparent.reset(token)
