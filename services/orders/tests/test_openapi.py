"""The Orders OpenAPI document describes what placing an order really sends."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_placing_declares_the_order_body_and_its_headers(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    created = doc["paths"]["/v1/orders"]["post"]["responses"]["201"]
    schema = created["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/OrderOut"}
    assert set(created["headers"]) == {"Location", "Idempotent-Replayed", "X-Request-ID"}
