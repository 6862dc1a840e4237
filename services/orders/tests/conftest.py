"""Orders test fixtures: the real Orders app over ASGI, pricing from the real Catalog app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from shop_orders.main import create_app
from shop_orders.settings import OrdersSettings
from tests.support import TEST_JWT_SECRET, ServiceDb


@pytest.fixture(scope="session")
def orders_db(provision_service: Callable[[str], ServiceDb]) -> ServiceDb:
    return provision_service("orders")


@pytest.fixture(scope="session")
def orders_settings_factory(orders_db: ServiceDb, amqp_url: str) -> Callable[..., OrdersSettings]:
    def make(**overrides: Any) -> OrdersSettings:
        values: dict[str, Any] = {
            "database_url": orders_db.url,
            "amqp_url": SecretStr(amqp_url),
            "jwt_secret": SecretStr(TEST_JWT_SECRET),
            "catalog_url": "http://catalog.test",
        }
        values.update(overrides)
        return OrdersSettings(**values)

    return make


@pytest.fixture(scope="session")
async def orders_app(
    orders_settings_factory: Callable[..., OrdersSettings], catalog_app: FastAPI
) -> AsyncIterator[FastAPI]:
    app = create_app(
        orders_settings_factory(), catalog_transport=httpx.ASGITransport(app=catalog_app)
    )
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def client(orders_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=orders_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as c:
        yield c


@pytest.fixture(scope="session")
def bob(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('bob', 'customer')}"}


NewProduct = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def new_product(catalog_client: httpx.AsyncClient, admin: dict[str, str]) -> NewProduct:
    async def create(**overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sku": f"OSKU-{uuid.uuid4().hex[:12]}",
            "name": "Orderable thing",
            "price_cents": 250,
            "currency": "EUR",
            "stock_available": 100,
        }
        body.update(overrides)
        response = await catalog_client.post("/v1/products", json=body, headers=admin)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return create
