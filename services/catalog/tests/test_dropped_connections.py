"""Connections the database dropped (a restart, a failover, `pg_terminate_backend`) are
replaced: the next requests answer as usual instead of 500."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.support import ServiceDb

pytestmark = pytest.mark.integration


async def _terminate(db: asyncpg.Connection, role: str) -> int:
    killed: int = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1", role
    )
    return killed


async def test_reads_and_writes_survive_terminated_backends(
    client: httpx.AsyncClient,
    new_product: Any,
    admin: dict[str, str],
    db: asyncpg.Connection,
    catalog_db: ServiceDb,
) -> None:
    product = await new_product(stock_available=5)
    url = f"/v1/products/{product['id']}"
    assert (await client.get(url)).status_code == 200  # both pools hold live connections now
    assert await _terminate(db, catalog_db.role) >= 2

    read = await client.get(url)
    assert read.status_code == 200, read.text
    page = await client.get("/v1/products", params={"ids": product["id"]})
    assert page.status_code == 200, page.text
    write = await client.post(
        f"{url}/stock-adjustments", json={"delta": 1, "reason": "recount"}, headers=admin
    )
    assert write.status_code == 200, write.text
    assert write.json()["stock_available"] == 6
