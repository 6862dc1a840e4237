"""Catalog test fixtures: a provisioned, migrated schema and the real app over ASGI."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from tests.support import TEST_JWT_SECRET, ServiceDb

from shop_catalog.main import create_app
from shop_catalog.settings import CatalogSettings


@pytest.fixture(scope="session")
def catalog_db(provision_service: Callable[[str], ServiceDb]) -> ServiceDb:
    return provision_service("catalog")


@pytest.fixture(scope="session")
def catalog_settings(catalog_db: ServiceDb, amqp_url: str) -> CatalogSettings:
    return CatalogSettings(
        database_url=catalog_db.url,
        amqp_url=SecretStr(amqp_url),
        jwt_secret=SecretStr(TEST_JWT_SECRET),
    )


@pytest.fixture(scope="session")
async def catalog_app(catalog_settings: CatalogSettings) -> AsyncIterator[FastAPI]:
    app = create_app(catalog_settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def client(catalog_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=catalog_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as c:
        yield c


@pytest.fixture(scope="session")
def admin(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('root', 'admin')}"}


@pytest.fixture(scope="session")
def customer(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('alice', 'customer')}"}


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
