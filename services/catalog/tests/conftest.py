"""Catalog test fixtures: `client` is the real Catalog app over ASGI (see the root conftest)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest


@pytest.fixture
def client(catalog_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return catalog_client


def product_body(**overrides: Any) -> dict[str, Any]:
    """A valid create body with a unique sku: every test owns its data."""
    body: dict[str, Any] = {
        "sku": f"SKU-{uuid.uuid4().hex[:12]}",
        "name": "Test widget",
        "description": "A thing for tests",
        "price_cents": 1299,
        "currency": "EUR",
        "stock_available": 10,
    }
    body.update(overrides)
    return body


NewProduct = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def new_product(client: httpx.AsyncClient, admin: dict[str, str]) -> NewProduct:
    async def create(**overrides: Any) -> dict[str, Any]:
        response = await client.post("/v1/products", json=product_body(**overrides), headers=admin)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return create
