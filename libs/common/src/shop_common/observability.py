"""JSON logs carrying a request id; what the API edge (`shop_common.web.edge`) sets it from."""

from __future__ import annotations

import logging
import os
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

__all__ = [
    "REQUEST_ID_HEADER",
    "configure_logging",
    "new_request_id",
    "new_traceparent",
    "request_id_var",
    "valid_request_id",
]

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, SQLAlchemy's) through one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}{request_id}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(_RequestIdFilter())
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


def new_traceparent() -> str:
    """A fresh W3C trace context (version 00, sampled), for requests that bring none."""
    ids = os.urandom(24).hex()  # one system call for both ids: this runs on every request
    return f"00-{ids[:32]}-{ids[32:]}-01"


def new_request_id() -> str:
    """32 random hex digits (what uuid4().hex gave, without building a UUID per request)."""
    return os.urandom(16).hex()
