"""OpenTelemetry tracing for every process (docs/adr/0018-tracing.md).

One trace follows an order across both services: FastAPI's own telemetry opens the server
span of each request (and continues the caller's W3C `traceparent`), httpx carries it to
Catalog, the outbox row stores the context it was written in, the relay's PRODUCER span
continues that context and puts its own on the message, and the consumer's CONSUMER span
continues the message's, so the events a handler writes carry it on. Database statements
are CLIENT spans under whatever span is recording.

`configure_tracing` runs once per process, from the standard `OTEL_*` variables:
- `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set: spans go to
  that collector over OTLP/HTTP (batched), sampled by `OTEL_TRACES_SAMPLER` (default
  `parentbased_always_on`); `OTEL_TRACES_EXPORTER=console` prints them to stderr;
  `SHOP_TRACES_FILE=path` appends them to a file as JSON lines (local runs, tests).
- nothing set (or `OTEL_SDK_DISABLED=true`): no SDK, nothing recorded, nearly free. The
  API edge still makes a context current for every request (the caller's, or a new
  unsampled trace), so the logs carry trace ids, the calls to Catalog and the events pass
  them on, and a later hop that does export continues the same trace.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, StatusCode

__all__ = [
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "TRACES_FILE_ENV",
    "active",
    "configure_tracing",
    "consumer_span",
    "current_trace_headers",
    "current_traceparent",
    "db_span",
    "edge_context",
    "failed",
    "instrument_engine",
    "producer_span",
    "trace_context",
    "tracer",
    "valid_traceparent",
]

TRACEPARENT_HEADER = "traceparent"
TRACESTATE_HEADER = "tracestate"
TRACES_FILE_ENV = "SHOP_TRACES_FILE"

_SPAN_ID_MASK = (1 << 64) - 1
# version 00: 00-<trace-id>-<parent-id>-<flags>; all-zero ids are invalid.
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")

log = logging.getLogger(__name__)
tracer = trace.get_tracer("shop_common")
_configured: str | None = None


def configure_tracing(process: str) -> None:
    """Install the SDK's tracer provider for this process (`process` is the default
    `service.name`, e.g. `orders-api`; `OTEL_SERVICE_NAME` overrides it). Once per process."""
    global _configured
    if _configured is not None:
        return
    _configured = process
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    processors = _span_processors()
    if not processors:
        # Nothing would leave the process: without an SDK, FastAPI's telemetry stays off
        # and spans cost nothing (measured in ADR 0018); contexts still propagate.
        return
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    # Stable HTTP attribute names (http.request.method, ...), as FastAPI's spans use.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    attributes: dict[str, Any] = {"service.namespace": "shop"}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = process
    # The sampler is OTEL_TRACES_SAMPLER's (default: parent-based, always on).
    provider = TracerProvider(resource=Resource.create(attributes))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    log.info("tracing: %s exports spans", provider.resource.attributes.get(SERVICE_NAME))


def active() -> bool:
    """Whether a tracer provider records spans in this process (an SDK, ours or a test's):
    instrumentation that costs even when nothing records is installed only then."""
    provider = type(trace.get_tracer_provider())
    return provider not in (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def _span_processors() -> list[Any]:
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    processors: list[Any] = []
    exporters = {
        name.strip().lower()
        for name in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if name.strip()
    }
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if "otlp" in exporters and endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in exporters:
        processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
    path = os.environ.get(TRACES_FILE_ENV)
    if path:
        out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        processors.append(
            SimpleSpanProcessor(
                ConsoleSpanExporter(
                    out=out, formatter=lambda span: span.to_json(indent=None) + "\n"
                )
            )
        )
    return processors


def valid_traceparent(value: str | None) -> str | None:
    """`value` if it is a well-formed version-00 traceparent; otherwise None (W3C: ignore it)."""
    if value is not None and _TRACEPARENT.match(value):
        return value
    return None


def current_trace_headers() -> dict[str, str]:
    """The current span's context as W3C headers (`traceparent`, and `tracestate` if any);
    empty when there is no valid span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def current_traceparent() -> str | None:
    return current_trace_headers().get(TRACEPARENT_HEADER)


def _remote(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context:
    """A context whose parent is the (remote) span `traceparent` names; empty if none."""
    carrier: dict[str, str] = {}
    if traceparent:
        carrier[TRACEPARENT_HEADER] = traceparent
        if tracestate:
            carrier[TRACESTATE_HEADER] = tracestate
    return propagate.extract(carrier, context=otel_context.Context())


def edge_context(traceparent: bytes | None) -> otel_context.Context:
    """For a request no SDK opened a span for: the caller's context as it came, or a new
    trace (not sampled: nothing here records it)."""
    if traceparent is not None:
        valid = valid_traceparent(traceparent.decode("latin-1"))
        if valid is not None:
            return _remote(valid)
    ids = int.from_bytes(os.urandom(24), "big")  # one system call for both ids
    span = NonRecordingSpan(
        SpanContext(trace_id=ids >> 64, span_id=ids & _SPAN_ID_MASK or 1, is_remote=False)
    )
    return trace.set_span_in_context(span, otel_context.Context())


@contextmanager
def trace_context(traceparent: str | None, tracestate: str | None = None) -> Iterator[None]:
    """Make the span `traceparent` names current inside the block (none if it is invalid)."""
    token = otel_context.attach(_remote(valid_traceparent(traceparent), tracestate))
    try:
        yield
    finally:
        otel_context.detach(token)


def _messaging(
    operation: str, kind: str, destination: str, message_id: str, routing_key: str
) -> dict[str, Any]:
    return {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": kind,
        "messaging.operation.name": operation,
        "messaging.destination.name": destination,
        "messaging.message.id": message_id,
        "messaging.rabbitmq.destination.routing_key": routing_key,
    }


@contextmanager
def producer_span(
    *, exchange: str, routing_key: str, message_id: str, parent: Mapping[str, Any] | None
) -> Iterator[Span]:
    """The relay's span for publishing one outbox row: a child of the context the row was
    written in (`parent`: the row's stored headers), current inside the block so the
    message carries this span's context."""
    context = _remote(
        valid_traceparent((parent or {}).get(TRACEPARENT_HEADER)),
        (parent or {}).get(TRACESTATE_HEADER),
    )
    with tracer.start_as_current_span(
        f"publish {exchange}",
        context=context,
        kind=SpanKind.PRODUCER,
        attributes=_messaging("publish", "send", exchange, message_id, routing_key),
    ) as span:
        yield span


@contextmanager
def consumer_span(
    *,
    queue: str,
    routing_key: str,
    message_id: str,
    traceparent: str | None,
    tracestate: str | None,
) -> Iterator[Span]:
    """The consumer's span for handling one message: a child of the publisher's span."""
    with tracer.start_as_current_span(
        f"process {queue}",
        context=_remote(traceparent, tracestate),
        kind=SpanKind.CONSUMER,
        attributes=_messaging("process", "process", queue, message_id, routing_key),
    ) as span:
        yield span


def failed(span: Span, description: str) -> None:
    """Mark `span` as failed without an exception (an outcome, not a raise)."""
    if span.is_recording():
        span.set_status(StatusCode.ERROR, description)


@contextmanager
def db_span(statement: str, *, database: str | None) -> Iterator[None]:
    """A CLIENT span for one SQL statement, only under a span that records: background
    polling (the relay's claims, gauges, probes) starts no traces of its own, and an
    unsampled request pays one check."""
    if not trace.get_current_span().is_recording():
        yield
        return
    with tracer.start_as_current_span(**_statement_span(statement, database)):
        yield


def _statement_span(statement: str, database: str | None) -> dict[str, Any]:
    """Name, kind and attributes of a statement's span (named by its first keyword)."""
    words = statement.lstrip().split(None, 1)
    operation = words[0].upper() if words else "postgresql"
    attributes: dict[str, Any] = {
        "db.system.name": "postgresql",
        "db.operation.name": operation,
        "db.query.text": statement,
    }
    if database:
        attributes["db.namespace"] = database
    return {"name": operation, "kind": SpanKind.CLIENT, "attributes": attributes}


def instrument_engine(engine: Any) -> None:
    """CLIENT spans for an SQLAlchemy (async) engine's statements, from its cursor events.

    OpenTelemetry's SQLAlchemy instrumentation declares `sqlalchemy<2.1` and we run 2.1;
    asyncpg's sees SQLAlchemy's BEGIN and COMMIT but not its statements (they go through
    prepared statements). These two events are what it would do, and no more."""
    from sqlalchemy import event

    if not active():  # listeners cost about 25 us per statement even when nothing records
        return
    sync_engine = getattr(engine, "sync_engine", engine)
    database = sync_engine.url.database
    key = "_shop_span"

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _start(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if context is None or not trace.get_current_span().is_recording():
            return
        setattr(context, key, tracer.start_span(**_statement_span(statement, database)))

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _end(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        span = getattr(context, key, None)
        if span is not None:
            span.end()
            setattr(context, key, None)

    @event.listens_for(sync_engine, "handle_error")
    def _error(exception_context: Any) -> None:
        context = exception_context.execution_context
        span = getattr(context, key, None) if context is not None else None
        if span is not None:
            span.set_status(StatusCode.ERROR, type(exception_context.original_exception).__name__)
            span.end()
            setattr(context, key, None)
