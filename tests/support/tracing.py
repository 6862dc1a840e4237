"""The tracer provider of every test process: as in a service that exports spans
(`shop_common.tracing`: FastAPI's telemetry opens each request's span), sampling only
what a caller sampled, into `SPANS`, where tests read what was traced. The processes the
tests start run as configured: without an exporter they run with no SDK at all."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

SPANS = InMemorySpanExporter()


def install() -> None:
    """Once per test process (OpenTelemetry's global provider is set once)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": "tests"}), sampler=ParentBased(ALWAYS_OFF)
    )
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)
