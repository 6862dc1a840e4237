"""Idempotency-Key rules, including under real concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from shop_common.web.sessions import DRIVER_POOL
from shop_orders.main import create_app
from shop_orders.settings import OrdersSettings
from tests.support import assert_problem
from tests.support.orders import key_header, order_body

pytestmark = pytest.mark.integration


async def _count_orders(db: asyncpg.Connection, customer_id: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM orders.orders WHERE customer_id = $1", customer_id
    )
    return count


async def test_same_key_same_body_replays_the_first_response(
    client: httpx.AsyncClient, make_token: Any, new_product: Any, db: asyncpg.Connection
) -> None:
    who = f"replay-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {make_token(who, 'customer')}", **key_header()}
    product = await new_product()
    body = order_body((product["id"], 2))
    first = await client.post("/v1/orders", json=body, headers=headers)
    second = await client.post("/v1/orders", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count_orders(db, who) == 1


async def test_same_key_other_body_is_422(
    client: httpx.AsyncClient, customer: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    headers = {**customer, **key_header()}
    first = await client.post("/v1/orders", json=order_body((product["id"], 1)), headers=headers)
    assert first.status_code == 201
    other = await client.post("/v1/orders", json=order_body((product["id"], 2)), headers=headers)
    problem = assert_problem(other, 422)
    assert problem["type"] == "/problems/idempotency-key-reused"


async def test_keys_are_scoped_per_customer(
    client: httpx.AsyncClient,
    customer: dict[str, str],
    bob: dict[str, str],
    new_product: Any,
) -> None:
    product = await new_product()
    key = key_header()
    body = order_body((product["id"], 1))
    a = await client.post("/v1/orders", json=body, headers={**customer, **key})
    b = await client.post("/v1/orders", json=body, headers={**bob, **key})
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert (a.json()["customer_id"], b.json()["customer_id"]) == ("alice", "bob")


async def test_expired_key_starts_afresh(
    client: httpx.AsyncClient, make_token: Any, new_product: Any, db: asyncpg.Connection
) -> None:
    who = f"expiry-{uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {make_token(who, 'customer')}", "Idempotency-Key": key}
    product = await new_product()
    body = order_body((product["id"], 1))
    first = await client.post("/v1/orders", json=body, headers=headers)
    await db.execute(
        "UPDATE orders.idempotency_keys SET expires_at = now() - interval '1 second' "
        "WHERE customer_id = $1 AND key = $2",
        who,
        key,
    )
    again = await client.post("/v1/orders", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert await _count_orders(db, who) == 2


async def test_abandoned_claim_is_taken_over_by_the_same_request(
    client: httpx.AsyncClient, make_token: Any, new_product: Any, db: asyncpg.Connection
) -> None:
    """A request that died after claiming its key must not block retries until expiry."""
    who = f"abandon-{uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {make_token(who, 'customer')}", "Idempotency-Key": key}
    product = await new_product()
    body = order_body((product["id"], 1))
    from shop_orders.idempotency.service import fingerprint

    parsed = {"lines": [{"product_id": product["id"], "quantity": 1}]}
    await db.execute(
        "INSERT INTO orders.idempotency_keys (customer_id, key, fingerprint, claimed_until, "
        "expires_at) VALUES ($1, $2, $3, now() - interval '1 second', now() + interval '1 day')",
        who,
        key,
        fingerprint("POST", "/v1/orders", parsed),
    )
    response = await client.post("/v1/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert await _count_orders(db, who) == 1


async def test_a_failed_request_releases_its_key(
    client: httpx.AsyncClient, customer: dict[str, str], new_product: Any
) -> None:
    headers = {**customer, **key_header()}
    unknown = await client.post(
        "/v1/orders", json=order_body((str(uuid.uuid4()), 1)), headers=headers
    )
    assert_problem(unknown, 422)
    product = await new_product()
    fixed = await client.post("/v1/orders", json=order_body((product["id"], 1)), headers=headers)
    assert fixed.status_code == 201, fixed.text


class GatedTransport(httpx.AsyncBaseTransport):
    """Passes requests to `inner`, but each waits at the gate until the test opens it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.arrived = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.arrived.set()
        await self.gate.wait()
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def gated(
    orders_settings_factory: Callable[..., OrdersSettings], catalog_app: FastAPI
) -> AsyncIterator[tuple[httpx.AsyncClient, GatedTransport]]:
    transport = GatedTransport(httpx.ASGITransport(app=catalog_app))
    app = create_app(orders_settings_factory(catalog_deadline=30), catalog_transport=transport)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders.test"
        ) as client,
    ):
        yield client, transport


