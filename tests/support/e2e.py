"""The e2e harness: the running stack, a storefront client, and polling."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.orders import key_header, order_body
from tests.support.processes import ServiceProcess

T = TypeVar("T")
FINAL = {"CONFIRMED", "REJECTED", "CANCELLED"}


@dataclass
class Stack:
    processes: dict[str, ServiceProcess]
    catalog_url: str
    orders_url: str
    admin: dict[str, str]
    customer: dict[str, str]
    vhost: str
    # Process name -> its Prometheus endpoint, where the harness gave it a known port.
    metrics: dict[str, str] = field(default_factory=dict)
    # Process name -> the file its spans are written to (SHOP_TRACES_FILE), if any.
    traces: dict[str, Path] = field(default_factory=dict)

    def restart(self, name: str, *, kill: bool = False) -> None:
        process = self.processes[name]
        if kill:
            process.kill()
        else:
            process.stop()
        process.start()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    within: float = 30.0,
    interval: float = 0.2,
) -> T:
    """Poll `probe` until `done(result)`; fail with the last result after `timeout`."""
    deadline = time.monotonic() + within
    result = await probe()
    while not done(result):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last: {result!r}")
        await asyncio.sleep(interval)
        result = await probe()
    return result


class Shop:
    """Tiny storefront client for the e2e tests."""

    def __init__(self, http: httpx.AsyncClient, stack: Stack) -> None:
        self.http = http
        self.stack = stack

    async def new_product(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "sku": f"E2E-{uuid.uuid4().hex[:12]}",
            "name": "E2E product",
            "price_cents": 1000,
            "currency": "EUR",
            "stock_available": 10,
            **overrides,
        }
        response = await self.http.post(
            f"{self.stack.catalog_url}/v1/products", json=body, headers=self.stack.admin
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def product(self, product_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.stack.catalog_url}/v1/products/{product_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def place(self, *lines: tuple[str, int]) -> httpx.Response:
        return await self.http.post(
            f"{self.stack.orders_url}/v1/orders",
            json=order_body(*lines),
            headers={**self.stack.customer, **key_header()},
        )

    async def order(self, order_id: str) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.stack.orders_url}/v1/orders/{order_id}", headers=self.stack.customer
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def final(self, order_id: str, within: float = 30.0) -> dict[str, Any]:
        return await eventually(
            lambda: self.order(order_id), lambda o: o["status"] in FINAL, within=within
        )

    async def cancel(self, order_id: str) -> httpx.Response:
        return await self.http.post(
            f"{self.stack.orders_url}/v1/orders/{order_id}/cancel", headers=self.stack.customer
        )
