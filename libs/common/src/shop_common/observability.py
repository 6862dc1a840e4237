"""JSON logs carrying a request id, and the middleware that sets it and the trace context."""

from __future__ import annotations

import logging
import secrets
import sys
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.tracing import trace_context, valid_traceparent

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestIdMiddleware",
    "configure_logging",
    "new_traceparent",
    "request_id_var",
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


def _valid_request_id(value: str) -> bool:
    return 0 < len(value) <= 128 and value.isascii() and value.isprintable()


def new_traceparent() -> str:
    """A fresh W3C trace context (version 00, sampled), for requests that bring none."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (if sane) or makes one; echoes it on the response.

    Also makes the caller's W3C `traceparent` (or a new one) current, so the events this
    request writes to the outbox carry it on to their consumers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _valid_request_id(incoming) else uuid.uuid4().hex
        traceparent = valid_traceparent(headers.get(b"traceparent", b"").decode("latin-1"))
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            with trace_context(traceparent or new_traceparent()):
                await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
