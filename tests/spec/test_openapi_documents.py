"""What both OpenAPI documents promise, checked on the documents themselves (no processes).

schemathesis (test_openapi_fuzz.py) checks the promises against the running APIs; these
tests keep the promises complete: a new route without its problems fails here at once.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from shop_catalog.main import create_app as create_catalog_app
from shop_catalog.settings import CatalogSettings
from shop_common.errors import BadRequest
from shop_orders.idempotency import service as idempotency
from shop_orders.main import create_app as create_orders_app
from shop_orders.orders.router import IDEMPOTENCY_KEY_PATTERN
from shop_orders.settings import OrdersSettings
from tests.support import TEST_JWT_SECRET

PROBLEM = {"$ref": "#/components/schemas/Problem"}
SECRET = SecretStr(TEST_JWT_SECRET)


def _apps() -> dict[str, FastAPI]:
    return {
        "catalog": create_catalog_app(CatalogSettings(jwt_secret=SECRET)),
        "orders": create_orders_app(OrdersSettings(jwt_secret=SECRET)),
    }


APPS = _apps()


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


@pytest.mark.parametrize("api", APPS)
def test_every_error_response_is_a_problem(api: str) -> None:
    document = APPS[api].openapi()
    assert document["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]
    wrong = [
        f"{label} {status}: {response.get('content')}"
        for label, operation in _operations(document)
        for status, response in operation["responses"].items()
        if int(status) >= 400
        and response.get("content") != {"application/problem+json": {"schema": PROBLEM}}
    ]
    assert not wrong, wrong


@pytest.mark.parametrize("api", APPS)
def test_protected_operations_declare_401_and_403(api: str) -> None:
    document = APPS[api].openapi()
    missing = [
        label
        for label, operation in _operations(document)
        if operation.get("security") and not {"401", "403"} <= operation["responses"].keys()
    ]
    assert not missing, missing
    # 401 says how to authenticate.
    for _, operation in _operations(document):
        if "401" in operation["responses"]:
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


@pytest.mark.parametrize("api", APPS)
def test_every_operation_may_answer_503_with_retry_after(api: str) -> None:
    """A database outage is a 503 on any operation (`shop_common.web.problems`)."""
    document = APPS[api].openapi()
    missing = [
        label
        for label, operation in _operations(document)
        if "Retry-After" not in operation["responses"].get("503", {}).get("headers", {})
    ]
    assert not missing, missing


@pytest.mark.parametrize("api", APPS)
def test_every_response_declares_the_request_id(api: str) -> None:
    document = APPS[api].openapi()
    missing = [
        f"{label} {status}"
        for label, operation in _operations(document)
        for status, response in operation["responses"].items()
        if "X-Request-ID" not in response.get("headers", {})
    ]
    assert not missing, missing


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "k" * 255,
        "550e8400-e29b-41d4-a716-446655440000",
        "!~",
        "",
        " ",
        "with space",
        "k" * 256,
        "tab\there",
        "é",
        "\x7f",
        # Not "line\n": `validated_key`'s `$` lets a final newline through, which no HTTP
        # header can carry.
    ],
)
def test_the_declared_idempotency_key_is_the_one_enforced(key: str) -> None:
    """The pattern is declared by hand (a missing key is 400, not FastAPI's 422): it must
    accept exactly what `validated_key` accepts."""
    declared = re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key) is not None
    try:
        idempotency.validated_key(key)
        enforced = True
    except BadRequest:
        enforced = False
    assert declared == enforced


@pytest.mark.parametrize(
    ("api", "path", "allowed"),
    [
        ("catalog", "/v1/products", "GET, POST"),
        ("catalog", "/v1/products/00000000-0000-4000-8000-000000000000", "DELETE, GET, PATCH"),
        ("orders", "/v1/orders", "GET, POST"),
        ("orders", "/v1/orders/00000000-0000-4000-8000-000000000000/cancel", "POST"),
    ],
)
async def test_405_allows_every_method_of_the_path(api: str, path: str, allowed: str) -> None:
    transport = httpx.ASGITransport(app=APPS[api])
    async with httpx.AsyncClient(transport=transport, base_url="http://spec.test") as client:
        response = await client.request("PUT", path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.headers["Content-Type"] == "application/problem+json"
