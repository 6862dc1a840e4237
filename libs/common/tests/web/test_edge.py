"""The edge middleware, through `create_service_app` as the services get it: request ids,
trace context, load shedding, body limits, Cache-Control, RED metrics, unhandled errors,
CORS, `Location`, and no `/metrics` on the public app."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from starlette.applications import Starlette

from shop_common.auth import PrincipalDep, issue_dev_token
from shop_common.observability import request_id_var
from shop_common.tracing import current_traceparent
from shop_common.web import create_service_app, location
from shop_common.web.metrics import metrics_app
from tests.support import unconnected_settings

SECRET = "edge-test-secret-" + "0" * 32
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


class Gate:
    """Holds requests to `/slow` until opened; `full` is set once `wanted` are held."""

    def __init__(self, wanted: int = 1) -> None:
        self.open = asyncio.Event()
        self.full = asyncio.Event()
        self.wanted = wanted
        self.held = 0


def router(gate: Gate) -> APIRouter:
    api = APIRouter()

    @api.get("/things/{thing_id}", name="get_thing")
    async def get_thing(thing_id: uuid.UUID) -> dict[str, Any]:
        return {"id": str(thing_id), "request_id": request_id_var.get()}

    @api.post("/things", status_code=201)
    async def create_thing(request: Request, response: Response) -> dict[str, str]:
        thing_id = uuid.uuid4()
        response.headers["Location"] = location(request, "get_thing", thing_id=thing_id)
        return {"id": str(thing_id)}

    @api.get("/trace")
    async def trace() -> dict[str, str | None]:
        return {"traceparent": current_traceparent()}

    @api.get("/mine")
    async def mine(principal: PrincipalDep) -> dict[str, str]:
        return {"sub": principal.subject}

    @api.get("/mine/cacheable")
    async def mine_cacheable(principal: PrincipalDep, response: Response) -> dict[str, str]:
        response.headers["Cache-Control"] = "private, max-age=60"
        return {"sub": principal.subject}

    @api.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @api.get("/slow")
    async def slow() -> dict[str, str]:
        gate.held += 1
        if gate.held >= gate.wanted:
            gate.full.set()
        try:
            await gate.open.wait()
        finally:
            gate.held -= 1
        return {"status": "done"}

    @api.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    return api


@asynccontextmanager
async def no_resources(_app: FastAPI) -> AsyncIterator[None]:
    yield


def make_app(gate: Gate | None = None, **overrides: Any) -> FastAPI:
    settings = unconnected_settings(SECRET, **overrides)
    return create_service_app(
        title="Edge", settings=settings, routers=[router(gate or Gate())], lifespan=no_resources
    )


@asynccontextmanager
async def client_of(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
        yield client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(make_app()) as c:
        yield c


def bearer(subject: str = "alice") -> dict[str, str]:
    token = issue_dev_token(subject=subject, roles=["customer"], secret=SECRET)
    return {"Authorization": f"Bearer {token}"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ------------------------------------------------------------------ request id and trace


async def test_a_sane_request_id_is_kept_and_current_while_the_request_runs(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/things/{uuid.uuid4()}", headers={"X-Request-ID": "abc-123"})

    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"
    assert request_id_var.get() is None  # reset once the request is done


@pytest.mark.parametrize("incoming", [None, "", "x" * 129, "tab\there", "caf\u00e9".encode()])
async def test_a_missing_or_insane_request_id_is_replaced(
    client: httpx.AsyncClient, incoming: str | bytes | None
) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = await client.get(f"/things/{uuid.uuid4()}", headers=headers)

    assert HEX_ID.match(response.headers["x-request-id"])
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_every_response_carries_the_request_id(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/nowhere"),  # 404 from the router
        await client.get("/things/not-a-uuid"),  # 422 from validation
        await client.get("/mine"),  # 401 from the auth dependency
        await client.get("/livez"),
    ):
        assert HEX_ID.match(response.headers["x-request-id"]), response.status_code


async def test_a_request_continues_the_callers_trace_in_a_server_span(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    caller_trace, caller_span = TRACEPARENT.split("-")[1:3]
    seen = (await client.get("/trace", headers={"traceparent": TRACEPARENT})).json()

    # The handler runs inside FastAPI's server span: the caller's trace, a span of its own,
    # sampled as the caller said.
    _, trace_id, span_id, flags = seen["traceparent"].split("-")
    assert (trace_id, flags) == (caller_trace, "01")
    assert span_id != caller_span
    [server] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.name == "GET /trace"
    assert format(server.context.span_id, "016x") == span_id
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == caller_span
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/trace"
    assert server.attributes["http.response.status_code"] == 200


async def test_a_request_without_a_valid_traceparent_starts_a_new_unsampled_trace(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    replaced = (await client.get("/trace", headers={"traceparent": "00-garbage"})).json()
    fresh = (await client.get("/trace")).json()

    # Ids for the logs and the events, nothing recorded: no exporter is configured.
    for started in (replaced["traceparent"], fresh["traceparent"]):
        assert re.match(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[02]$", started)  # 02: not sampled
    assert replaced["traceparent"].split("-")[1] != fresh["traceparent"].split("-")[1]
    assert spans.get_finished_spans() == ()
    assert current_traceparent() is None


# ------------------------------------------------------------------ body size


async def test_a_body_over_the_limit_is_413_before_the_app_reads_it() -> None:
    async with client_of(make_app(max_body_bytes=1024)) as client:
        small = await client.post("/echo", content=b"x" * 1024)
        large = await client.post("/echo", content=b"x" * 1025)

    assert small.json() == {"bytes": 1024}
    assert large.status_code == 413
    assert large.headers["content-type"] == "application/problem+json"
    assert large.json()["type"] == "/problems/payload-too-large"
    assert HEX_ID.match(large.headers["x-request-id"])


async def test_a_chunked_body_is_stopped_once_it_passes_the_limit() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 512

    async with client_of(make_app(max_body_bytes=1024)) as client:
        response = await client.post("/echo", content=chunks())

    assert response.status_code == 413
    assert response.json()["type"] == "/problems/payload-too-large"


async def test_a_content_length_that_is_not_a_number_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", content=b"{}", headers={"Content-Length": "1e3"})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


# ------------------------------------------------------------------ load shedding


async def test_beyond_max_in_flight_a_request_is_shed_at_once_and_probes_still_answer() -> None:
    gate = Gate(wanted=3)
    shed_before = sample("http_requests_shed_total")
    async with client_of(make_app(gate, max_in_flight=3, shed_retry_after_seconds=2)) as client:
        held = [asyncio.create_task(client.get("/slow")) for _ in range(3)]
        await asyncio.wait_for(gate.full.wait(), 5)
        assert sample("http_requests_in_flight") == 3

        shed = await asyncio.wait_for(client.get(f"/things/{uuid.uuid4()}"), 1)
        live = await asyncio.wait_for(client.get("/livez"), 1)
        ready = await asyncio.wait_for(client.get("/readyz"), 1)

        gate.open.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200, 200]
        after = await client.get(f"/things/{uuid.uuid4()}")

    assert shed.status_code == 503
    assert shed.headers["content-type"] == "application/problem+json"
    assert shed.headers["retry-after"] == "2"
    assert shed.json()["type"] == "/problems/overloaded"
    assert HEX_ID.match(shed.headers["x-request-id"])
    assert (live.status_code, ready.status_code) == (200, 200)
    assert after.status_code == 200
    assert sample("http_requests_shed_total") == shed_before + 1
    assert sample("http_requests_in_flight") == 0


async def test_a_shed_request_never_reaches_the_app() -> None:
    gate = Gate(wanted=1)
    async with client_of(make_app(gate, max_in_flight=1)) as client:
        held = asyncio.create_task(client.get("/slow"))
        await asyncio.wait_for(gate.full.wait(), 5)
        # A body the app would answer 413 for if it read it: shedding comes first.
        shed = await client.post("/echo", content=b"x" * 100_000)
        gate.open.set()
        await held

    assert shed.status_code == 503


# ------------------------------------------------------------------ Cache-Control


async def test_responses_of_routes_that_take_a_token_are_private_and_not_stored(
    client: httpx.AsyncClient,
) -> None:
    ok = await client.get("/mine", headers=bearer())
    refused = await client.get("/mine")
    own = await client.get("/mine/cacheable", headers=bearer())
    public = await client.get(f"/things/{uuid.uuid4()}", headers=bearer())

    assert ok.status_code == 200
    assert ok.headers["cache-control"] == "private, no-store"
    assert refused.status_code == 401
    assert refused.headers["cache-control"] == "private, no-store"
    assert own.headers.get_list("cache-control") == ["private, max-age=60"]
    assert "cache-control" not in public.headers  # public reads stay cacheable


# ------------------------------------------------------------------ RED metrics


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    def count(handler: str, status: str) -> float:
        return sample("http_requests_total", method="GET", handler=handler, status=status)

    before_ok, before_bad = count("/things/{thing_id}", "200"), count("/things/{thing_id}", "422")
    before_404, before_probe = count("none", "404"), count("/livez", "200")
    for _ in range(3):
        assert (await client.get(f"/things/{uuid.uuid4()}")).status_code == 200
    assert (await client.get("/things/not-a-uuid")).status_code == 422
    assert (await client.get(f"/nowhere/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/livez")).status_code == 200

    assert count("/things/{thing_id}", "200") == before_ok + 3
    assert count("/things/{thing_id}", "422") == before_bad + 1
    assert count("none", "404") == before_404 + 1  # raw paths never become labels
    assert count("/livez", "200") == before_probe  # probes are not traffic


async def test_the_public_app_serves_no_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 404


# ------------------------------------------------------------------ unhandled errors


async def test_an_unhandled_error_is_a_500_problem_logged_with_the_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str | None] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(request_id_var.get())

    spy = Spy(level=logging.ERROR)
    logging.getLogger("shop_common.web.edge").addHandler(spy)
    try:
        with caplog.at_level(logging.ERROR):
            response = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    finally:
        logging.getLogger("shop_common.web.edge").removeHandler(spy)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/internal"
    assert response.headers["x-request-id"] == "req-500"
    assert seen == ["req-500"]
    assert "a bug" in caplog.text
    count = sample("http_requests_total", method="GET", handler="/boom", status="500")
    assert count >= 1


# ------------------------------------------------------------------ Location


async def test_location_is_relative_and_ignores_the_host_header(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/things", headers={"Host": "evil.example"})

    assert response.status_code == 201
    assert response.headers["location"] == f"/things/{response.json()['id']}"


async def test_location_uses_the_configured_public_base_url() -> None:
    app = make_app(public_base_url="https://shop.example.com/")
    async with client_of(app) as client:
        response = await client.post("/things", headers={"Host": "evil.example"})

    location_ = response.headers["location"]
    assert location_ == f"https://shop.example.com/things/{response.json()['id']}"


# ------------------------------------------------------------------ CORS


PREFLIGHT = {
    "Origin": "https://shop.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, idempotency-key, content-type",
}


async def test_cors_is_off_unless_configured(client: httpx.AsyncClient) -> None:
    preflight = await client.options("/things", headers=PREFLIGHT)
    simple = await client.get(f"/things/{uuid.uuid4()}", headers={"Origin": PREFLIGHT["Origin"]})

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allows_exactly_the_configured_origins() -> None:
    app = make_app(cors_allow_origins=("https://shop.example.com",))
    async with client_of(app) as client:
        allowed = await client.options("/things", headers=PREFLIGHT)
        other = await client.options(
            "/things", headers={**PREFLIGHT, "Origin": "https://evil.example"}
        )
        simple = await client.get(
            f"/things/{uuid.uuid4()}", headers={"Origin": "https://shop.example.com"}
        )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "Idempotency-Key" in allowed.headers["access-control-allow-headers"]
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "X-Request-ID" in simple.headers["access-control-expose-headers"]


def test_settings_read_cors_origins_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", json.dumps(["https://a.example", "https://b.example"]))
    settings = unconnected_settings(SECRET)
    assert settings.cors_allow_origins == ("https://a.example", "https://b.example")


async def test_the_metrics_port_serves_metrics_and_nothing_else() -> None:
    async with client_of(metrics_app()) as client:
        scrape = await client.get("/metrics")
        other = await client.get("/v1/products")

    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    assert "http_requests_shed_total" in scrape.text
    assert other.status_code == 404