async def test_same_key_while_the_first_is_in_flight_is_409(
    gated: tuple[httpx.AsyncClient, GatedTransport],
    make_token: Any,
    new_product: Any,
    db: asyncpg.Connection,
) -> None:
    client, transport = gated
    who = f"inflight-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {make_token(who, 'customer')}", **key_header()}
    product = await new_product()
    body = order_body((product["id"], 1))
    first = asyncio.create_task(client.post("/v1/orders", json=body, headers=headers))
    await asyncio.wait_for(transport.arrived.wait(), timeout=5)
    duplicate = await client.post("/v1/orders", json=body, headers=headers)
    problem = assert_problem(duplicate, 409)
    assert problem["type"] == "/problems/idempotency-key-in-flight"
    assert duplicate.headers["retry-after"] == "1"
    transport.gate.set()
    done = await asyncio.wait_for(first, timeout=10)
    assert done.status_code == 201
    replay = await client.post("/v1/orders", json=body, headers=headers)
    assert replay.json() == done.json()
    assert await _count_orders(db, who) == 1


async def test_twenty_concurrent_requests_with_one_key_create_exactly_one_order(
    gated: tuple[httpx.AsyncClient, GatedTransport],
    make_token: Any,
    new_product: Any,
    db: asyncpg.Connection,
) -> None:
    client, transport = gated
    transport.gate.set()
    who = f"burst-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {make_token(who, 'customer')}", **key_header()}
    product = await new_product()
    body = order_body((product["id"], 3))
    responses = await asyncio.gather(
        *(client.post("/v1/orders", json=body, headers=headers) for _ in range(20))
    )
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 409}, codes
    assert codes[201] >= 1
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert await _count_orders(db, who) == 1
    events = await db.fetchval(
        "SELECT count(*) FROM orders.outbox o JOIN orders.orders r ON o.subject = r.id::text "
        "WHERE r.customer_id = $1",
        who,
    )
    assert events == 1


async def test_a_taken_over_claim_can_neither_complete_nor_release(
    orders_app: FastAPI, db: asyncpg.Connection
) -> None:
    from shop_orders.idempotency.service import Claim, claim, release
    from shop_orders.messaging import outbox
    from shop_orders.orders.models import Order, PricedLine, PricingSource
    from shop_orders.orders.repository import insert_placed

    driver = DRIVER_POOL.get(orders_app)
    who, key = f"takeover-{uuid.uuid4().hex[:8]}", "k-1"
    first = Claim(customer_id=who, key=key, fingerprint="f" * 64)
    assert await claim(driver, first, ttl_seconds=3600, claim_seconds=30) is None
    await db.execute(
        "UPDATE orders.idempotency_keys SET claimed_until = now() - interval '1 second' "
        "WHERE customer_id = $1",
        who,
    )
    second = Claim(customer_id=who, key=key, fingerprint="f" * 64)
    assert await claim(driver, second, ttl_seconds=3600, claim_seconds=30) is None
    await release(driver, first)  # the stale holder gives up: must not free the new claim
    token = await db.fetchval(
        "SELECT claim_token FROM orders.idempotency_keys WHERE customer_id = $1", who
    )
    assert token == second.token

    async def complete(holder: Claim) -> bool:
        line = PricedLine(uuid.uuid4(), "SKU-1", "Thing", unit_price_cents=100, quantity=1)
        order, placed = Order.place(
            who, [line], currency="EUR", pricing_source=PricingSource.CATALOG
        )
        _, event_row = outbox.prepare(placed.type, placed.payload, subject=placed.subject)
        body = await insert_placed(
            driver,
            order,
            claim=holder,
            response_body={"id": str(order.id)},
            event_row=event_row,
            notify_channel=outbox.channel,
        )
        return body is not None

    assert not await complete(first)
    assert await _count_orders(db, who) == 0
    assert await complete(second)
    assert await _count_orders(db, who) == 1
