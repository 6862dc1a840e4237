"""Idempotency-Keys survive crashes: a key claimed by an API process that was killed is taken
over by the next retry at once (not after the lease), and dropped database connections
during placement are retried, never a 500 and never a second order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support import TEST_JWT_SECRET, ServiceDb
from tests.support.orders import order_body
from tests.support.processes import ServiceProcess, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
async def black_hole() -> AsyncIterator[str]:
    """An HTTP 'Catalog' that accepts connections and never answers: a request to it hangs."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.fixture
def hanging_api(
    orders_db: ServiceDb, amqp_url: str, black_hole: str
) -> Callable[[], ServiceProcess]:
    started: list[ServiceProcess] = []

    def start() -> ServiceProcess:
        port = free_port()
        process = ServiceProcess(
            "orders-api",
            {
                "ORDERS_PORT": str(port),
                "ORDERS_DATABASE_URL": orders_db.url,
                "ORDERS_AMQP_URL": amqp_url,
                "ORDERS_JWT_SECRET": TEST_JWT_SECRET,
                "ORDERS_CATALOG_URL": black_hole,
                "ORDERS_CATALOG_READ_TIMEOUT": "60",
                "ORDERS_CATALOG_DEADLINE": "60",
                "ORDERS_IDEMPOTENCY_CLAIM_SECONDS": "30",
            },
            ready_url=f"http://127.0.0.1:{port}/livez",
        )
        process.start()
        started.append(process)
        return process

    yield start  # type: ignore[misc]
    for process in started:
        process.kill()


async def test_a_key_claimed_by_a_killed_api_is_taken_over_at_once(
    hanging_api: Callable[[], ServiceProcess],
    client: httpx.AsyncClient,
    make_token: Any,
    new_product: Any,
    db: asyncpg.Connection,
) -> None:
    who = f"crash-{uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {make_token(who, 'customer')}", "Idempotency-Key": key}
    product = await new_product()
    body = order_body((product["id"], 1))

    api = hanging_api()
    port = api.env["ORDERS_PORT"]
    async with httpx.AsyncClient(timeout=60) as other:
        stuck = asyncio.create_task(
            other.post(f"http://127.0.0.1:{port}/v1/orders", json=body, headers=headers)
        )
        deadline = time.monotonic() + 15
        while not await db.fetchval(
            "SELECT count(*) FROM orders.idempotency_keys WHERE customer_id = $1", who
        ):
            assert time.monotonic() < deadline, "the hanging API never claimed the key"
            await asyncio.sleep(0.05)
        api.kill()  # between claim and commit: the claim stays, its holder is gone
        with pytest.raises(httpx.TransportError):
            await stuck

    # The retry reaches another API process (here: the in-process app with a live Catalog).
    started = time.monotonic()
    while True:
        retry = await client.post("/v1/orders", json=body, headers=headers)
        if retry.status_code != 409 or time.monotonic() - started > 10:
            break
        await asyncio.sleep(0.2)
    waited = time.monotonic() - started
    assert retry.status_code == 201, retry.text
    assert waited < 5, f"the key was blocked for {waited:.1f}s (the lease is 30 s)"
    assert await db.fetchval("SELECT count(*) FROM orders.orders WHERE customer_id = $1", who) == 1


async def test_placement_survives_terminated_backends(
    client: httpx.AsyncClient,
    make_token: Any,
    new_product: Any,
    db: asyncpg.Connection,
    orders_db: ServiceDb,
) -> None:
    who = f"dropped-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {make_token(who, 'customer')}"}
    product = await new_product()
    first = await client.post(
        "/v1/orders",
        json=order_body((product["id"], 1)),
        headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert first.status_code == 201, first.text
    killed = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
        orders_db.role,
    )
    assert killed >= 1
    for _ in range(3):
        placed = await client.post(
            "/v1/orders",
            json=order_body((product["id"], 1)),
            headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert placed.status_code == 201, placed.text
    assert await db.fetchval("SELECT count(*) FROM orders.orders WHERE customer_id = $1", who) == 4
