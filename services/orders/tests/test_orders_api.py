"""Every orders route's success and failure codes, over real PostgreSQL and the real Catalog."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support import assert_problem
from tests.support.orders import key_header, order_body

pytestmark = pytest.mark.integration


async def test_place_order_snapshots_lines_and_writes_the_placed_event(
    client: httpx.AsyncClient,
    customer: dict[str, str],
    new_product: Any,
    db: asyncpg.Connection,
) -> None:
    a = await new_product(price_cents=250, name="Apple")
    b = await new_product(price_cents=1000, name="Bread")
    response = await client.post(
        "/v1/orders",
        json=order_body((a["id"], 3), (b["id"], 1)),
        headers={**customer, **key_header()},
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"].endswith(f"/v1/orders/{order['id']}")
    assert order["status"] == "PENDING"
    assert order["customer_id"] == "alice"
    assert order["total_cents"] == 3 * 250 + 1000
    assert order["currency"] == "EUR"
    assert order["pricing_source"] == "catalog"
    line = {"product_id": a["id"], "sku": a["sku"], "name": "Apple", "unit_price_cents": 250}
    assert order["lines"] == [
        {**line, "quantity": 3},
        {
            "product_id": b["id"],
            "sku": b["sku"],
            "name": "Bread",
            "unit_price_cents": 1000,
            "quantity": 1,
        },
    ]
    rows = await db.fetch(
        "SELECT type, subject, payload FROM orders.outbox WHERE subject = $1", order["id"]
    )
    assert [r["type"] for r in rows] == ["orders.order.placed.v1"]
    payload = json.loads(rows[0]["payload"])
    assert payload["order_id"] == order["id"]
    assert payload["customer_id"] == "alice"
    assert payload["lines"] == [
        {"product_id": a["id"], "quantity": 3},
        {"product_id": b["id"], "quantity": 1},
    ]


async def test_price_is_a_snapshot_not_a_reference(
    client: httpx.AsyncClient,
    catalog_client: httpx.AsyncClient,
    admin: dict[str, str],
    customer: dict[str, str],
    new_product: Any,
) -> None:
    product = await new_product(price_cents=500)
    placed = await client.post(
        "/v1/orders", json=order_body((product["id"], 1)), headers={**customer, **key_header()}
    )
    changed = await catalog_client.patch(
        f"/v1/products/{product['id']}",
        json={"price_cents": 900, "name": "Renamed"},
        headers={**admin, "If-Match": '"1"'},
    )
    assert changed.status_code == 200
    order = (await client.get(f"/v1/orders/{placed.json()['id']}", headers=customer)).json()
    assert (order["lines"][0]["unit_price_cents"], order["lines"][0]["name"]) == (
        500,
        "Orderable thing",
    )


async def test_place_needs_token_and_key(
    client: httpx.AsyncClient, customer: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    body = order_body((product["id"], 1))
    assert_problem(await client.post("/v1/orders", json=body, headers=key_header()), 401)
    problem = assert_problem(await client.post("/v1/orders", json=body, headers=customer), 400)
    assert problem["type"] == "/problems/idempotency-key-required"
    for bad in ["", " ", "with space", "k" * 256, "k" * 5000, "tab\there"]:
        headers = {**customer, "Idempotency-Key": bad}
        response = await client.post("/v1/orders", json=body, headers=headers)
        assert_problem(response, 400)


@pytest.mark.parametrize(
    "body",
    [
        {"lines": []},
        {"lines": [{"product_id": str(uuid.uuid4()), "quantity": 0}]},
        {"lines": [{"product_id": str(uuid.uuid4()), "quantity": 1001}]},
        {"lines": [{"product_id": str(uuid.uuid4()), "quantity": -1}]},
        {"lines": [{"product_id": str(uuid.uuid4()), "quantity": "2"}]},
        {"lines": [{"product_id": str(uuid.uuid4()), "quantity": 2**70}]},
        {"lines": [{"product_id": "not-a-uuid", "quantity": 1}]},
        {"lines": [{"product_id": str(uuid.uuid4())}]},
        {"lines": [{"product_id": str(uuid.uuid4()), "quantity": 1, "price_cents": 1}]},
        {"lines": [{"product_id": str(uuid.uuid4()), "quantity": 1} for _ in range(51)]},
        {"lines": [{"product_id": "6d1f7f62-3f5e-4d7a-9a34-5a1c3b1f0e11", "quantity": 1}] * 2},
        {"lines": "all"},
        {"lines": [{"product_id": str(uuid.uuid4()), "quantity": 1}], "customer_id": "bob"},
        {},
        [],
    ],
)
async def test_place_rejects_invalid_bodies_with_422(
    client: httpx.AsyncClient, customer: dict[str, str], body: Any, db: asyncpg.Connection
) -> None:
    before = await db.fetchval("SELECT count(*) FROM orders.orders")
    response = await client.post("/v1/orders", json=body, headers={**customer, **key_header()})
    assert_problem(response, 422)
    assert await db.fetchval("SELECT count(*) FROM orders.orders") == before


async def test_unknown_and_inactive_products_are_422_naming_the_lines(
    client: httpx.AsyncClient,
    catalog_client: httpx.AsyncClient,
    admin: dict[str, str],
    customer: dict[str, str],
    new_product: Any,
) -> None:
    good = await new_product()
    gone = await new_product()
    assert (
        await catalog_client.delete(f"/v1/products/{gone['id']}", headers=admin)
    ).status_code == 204
    unknown = str(uuid.uuid4())
    response = await client.post(
        "/v1/orders",
        json=order_body((good["id"], 1), (unknown, 1), (gone["id"], 2)),
        headers={**customer, **key_header()},
    )
    problem = assert_problem(response, 422)
    assert problem["type"] == "/problems/unorderable-lines"
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
        (["body", "lines", 1, "product_id"], "unknown_product"),
        (["body", "lines", 2, "product_id"], "inactive"),
    ]


async def test_mixed_currencies_are_422(
    client: httpx.AsyncClient, customer: dict[str, str], new_product: Any
) -> None:
    eur = await new_product(currency="EUR")
    usd = await new_product(currency="USD")
    response = await client.post(
        "/v1/orders",
        json=order_body((eur["id"], 1), (usd["id"], 1)),
        headers={**customer, **key_header()},
    )
    assert_problem(response, 422)


async def _place(
    client: httpx.AsyncClient, headers: dict[str, str], product_id: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/orders", json=order_body((product_id, 1)), headers={**headers, **key_header()}
    )
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


async def test_get_is_for_owner_and_admin_only(
    client: httpx.AsyncClient,
    customer: dict[str, str],
    bob: dict[str, str],
    admin: dict[str, str],
    new_product: Any,
) -> None:
    product = await new_product()
    order = await _place(client, customer, product["id"])
    url = f"/v1/orders/{order['id']}"
    assert (await client.get(url, headers=customer)).json() == order
    assert (await client.get(url, headers=admin)).json() == order
    assert_problem(await client.get(url, headers=bob), 404)
    assert_problem(await client.get(url), 401)
    assert_problem(await client.get(f"/v1/orders/{uuid.uuid4()}", headers=customer), 404)
    assert_problem(await client.get("/v1/orders/xyz", headers=customer), 422)


async def test_bola_customer_b_gets_404_on_every_route_for_customer_a_order(
    client: httpx.AsyncClient,
    customer: dict[str, str],
    bob: dict[str, str],
    new_product: Any,
    db: asyncpg.Connection,
) -> None:
    product = await new_product()
    order = await _place(client, customer, product["id"])
    url = f"/v1/orders/{order['id']}"
    assert_problem(await client.get(url, headers=bob), 404)
    assert_problem(await client.post(f"{url}/cancel", headers=bob), 404)
    listed = (await client.get("/v1/orders", params={"limit": 100}, headers=bob)).json()
    assert order["id"] not in {o["id"] for o in listed["items"]}
    assert_problem(
        await client.get("/v1/orders", params={"customer_id": "alice"}, headers=bob), 403
    )
    status = await db.fetchval(
        "SELECT status FROM orders.orders WHERE id = $1", uuid.UUID(order["id"])
    )
    assert status == "PENDING"


async def test_list_shows_customers_their_own_and_admins_everything(
    client: httpx.AsyncClient,
    make_token: Any,
    admin: dict[str, str],
    new_product: Any,
) -> None:
    tag = uuid.uuid4().hex[:8]
    carol = {"Authorization": f"Bearer {make_token(f'carol-{tag}', 'customer')}"}
    dave = {"Authorization": f"Bearer {make_token(f'dave-{tag}', 'customer')}"}
    product = await new_product()
    carols = [await _place(client, carol, product["id"]) for _ in range(3)]
    daves = [await _place(client, dave, product["id"])]
    assert (
        await client.post(f"/v1/orders/{carols[0]['id']}/cancel", headers=carol)
    ).status_code == 200

    own = (await client.get("/v1/orders", headers=carol)).json()
    assert [o["id"] for o in own["items"]] == [o["id"] for o in reversed(carols)]
    first = (await client.get("/v1/orders", params={"limit": 2}, headers=carol)).json()
    assert len(first["items"]) == 2
    rest = (
        await client.get(
            "/v1/orders", params={"limit": 2, "cursor": first["next_cursor"]}, headers=carol
        )
    ).json()
    assert [o["id"] for o in first["items"] + rest["items"]] == [o["id"] for o in reversed(carols)]
    assert rest["next_cursor"] is None

    as_admin = (
        await client.get("/v1/orders", params={"customer_id": f"dave-{tag}"}, headers=admin)
    ).json()
    assert [o["id"] for o in as_admin["items"]] == [daves[0]["id"]]
    cancelled = (
        await client.get(
            "/v1/orders",
            params={"customer_id": f"carol-{tag}", "status": "CANCELLED"},
            headers=admin,
        )
    ).json()
    assert [o["id"] for o in cancelled["items"]] == [carols[0]["id"]]
    everyone = (await client.get("/v1/orders", params={"limit": 100}, headers=admin)).json()
    ids = {o["id"] for o in everyone["items"]}
    assert {carols[2]["id"], daves[0]["id"]} <= ids


@pytest.mark.parametrize(
    "params", [{"status": "SHIPPED"}, {"limit": 0}, {"limit": 101}, {"cursor": "nope"}]
)
async def test_list_rejects_bad_query(
    client: httpx.AsyncClient, customer: dict[str, str], params: dict[str, Any]
) -> None:
    response = await client.get("/v1/orders", params=params, headers=customer)
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


async def test_cancel_is_idempotent_and_publishes_once(
    client: httpx.AsyncClient,
    customer: dict[str, str],
    admin: dict[str, str],
    new_product: Any,
    db: asyncpg.Connection,
) -> None:
    product = await new_product()
    order = await _place(client, customer, product["id"])
    url = f"/v1/orders/{order['id']}/cancel"
    first = await client.post(url, headers=customer)
    assert first.status_code == 200
    assert first.json()["status"] == "CANCELLED"
    second = await client.post(url, headers=admin)
    assert second.status_code == 200
    assert second.json() == first.json()
    types = await db.fetch(
        "SELECT type FROM orders.outbox WHERE subject = $1 ORDER BY seq", order["id"]
    )
    assert [t["type"] for t in types] == ["orders.order.placed.v1", "orders.order.cancelled.v1"]


async def test_confirmed_orders_cancel_but_rejected_ones_do_not(
    client: httpx.AsyncClient, customer: dict[str, str], new_product: Any, db: asyncpg.Connection
) -> None:
    product = await new_product()
    confirmed = await _place(client, customer, product["id"])
    rejected = await _place(client, customer, product["id"])
    await db.execute(
        "UPDATE orders.orders SET status = 'CONFIRMED' WHERE id = $1", uuid.UUID(confirmed["id"])
    )
    await db.execute(
        "UPDATE orders.orders SET status = 'REJECTED' WHERE id = $1", uuid.UUID(rejected["id"])
    )
    ok = await client.post(f"/v1/orders/{confirmed['id']}/cancel", headers=customer)
    assert ok.json()["status"] == "CANCELLED"
    problem = assert_problem(
        await client.post(f"/v1/orders/{rejected['id']}/cancel", headers=customer), 409
    )
    assert problem["type"] == "/problems/order-not-cancellable"
    assert_problem(await client.post(f"/v1/orders/{uuid.uuid4()}/cancel", headers=customer), 404)
    assert_problem(await client.post(f"/v1/orders/{rejected['id']}/cancel"), 401)


async def test_nul_in_filters_and_subjects_is_4xx_not_500(
    client: httpx.AsyncClient, admin: dict[str, str], make_token: Any
) -> None:
    response = await client.get("/v1/orders", params={"customer_id": "a\x00b"}, headers=admin)
    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)
    token = make_token("evil\x00sub", "customer")
    nul_subject = {"Authorization": f"Bearer {token}"}
    assert_problem(await client.get("/v1/orders", headers=nul_subject), 401)


async def test_location_is_relative_whatever_the_host_header(
    client: httpx.AsyncClient, customer: dict[str, str], new_product: Any
) -> None:
    product = await new_product()
    response = await client.post(
        "/v1/orders",
        json=order_body((product["id"], 1)),
        headers={**customer, **key_header(), "Host": "attacker.example"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/orders/{response.json()['id']}"
    # An authenticated response is nobody's to store.
    assert response.headers["cache-control"] == "private, no-store"
