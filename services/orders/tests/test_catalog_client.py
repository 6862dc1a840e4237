"""CatalogClient over a swapped transport: what it asks, what it retries, when it gives up."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from shop_common.http import ResilientHttpClient, ResilientHttpClientConfig, UpstreamUnavailable
from shop_orders.catalog_client.client import CatalogClient

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, seen: list[httpx.Request]) -> CatalogClient:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    config = ResilientHttpClientConfig(
        target=f"catalog-test-{uuid.uuid4().hex[:6]}",
        base_url="http://catalog.test",
        backoff_base=0.001,
        backoff_max=0.002,
        backoff_jitter=0.001,
    )

    async def no_sleep(_: float) -> None:
        return None

    http = ResilientHttpClient(config, transport=httpx.MockTransport(record), sleep=no_sleep)
    return CatalogClient(http)


def _product(pid: uuid.UUID) -> dict[str, object]:
    return {
        "id": str(pid), "sku": "S", "name": "N", "price_cents": 5, "currency": "EUR",
        "active": True, "description": "", "stock_available": 1, "stock_reserved": 0,
        "version": 1, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip


async def test_batch_lookup_uses_the_ids_filter() -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    seen: list[httpx.Request] = []
    client = _client(
        lambda _: httpx.Response(200, json={"items": [_product(ids[0])], "next_cursor": None}),
        seen,
    )
    found = await client.get_products(ids)
    assert list(found) == [ids[0]]
    assert len(seen) == 1
    assert seen[0].method == "GET"
    assert seen[0].url.path == "/v1/products"
    assert seen[0].url.params["ids"] == f"{ids[0]},{ids[1]}"


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_client_errors_are_not_retried(status: int) -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda _: httpx.Response(status, json={}), seen)
    with pytest.raises(UpstreamUnavailable):
        await client.get_products([uuid.uuid4()])
    assert len(seen) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_transient_statuses_are_retried_up_to_the_bound(status: int) -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda _: httpx.Response(status), seen)
    with pytest.raises(UpstreamUnavailable):
        await client.get_products([uuid.uuid4()])
    assert len(seen) == 3


async def test_a_500_is_not_retried() -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda _: httpx.Response(500), seen)
    with pytest.raises(UpstreamUnavailable):
        await client.get_products([uuid.uuid4()])
    assert len(seen) == 1


async def test_an_unexpected_body_means_unavailable() -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda _: httpx.Response(200, json={"products": []}), seen)
    with pytest.raises(UpstreamUnavailable):
        await client.get_products([uuid.uuid4()])
