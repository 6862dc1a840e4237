"""Optimistic concurrency and stock invariants under real concurrent requests."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_concurrent_patches_with_the_same_etag_exactly_one_wins(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    url = f"/v1/products/{product['id']}"
    headers = {**admin, "If-Match": '"1"'}
    responses = await asyncio.gather(
        *(client.patch(url, json={"price_cents": 100 + i}, headers=headers) for i in range(20))
    )
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 1, 412: 19}
    winner = next(r for r in responses if r.status_code == 200).json()
    final = (await client.get(url)).json()
    assert final["version"] == 2
    assert final["price_cents"] == winner["price_cents"]


async def test_concurrent_stock_decrements_never_go_negative(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    product = await new_product(stock_available=10)
    url = f"/v1/products/{product['id']}/stock-adjustments"
    responses = await asyncio.gather(
        *(client.post(url, json={"delta": -1, "reason": "race"}, headers=admin) for _ in range(30))
    )
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 10, 409: 20}
    final = (await client.get(f"/v1/products/{product['id']}")).json()
    assert final["stock_available"] == 0
    assert final["version"] == 11


async def test_mixed_concurrent_adjustments_keep_the_books_straight(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    product = await new_product(stock_available=3)
    url = f"/v1/products/{product['id']}/stock-adjustments"
    deltas = [-2, +1, -3, +4, -1, -2, +2, -5, +1, -1] * 3
    responses = await asyncio.gather(
        *(client.post(url, json={"delta": d, "reason": "mix"}, headers=admin) for d in deltas)
    )
    applied = sum(d for d, r in zip(deltas, responses, strict=True) if r.status_code == 200)
    assert all(r.status_code in (200, 409) for r in responses)
    final = (await client.get(f"/v1/products/{product['id']}")).json()
    assert final["stock_available"] == 3 + applied
    assert final["stock_available"] >= 0
