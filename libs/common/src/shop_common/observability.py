"""JSON logs carrying a request id (the API edge, `shop_common.web.edge`, sets it) and
the current span's trace and span ids."""

from __future__ import annotations

import logging
import os
import sys
from contextvars import ContextVar

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

__all__ = [
    "REQUEST_ID_HEADER",
    "configure_logging",
    "new_request_id",
    "request_id_var",
    "valid_request_id",
]

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"


class _ContextFilter(logging.Filter):
    """The request id, and the trace and span ids of the current span (if any), on every
    record; a record that names its own `trace_id` keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        if getattr(record, "trace_id", None) is None:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                record.trace_id = format(context.trace_id, "032x")
                record.span_id = format(context.span_id, "016x")
            else:
                record.trace_id = record.span_id = None
        elif not hasattr(record, "span_id"):
            record.span_id = None
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, SQLAlchemy's) through one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}{request_id}{trace_id}{span_id}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # httpx logs every request it sends at INFO: a JSON line per call to Catalog, on the hot
    # path of every order. The client's own metrics count them; at DEBUG they stay.
    logging.getLogger("httpx").setLevel(
        logging.WARNING if root.getEffectiveLevel() >= logging.INFO else logging.NOTSET
    )


def valid_request_id(value: str) -> bool:
    """A caller's X-Request-ID is kept when short, ASCII and printable (it reaches the logs)."""
    return 0 < len(value) <= 128 and value.isascii() and value.isprintable()


def new_request_id() -> str:
    """32 random hex digits (what uuid4().hex gave, without building a UUID per request)."""
    return os.urandom(16).hex()
