"""No malformed request gets a 5xx or writes anything: each gets a 4xx problem+json."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.support import assert_problem

pytestmark = pytest.mark.integration

VALID = {"sku": "OK-1", "name": "n", "price_cents": 1, "currency": "EUR"}


@pytest.mark.parametrize(
    "body",
    [
        {**VALID, "sku": ""},
        {**VALID, "sku": "has space"},
        {**VALID, "sku": "x" * 65},
        {**VALID, "sku": 12},
        {**VALID, "name": "   "},
        {**VALID, "name": "n" * 201},
        {**VALID, "description": "d" * 2001},
        {**VALID, "price_cents": -1},
        {**VALID, "price_cents": 10**100},
        {**VALID, "price_cents": 1000.5},
        {**VALID, "price_cents": "1000"},
        {**VALID, "price_cents": True},
        {**VALID, "price_cents": None},
        {**VALID, "currency": "eur"},
        {**VALID, "currency": "EURO"},
        {**VALID, "stock_available": -5},
        {**VALID, "stock_available": 2**63},
        {**VALID, "active": "true"},
        {**VALID, "id": str(uuid.uuid4())},
        {**VALID, "version": 7},
        {**VALID, "stock_reserved": 3},
        {k: v for k, v in VALID.items() if k != "sku"},
        [VALID],
        None,
        "text",
        123,
    ],
)
async def test_create_rejects_bad_fields_with_422(
    client: httpx.AsyncClient, admin: dict[str, str], body: Any
) -> None:
    response = await client.post("/v1/products", json=body, headers=admin)
    problem = assert_problem(response, 422)
    assert problem["errors"], problem


async def test_a_whole_number_may_be_written_as_a_float(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """JSON Schema (the OpenAPI 3.1 document) counts 1000.0 as an integer, so we do too."""
    body = {**VALID, "sku": f"F-{uuid.uuid4().hex[:8]}", "price_cents": 1e3}
    response = await client.post("/v1/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["price_cents"] == 1000


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"sku": "A",}', b"\xff\xfe", b'{"price_cents": NaN}', b"[" * 5000],
)
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, admin: dict[str, str], raw: bytes
) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    response = await client.post("/v1/products", content=raw, headers=headers)
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)


async def test_non_json_content_type_is_4xx(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    headers = {**admin, "Content-Type": "text/plain"}
    response = await client.post("/v1/products", content=json.dumps(VALID), headers=headers)
    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)


async def test_oversized_body_is_413_by_content_length(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {**VALID, "description": "x" * 70_000}
    assert_problem(await client.post("/v1/products", json=body, headers=admin), 413)


async def test_oversized_chunked_body_is_413(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"sku": "BIG", "description": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    headers = {**admin, "Content-Type": "application/json"}
    response = await client.post("/v1/products", content=chunks(), headers=headers)
    assert_problem(response, 413)
    assert (await client.get("/v1/products", params={"q": "BIG"})).json()["items"] == []


async def test_unknown_route_and_method_are_problem_json(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nope"), 404)
    assert_problem(await client.put("/v1/products"), 405)


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "x"])
async def test_garbage_authorization_is_401(client: httpx.AsyncClient, header: str) -> None:
    response = await client.post("/v1/products", json=VALID, headers={"Authorization": header})
    assert_problem(response, 401)


@pytest.mark.parametrize(
    "body",
    [
        {**VALID, "name": "bad\x00name"},
        {**VALID, "description": "nul \x00 inside"},
    ],
)
async def test_nul_characters_in_text_are_422(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any]
) -> None:
    assert_problem(await client.post("/v1/products", json=body, headers=admin), 422)


async def test_nul_in_a_query_is_4xx_not_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/products", params={"q": "a\x00b"})
    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)


def _cursor(created_at: str) -> str:
    raw = json.dumps([created_at, str(uuid.uuid4())]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "created_at",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59", "2026-01-01T00:00:00"],
)
async def test_forged_cursors_out_of_range_or_naive_are_400(
    client: httpx.AsyncClient, created_at: str
) -> None:
    assert_problem(await client.get("/v1/products", params={"cursor": _cursor(created_at)}), 400)


async def test_incoming_traceparent_rides_on_the_event(
    client: httpx.AsyncClient, admin: dict[str, str], db: Any, spans: InMemorySpanExporter
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    body = {**VALID, "sku": f"TRACE-{uuid.uuid4().hex[:8]}"}
    traced = await client.post(
        "/v1/products", json=body, headers={**admin, "traceparent": traceparent}
    )
    assert traced.status_code == 201
    untraced = await client.post(
        "/v1/products", json={**body, "sku": body["sku"] + "-2"}, headers=admin
    )
    rows = {
        r["subject"]: json.loads(r["headers"])
        for r in await db.fetch(
            "SELECT subject, headers FROM catalog.outbox WHERE subject = ANY($1)",
            [traced.json()["id"], untraced.json()["id"]],
        )
    }
    # The event carries the request's server span: the caller's trace, sampled as it said.
    [server] = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.SERVER and s.name == "POST /v1/products"
    ]
    assert rows[traced.json()["id"]]["traceparent"] == (
        f"00-4bf92f3577b34da6a3ce929d0e0e4736-{server.context.span_id:016x}-01"
    )
    # A request without a trace starts one (not sampled: no exporter in the tests).
    fresh = rows[untraced.json()["id"]]["traceparent"]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[02]", fresh)
    assert fresh.split("-")[1] != traceparent.split("-")[1]
