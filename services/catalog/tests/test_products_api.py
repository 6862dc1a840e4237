"""Every products route's success and failure codes against the real app and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support import assert_problem

pytestmark = pytest.mark.integration


async def test_create_returns_201_with_location_etag_and_full_product(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    sku = f"NEW-{uuid.uuid4().hex[:8]}"
    body = {"sku": sku, "name": "  Lamp ", "price_cents": 4500, "currency": "USD"}
    response = await client.post("/v1/products", json=body, headers=admin)
    assert response.status_code == 201
    product = response.json()
    assert response.headers["location"].endswith(f"/v1/products/{product['id']}")
    assert response.headers["etag"] == '"1"'
    assert product["sku"] == sku
    assert product["name"] == "Lamp"
    assert product["description"] == ""
    assert (product["stock_available"], product["stock_reserved"]) == (0, 0)
    assert product["active"] is True
    assert product["version"] == 1
    assert set(product) == {
        "id", "sku", "name", "description", "price_cents", "currency", "stock_available",
        "stock_reserved", "active", "version", "created_at", "updated_at",
    }  # fmt: skip


async def test_create_duplicate_sku_is_409(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    existing = await new_product()
    body = {"sku": existing["sku"], "name": "Dup", "price_cents": 1, "currency": "EUR"}
    problem = assert_problem(await client.post("/v1/products", json=body, headers=admin), 409)
    assert problem["type"] == "/problems/duplicate-sku"


async def test_writes_need_a_token_and_the_admin_role(
    client: httpx.AsyncClient, customer: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    pid = product["id"]
    body = {"sku": "X-1", "name": "n", "price_cents": 1, "currency": "EUR"}
    calls = [
        ("POST", "/v1/products", body),
        ("PATCH", f"/v1/products/{pid}", {"name": "n"}),
        ("DELETE", f"/v1/products/{pid}", None),
        ("POST", f"/v1/products/{pid}/stock-adjustments", {"delta": 1, "reason": "r"}),
    ]
    for method, url, json in calls:
        anonymous = await client.request(method, url, json=json)
        assert_problem(anonymous, 401)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert_problem(await client.request(method, url, json=json, headers=customer), 403)
    unchanged = (await client.get(f"/v1/products/{pid}")).json()
    assert unchanged == product


async def test_get_by_id_returns_etag_and_404_for_unknown(
    client: httpx.AsyncClient, new_product: Any
) -> None:
    product = await new_product()
    response = await client.get(f"/v1/products/{product['id']}")
    assert response.status_code == 200
    assert response.json() == product
    assert response.headers["etag"] == f'"{product["version"]}"'
    assert_problem(await client.get(f"/v1/products/{uuid.uuid4()}"), 404)
    assert_problem(await client.get("/v1/products/not-a-uuid"), 422)


async def test_list_paginates_with_cursor_until_exhausted(
    client: httpx.AsyncClient, new_product: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    made = [await new_product(name=f"page-{tag}-{i}") for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"q": f"page-{tag}", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/products", params=params)).json()
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [p["id"] for p in made]
    assert pages == 3


async def test_list_filters_by_text_active_and_ids(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    a = await new_product(name=f"Red {tag} chair")
    b = await new_product(name=f"Blue {tag} chair")
    c = await new_product(name=f"Blue {tag} 100%")
    assert (await client.delete(f"/v1/products/{b['id']}", headers=admin)).status_code == 204

    def ids_of(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        return {p["id"] for p in response.json()["items"]}

    assert ids_of(await client.get("/v1/products", params={"q": f"blue {tag}"})) == {
        b["id"],
        c["id"],
    }
    assert ids_of(await client.get("/v1/products", params={"q": f"{tag} 100%"})) == {c["id"]}
    assert ids_of(await client.get("/v1/products", params={"q": f"{tag} 1_0"})) == set()
    assert ids_of(await client.get("/v1/products", params={"q": a["sku"]})) == {a["id"]}
    assert ids_of(await client.get("/v1/products", params={"q": f"{tag}", "active": "false"})) == {
        b["id"]
    }
    unknown = str(uuid.uuid4())
    wanted = ",".join([a["id"], unknown, c["id"], a["id"]])
    assert ids_of(await client.get("/v1/products", params={"ids": wanted})) == {a["id"], c["id"]}


@pytest.mark.parametrize(
    "params",
    [
        {"ids": "not-a-uuid"},
        {"ids": ",".join(str(uuid.uuid4()) for _ in range(101))},
        {"ids": ""},
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"limit": "99999999999999999999999"},
        {"active": "maybe"},
        {"q": ""},
        {"q": "x" * 101},
    ],
)
async def test_list_rejects_bad_query_with_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    assert_problem(await client.get("/v1/products", params=params), 422)


@pytest.mark.parametrize("cursor", ["garbage", "bm90IGpzb24", "WzEsMl0", "W10", "x" * 201])
async def test_list_rejects_bad_cursor(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/v1/products", params={"cursor": cursor})
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


async def test_patch_requires_if_match_and_rejects_stale(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    url = f"/v1/products/{product['id']}"
    assert_problem(await client.patch(url, json={"name": "x"}, headers=admin), 428)
    ok = await client.patch(
        url, json={"price_cents": 999, "name": "New"}, headers={**admin, "If-Match": '"1"'}
    )
    assert ok.status_code == 200, ok.text
    assert ok.headers["etag"] == '"2"'
    assert (ok.json()["price_cents"], ok.json()["name"], ok.json()["version"]) == (999, "New", 2)
    for stale in ['"1"', 'W/"2"', '"abc"', "2"]:
        problem = assert_problem(
            await client.patch(url, json={"name": "y"}, headers={**admin, "If-Match": stale}), 412
        )
        assert problem["type"] == "/problems/stale-product"
    listed = await client.patch(
        url, json={"active": False}, headers={**admin, "If-Match": '"7", "2"'}
    )
    assert listed.status_code == 200
    assert listed.json()["active"] is False
    assert (await client.get(url)).json()["name"] == "New"


async def test_patch_unknown_product_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.patch(
        f"/v1/products/{uuid.uuid4()}", json={"name": "x"}, headers={**admin, "If-Match": '"1"'}
    )
    assert_problem(response, 404)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": None},
        {"name": ""},
        {"price_cents": -1},
        {"price_cents": "12"},
        {"price_cents": 12.5},
        {"price_cents": 10**30},
        {"active": "yes"},
        {"sku": "CHANGED"},
        {"currency": "USD"},
        {"stock_available": 5},
        {"unknown": 1},
        [],
        "name",
    ],
)
async def test_patch_rejects_invalid_bodies_without_writing(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any, body: Any
) -> None:
    product = await new_product()
    url = f"/v1/products/{product['id']}"
    response = await client.patch(url, json=body, headers={**admin, "If-Match": '"1"'})
    assert_problem(response, 422)
    assert (await client.get(url)).json() == product


async def test_delete_deactivates_idempotently_and_404s_unknown(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    url = f"/v1/products/{product['id']}"
    first = await client.delete(url, headers=admin)
    assert first.status_code == 204
    assert first.content == b""
    after = (await client.get(url)).json()
    assert (after["active"], after["version"]) == (False, 2)
    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url)).json()["version"] == 2
    assert_problem(await client.delete(f"/v1/products/{uuid.uuid4()}", headers=admin), 404)


async def test_stock_adjustments_change_available_stock_but_never_below_zero(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    product = await new_product(stock_available=5)
    url = f"/v1/products/{product['id']}/stock-adjustments"
    up = await client.post(url, json={"delta": 7, "reason": "delivery"}, headers=admin)
    assert up.status_code == 200, up.text
    assert up.json()["stock_available"] == 12
    assert up.headers["etag"] == '"2"'
    down = await client.post(url, json={"delta": -12, "reason": "count"}, headers=admin)
    assert down.json()["stock_available"] == 0
    problem = assert_problem(
        await client.post(url, json={"delta": -1, "reason": "oops"}, headers=admin), 409
    )
    assert problem["type"] == "/problems/insufficient-stock"
    assert_problem(
        await client.post(url, json={"delta": 1_000_000_001, "reason": "x"}, headers=admin), 422
    )
    assert_problem(
        await client.post(
            f"/v1/products/{uuid.uuid4()}/stock-adjustments",
            json={"delta": 1, "reason": "r"},
            headers=admin,
        ),
        404,
    )
    current = (await client.get(f"/v1/products/{product['id']}")).json()
    assert (current["stock_available"], current["stock_reserved"]) == (0, 0)


async def test_stock_cannot_exceed_the_maximum(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any
) -> None:
    product = await new_product(stock_available=1_000_000_000)
    url = f"/v1/products/{product['id']}/stock-adjustments"
    assert_problem(await client.post(url, json={"delta": 1, "reason": "x"}, headers=admin), 409)


@pytest.mark.parametrize(
    "body",
    [
        {"delta": 0, "reason": "zero"},
        {"delta": 1},
        {"delta": 1, "reason": ""},
        {"delta": "1", "reason": "string"},
        {"delta": 1.5, "reason": "fraction"},
        {"delta": 0.0, "reason": "zero as a float"},
        {"delta": 1, "reason": "   "},
        {"delta": True, "reason": "bool"},
        {"delta": 1, "reason": "r", "extra": 1},
        {"delta": 10**40, "reason": "huge"},
    ],
)
async def test_stock_adjustment_rejects_invalid_bodies(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any, body: dict[str, Any]
) -> None:
    product = await new_product()
    url = f"/v1/products/{product['id']}/stock-adjustments"
    assert_problem(await client.post(url, json=body, headers=admin), 422)
    assert (await client.get(f"/v1/products/{product['id']}")).json() == product


async def test_stock_total_never_exceeds_the_maximum_even_with_reservations(
    client: httpx.AsyncClient, admin: dict[str, str], new_product: Any, db: Any
) -> None:
    product = await new_product(stock_available=999_999_990)
    await db.execute(
        "UPDATE catalog.products SET stock_available = stock_available - 10, "
        "stock_reserved = 10 WHERE id = $1",
        uuid.UUID(product["id"]),
    )
    url = f"/v1/products/{product['id']}/stock-adjustments"
    refused = await client.post(url, json={"delta": 11, "reason": "x"}, headers=admin)
    assert_problem(refused, 409)
    fits = await client.post(url, json={"delta": 10, "reason": "x"}, headers=admin)
    assert fits.status_code == 200
    assert (fits.json()["stock_available"], fits.json()["stock_reserved"]) == (999_999_990, 10)


async def test_location_is_relative_whatever_the_host_header(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {
        "sku": f"LOC-{uuid.uuid4().hex[:8]}",
        "name": "Lamp",
        "price_cents": 1,
        "currency": "EUR",
    }
    response = await client.post(
        "/v1/products", json=body, headers={**admin, "Host": "attacker.example"}
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/products/{response.json()['id']}"
