"""The one pure-ASGI middleware around every API request (docs/adr/0013-http-edge.md).

For each HTTP request, in this order:
- request id: the caller's `X-Request-ID` if sane, else a new one; on the response and on
  every log line written while the request runs;
- load shedding: with `max_in_flight` requests already in hand, 503 problem+json with
  `Retry-After` at once, before any work (health probes are never shed);
- body size: 413 by `Content-Length` up front (400 if it is not a number), or as soon as a
  chunked body streams past the limit;
- trace context: where spans are exported, FastAPI's own telemetry (outside this
  middleware) opens the request's server span from the caller's W3C `traceparent`; where
  not (no SDK, `shop_common.tracing`), the caller's context or a new unsampled trace is
  made current here, so the logs, the calls to Catalog and the events still carry it;
- `Cache-Control: private, no-store` on every response of a route that needs a token
  (unless the route set its own); public reads keep their ETag and conditional GET;
- RED metrics by route template, and an unhandled error as a 500 problem carrying the id.

One middleware instead of four: each ASGI layer is a coroutine, a closure and a wrapped
`send` per request, and the layers each parsed the headers again.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shop_common.auth.dependencies import current_principal
from shop_common.observability import new_request_id, request_id_var, valid_request_id
from shop_common.tracing import edge_context
from shop_common.web.metrics import DURATION, IN_FLIGHT, REQUESTS, SHED, UNMATCHED
from shop_common.web.problems import problem_response

PROBES = frozenset({"/livez", "/readyz"})
NO_STORE = "private, no-store"
log = logging.getLogger(__name__)


class EdgeMiddleware:
    """Installed once, by `create_service_app`, from the service's settings."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_in_flight: int, retry_after_seconds: int
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._retry_after = str(retry_after_seconds)
        self._limit_message = f"Request bodies are limited to {max_body_bytes} bytes."
        self._metrics: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._needs_token: dict[int, bool] = {}  # id(route) -> whether it takes a token
        # Read when scraped: no lock taken per request (one API app per process).
        IN_FLIGHT.set_function(lambda: self.in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        incoming_id = traceparent = length = None
        chunked = False
        for name, value in scope["headers"]:  # one pass; ASGI header names are lower case
            if name == b"x-request-id":
                incoming_id = value
            elif name == b"traceparent":
                traceparent = value
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        request_id = _request_id(incoming_id)
        id_header = (b"x-request-id", request_id.encode())
        status = 0

        async def send_with_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), id_header]
                if self._takes_token(scope.get("route")) and not any(
                    name == b"cache-control" for name, _ in headers
                ):
                    headers.append((b"cache-control", NO_STORE.encode()))
                message["headers"] = headers
            await send(message)

        probe = scope["path"] in PROBES
        token = request_id_var.set(request_id)
        try:
            if probe:  # never shed, not counted: a busy pod must not look dead or unready
                await self.app(scope, receive, send_with_edge)
                return
            rejection = self._rejection(length)
            if rejection is not None:
                await rejection(scope, receive, send_with_edge)
                return
            if chunked:
                receive = self._limited(receive)
            self.in_flight += 1
            try:
                if trace.get_current_span().get_span_context().is_valid:
                    await self.app(scope, receive, send_with_edge)  # FastAPI's span
                else:  # no SDK: the caller's context as it came, or a new trace
                    context = otel_context.attach(edge_context(traceparent))
                    try:
                        await self.app(scope, receive, send_with_edge)
                    finally:
                        otel_context.detach(context)
            finally:
                self.in_flight -= 1
        except Exception:
            if status:  # the response has begun: nothing to answer with, the server logs it
                raise
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status = 500
            await problem_response(500, slug="internal", detail="An unexpected error occurred.")(
                scope, receive, send_with_edge
            )
        finally:
            request_id_var.reset(token)
            if not probe:
                self._observe(scope, status or 500, started)

    def _rejection(self, length: bytes | None) -> Response | None:
        """What to answer without calling the app: over capacity, or a body too large."""
        if self.in_flight >= self.max_in_flight:
            SHED.inc()
            return problem_response(
                503,
                slug="overloaded",
                title="Overloaded",
                detail="The service has as many requests in hand as it takes; retry later.",
                headers={"Retry-After": self._retry_after},
            )
        if length is None:
            return None
        if not length.isdigit():
            return problem_response(
                400, slug="bad-request", detail="Invalid Content-Length header."
            )
        if int(length) > self.max_body_bytes:
            return problem_response(413, slug="payload-too-large", detail=self._limit_message)
        return None

    def _limited(self, receive: Receive) -> Receive:
        """`receive` that counts a chunked body's bytes and stops it past the limit."""
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises HTTPException raised while reading the body: a 413.
                    raise HTTPException(413, self._limit_message)
            return message

        return limited_receive

    def _takes_token(self, route: Any) -> bool:
        if route is None:
            return False
        known = self._needs_token.get(id(route))
        if known is None:
            dependant = getattr(route, "dependant", None)
            known = dependant is not None and _depends_on(dependant, current_principal)
            self._needs_token[id(route)] = known
        return known

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        handler = getattr(route, "path", None) or UNMATCHED
        key = (scope["method"], handler, status)
        children = self._metrics.get(key)
        if children is None:
            children = (REQUESTS.labels(*key), DURATION.labels(key[0], handler))
            self._metrics[key] = children
        children[0].inc()
        children[1].observe(perf_counter() - started)


def _request_id(incoming: bytes | None) -> str:
    if incoming is not None:
        value = incoming.decode("latin-1")
        if valid_request_id(value):
            return value
    return new_request_id()


def _depends_on(dependant: Any, call: object) -> bool:
    """Whether a FastAPI route's dependency tree includes `call` (here: the token check)."""
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)
