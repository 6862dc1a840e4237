"""Conditional GET: a client holding the current ETag gets 304, not the body again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_product_revalidates_with_its_etag(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    url = f"/v1/products/{product['id']}"
    first = await client.get(url)
    tag = first.headers["etag"]
    for held in (tag, f"W/{tag}", f'"0", {tag}', "*"):
        again = await client.get(url, headers={"If-None-Match": held})
        assert again.status_code == 304, held
        assert again.headers["etag"] == tag
        assert again.content == b""
    stale = await client.get(url, headers={"If-None-Match": '"0"'})
    assert stale.status_code == 200
    assert stale.json() == first.json()
    # A change makes the held tag stale: the next revalidation gets the new body.
    changed = await client.patch(url, json={"price_cents": 999}, headers={**admin, "If-Match": tag})
    assert changed.status_code == 200
    fresh = await client.get(url, headers={"If-None-Match": tag})
    assert fresh.status_code == 200
    assert fresh.json()["price_cents"] == 999
    assert fresh.headers["etag"] == changed.headers["etag"] != tag


async def test_unknown_product_is_404_whatever_the_client_holds(client: httpx.AsyncClient) -> None:
    missing = await client.get(
        "/v1/products/00000000-0000-4000-8000-000000000000", headers={"If-None-Match": "*"}
    )
    assert missing.status_code == 404


async def test_a_page_has_a_weak_etag_that_follows_its_items(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    a, b = await new_product(), await new_product()
    url = f"/v1/products?ids={a['id']},{b['id']}"
    page = await client.get(url)
    tag = page.headers["etag"]
    assert tag.startswith('W/"')
    assert (await client.get(url, headers={"If-None-Match": tag})).status_code == 304
    # Another page (other items) has another tag.
    other = await client.get(f"/v1/products?ids={a['id']}")
    assert other.headers["etag"] != tag
    # A change to one item changes the page's tag.
    bumped = await client.post(
        f"/v1/products/{b['id']}/stock-adjustments",
        json={"delta": 1, "reason": "count"},
        headers=admin,
    )
    assert bumped.status_code == 200
    after = await client.get(url, headers={"If-None-Match": tag})
    assert after.status_code == 200
    assert after.headers["etag"] != tag
