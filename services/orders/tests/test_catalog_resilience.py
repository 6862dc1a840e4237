"""Orders against a real Catalog process that is stopped and restarted.

Shows the breaker's state machine end to end, that placement answers within its deadline
while Catalog is down, the replica fallback, and live pricing again after recovery.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import REGISTRY

from shop_catalog.settings import CatalogSettings
from shop_common.http import BreakerState
from shop_orders.main import CATALOG_HTTP, create_app
from shop_orders.settings import OrdersSettings
from tests.support import assert_problem
from tests.support.orders import key_header, order_body
from tests.support.processes import ServiceProcess, free_port

pytestmark = pytest.mark.integration

DEADLINE = 2.0
RESET_TIMEOUT = 1.5


@pytest.fixture
def catalog_process(catalog_settings: CatalogSettings) -> Iterator[ServiceProcess]:
    port = free_port()
    env = {
        "CATALOG_PORT": str(port),
        "CATALOG_DATABASE_URL": catalog_settings.database_url,
        "CATALOG_AMQP_URL": catalog_settings.amqp_url.get_secret_value(),
        "CATALOG_JWT_SECRET": catalog_settings.jwt_secret.get_secret_value(),  # type: ignore[union-attr]
        "CATALOG_LOG_LEVEL": "WARNING",
    }
    process = ServiceProcess("catalog-api", env, ready_url=f"http://127.0.0.1:{port}/livez")
    process.start()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
async def orders_client(
    catalog_process: ServiceProcess,
    orders_settings_factory: Callable[..., OrdersSettings],
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    assert catalog_process.ready_url is not None
    settings = orders_settings_factory(
        catalog_url=catalog_process.ready_url.removesuffix("/livez"),
        catalog_deadline=DEADLINE,
        catalog_breaker_fail_max=3,
        catalog_breaker_reset_timeout=RESET_TIMEOUT,
    )
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders.test"
        ) as client,
    ):
        yield client, app


def _state(app: FastAPI) -> BreakerState:
    state: BreakerState = CATALOG_HTTP.get(app).breaker.state
    return state


async def _place(
    client: httpx.AsyncClient, headers: dict[str, str], product_id: str
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.post(
        "/v1/orders", json=order_body((product_id, 1)), headers={**headers, **key_header()}
    )
    return response, time.monotonic() - started


async def test_breaker_opens_falls_back_and_closes_against_a_real_catalog_process(
    orders_client: tuple[httpx.AsyncClient, FastAPI],
    catalog_process: ServiceProcess,
    customer: dict[str, str],
    new_product: Any,
    db: asyncpg.Connection,
) -> None:
    client, app = orders_client
    product = await new_product(price_cents=777)
    unreplicated = await new_product()

    live, _ = await _place(client, customer, product["id"])
    assert live.status_code == 201, live.text
    assert live.json()["pricing_source"] == "catalog"
    assert _state(app) is BreakerState.CLOSED

    catalog_process.kill()
    fallbacks = REGISTRY.get_sample_value("shop_orders_replica_fallbacks_total") or 0.0
    from_replica = REGISTRY.get_sample_value(
        "shop_orders_placed_total", {"pricing_source": "replica"}
    )

    # Closed -> open: connection refusals count; with no replica entry the answer is 503.
    down, elapsed = await _place(client, customer, unreplicated["id"])
    problem = assert_problem(down, 503)
    assert problem["type"] == "/problems/pricing-unavailable"
    assert int(down.headers["retry-after"]) >= 1
    assert elapsed < DEADLINE + 1.0
    assert _state(app) is BreakerState.OPEN

    # Open: fails fast without touching the network, and the replica prices the order.
    await db.execute(
        "INSERT INTO orders.product_replica (product_id, sku, name, price_cents, currency, "
        "active, version) VALUES ($1, $2, 'Replica name', 700, 'EUR', true, 1)",
        uuid.UUID(product["id"]),
        product["sku"],
    )
    fallback, elapsed = await _place(client, customer, product["id"])
    assert fallback.status_code == 201, fallback.text
    assert fallback.json()["pricing_source"] == "replica"
    assert fallback.json()["lines"][0]["unit_price_cents"] == 700
    assert elapsed < DEADLINE  # the breaker answers; nothing waits for a dead Catalog

    metric = REGISTRY.get_sample_value("shop_http_client_circuit_state", {"target": "catalog"})
    assert metric == 2
    # Both placements turned to the replica; the one it could price counts as placed from it.
    assert REGISTRY.get_sample_value("shop_orders_replica_fallbacks_total") == fallbacks + 2
    placed = REGISTRY.get_sample_value("shop_orders_placed_total", {"pricing_source": "replica"})
    assert placed == (from_replica or 0.0) + 1

    # Half-open after the reset timeout; a successful trial closes it.
    catalog_process.start()
    await asyncio.sleep(RESET_TIMEOUT + 0.2)
    recovered, _ = await _place(client, customer, product["id"])
    assert recovered.status_code == 201, recovered.text
    assert recovered.json()["pricing_source"] == "catalog"
    assert recovered.json()["lines"][0]["unit_price_cents"] == 777
    assert _state(app) is BreakerState.CLOSED
    assert REGISTRY.get_sample_value("shop_http_client_circuit_state", {"target": "catalog"}) == 0


async def test_failed_half_open_trial_reopens(
    orders_client: tuple[httpx.AsyncClient, FastAPI],
    catalog_process: ServiceProcess,
    customer: dict[str, str],
    new_product: Any,
) -> None:
    client, app = orders_client
    product = await new_product()
    catalog_process.kill()
    await _place(client, customer, product["id"])
    assert _state(app) is BreakerState.OPEN
    await asyncio.sleep(RESET_TIMEOUT + 0.2)
    trial, elapsed = await _place(client, customer, product["id"])
    assert_problem(trial, 503)
    assert elapsed < DEADLINE + 1.0
    assert _state(app) is BreakerState.OPEN
