"""What `configure_tracing` installs for each environment, and the edge's context where no
SDK runs. A process's tracer provider is set once, so each configuration runs in a fresh
interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shop_common.tracing import current_traceparent
from shop_common.web.edge import EdgeMiddleware

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

# Configure, trace one request-like span and one database span under it, report.
PROBE = """
import json, sys
from opentelemetry import trace
from shop_common.tracing import configure_tracing, db_span, tracer
configure_tracing("catalog-api")
provider = trace.get_tracer_provider()
sdk = type(provider).__module__.startswith("opentelemetry.sdk")
with tracer.start_as_current_span("request"):
    with db_span("SELECT 1", database="shop"):
        pass
processors = []
if sdk:
    provider.force_flush()
    active = provider._active_span_processor._span_processors
    processors = [
        [type(p).__name__, type(getattr(p, "span_exporter", None)
                                or p._batch_processor._exporter).__name__]
        for p in active
    ]
    name = provider.resource.attributes["service.name"]
else:
    name = None
print(json.dumps({"sdk": sdk, "processors": processors, "service": name}))
"""


def run_fresh(code: str, env: dict[str, str]) -> Any:
    """Run `code` in a fresh interpreter with no tracing settings but `env`; what it printed
    last, as JSON."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SHOP_TRACES"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def configured(env: dict[str, str]) -> dict[str, Any]:
    report: dict[str, Any] = run_fresh(PROBE, env)
    return report


def test_without_an_exporter_there_is_no_sdk() -> None:
    assert configured({}) == {"sdk": False, "processors": [], "service": None}
    # An OTLP exporter needs an endpoint: naming the exporter alone sends nothing.
    assert configured({"OTEL_TRACES_EXPORTER": "otlp"})["sdk"] is False


def test_an_otlp_endpoint_exports_in_batches() -> None:
    report = configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert report["sdk"] is True
    assert report["processors"] == [["BatchSpanProcessor", "OTLPSpanExporter"]]
    assert report["service"] == "catalog-api"


def test_a_file_gets_every_span_as_a_json_line(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    report = configured({"SHOP_TRACES_FILE": str(path), "OTEL_SERVICE_NAME": "renamed"})
    assert report["processors"] == [["SimpleSpanProcessor", "ConsoleSpanExporter"]]
    assert report["service"] == "renamed"
    spans = [json.loads(line) for line in path.read_text().splitlines()]
    assert [s["name"] for s in spans] == ["SELECT", "request"]
    statement, request = spans
    assert statement["parent_id"] == request["context"]["span_id"]
    assert statement["kind"] == "SpanKind.CLIENT"
    assert statement["attributes"]["db.system.name"] == "postgresql"
    assert statement["attributes"]["db.query.text"] == "SELECT 1"


def test_the_sdk_can_be_disabled(tmp_path: Path) -> None:
    env = {"SHOP_TRACES_FILE": str(tmp_path / "spans.jsonl"), "OTEL_SDK_DISABLED": "true"}
    assert configured(env)["sdk"] is False
    assert not (tmp_path / "spans.jsonl").exists()


# --------------------------------------------------- the edge where no SDK opened a span


@pytest.fixture
async def bare() -> Any:
    """The edge around a plain Starlette app: no FastAPI telemetry opens a span, as in a
    process without an SDK."""

    async def seen(request: Request) -> JSONResponse:
        return JSONResponse({"traceparent": current_traceparent()})

    app = EdgeMiddleware(
        Starlette(routes=[Route("/seen", seen)]),
        max_body_bytes=1024,
        max_in_flight=8,
        retry_after_seconds=1,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client


async def test_without_a_span_the_callers_context_passes_on_as_it_came(bare: Any) -> None:
    seen = (await bare.get("/seen", headers={"traceparent": TRACEPARENT})).json()
    assert seen["traceparent"] == TRACEPARENT


async def test_without_a_span_a_request_gets_a_new_unsampled_trace(bare: Any) -> None:
    fresh = [
        (await bare.get("/seen", headers=headers)).json()["traceparent"]
        for headers in ({}, {}, {"traceparent": "00-garbage"})
    ]
    for traceparent in fresh:
        version, trace_id, span_id, flags = traceparent.split("-")
        assert (version, flags) == ("00", "00")
        assert len(trace_id) == 32
        assert trace_id != "0" * 32
        assert len(span_id) == 16
        assert span_id != "0" * 16
    assert len({t.split("-")[1] for t in fresh}) == 3
    assert current_traceparent() is None


# Without an SDK the messaging spans are the API's no-op ones: what they make current is
# the context they were given, so the events a handler writes carry the incoming trace.
PASS_THROUGH = """
import json
from shop_common.tracing import (
    configure_tracing, consumer_span, current_traceparent, producer_span, trace_context,
)
configure_tracing("orders-worker")
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
with producer_span(exchange="e", routing_key="k", message_id="1", parent={"traceparent": TP}):
    published = current_traceparent()
with consumer_span(queue="q", routing_key="k", message_id="1", traceparent=TP, tracestate=None):
    consumed = current_traceparent()
with producer_span(exchange="e", routing_key="k", message_id="1", parent={}):
    untraced = current_traceparent()
print(json.dumps([published, consumed, untraced]))
"""


def test_without_an_sdk_events_pass_the_trace_on_as_it_came() -> None:
    assert run_fresh(PASS_THROUGH, {}) == [TRACEPARENT, TRACEPARENT, None]
