"""Every call carries the caller's trace: with spans recorded, as the parent of a CLIENT
span per attempt; without an SDK, the context as it is (no instrumentation)."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shop_common import tracing
from shop_common.http import ResilientHttpClient, ResilientHttpClientConfig
from shop_common.tracing import trace_context

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CONFIG = ResilientHttpClientConfig(target="catalog", base_url="http://catalog.test")


def upstream(seen: list[str | None]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("traceparent"))
        return httpx.Response(200, json={})

    return httpx.MockTransport(handle)


async def test_with_spans_recorded_each_call_is_a_client_span_the_upstream_continues(
    spans: InMemorySpanExporter,
) -> None:
    seen: list[str | None] = []
    async with ResilientHttpClient(CONFIG, transport=upstream(seen)) as client:
        with trace_context(TRACEPARENT):
            await client.get_json("/v1/products")
    [call] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert call.parent is not None
    assert format(call.parent.span_id, "016x") == TRACEPARENT.split("-")[2]
    assert seen == [f"00-{TRACEPARENT.split('-')[1]}-{call.context.span_id:016x}-01"]


async def test_without_an_sdk_the_context_is_passed_on_as_it_is(
    monkeypatch: pytest.MonkeyPatch, spans: InMemorySpanExporter
) -> None:
    monkeypatch.setattr(tracing, "active", lambda: False)
    seen: list[str | None] = []
    async with ResilientHttpClient(CONFIG, transport=upstream(seen)) as client:
        with trace_context(TRACEPARENT):
            await client.get_json("/v1/products")
        await client.get_json("/v1/products")  # no trace: no header
    assert seen == [TRACEPARENT, None]
    assert spans.get_finished_spans() == ()
