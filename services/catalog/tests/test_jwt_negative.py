"""Every way a token can be wrong gets 401 on a protected route (and writes nothing)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import TEST_JWT_SECRET, assert_problem

pytestmark = pytest.mark.integration


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "mallory",
        "roles": ["admin"],
        "iss": "shop-dev-issuer",
        "aud": "shop",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any], key: Any = TEST_JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _alg_none() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(_claims()).encode())}."


def _tampered() -> str:
    header, _, signature = _sign(_claims(roles=["customer"])).split(".")
    payload = _b64(json.dumps(_claims(roles=["admin"])).encode())
    return f"{header}.{payload}.{signature}"


def _rs256() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _sign(_claims(), key, "RS256")


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "alg none": _alg_none,
    "wrong key": lambda: _sign(_claims(), "another-secret-that-is-long-enough-0123456789"),
    "expired": lambda: _sign(_claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)),
    "missing exp": lambda: _sign(_claims(exp=None)),
    "missing iat": lambda: _sign(_claims(iat=None)),
    "missing sub": lambda: _sign(_claims(sub=None)),
    "wrong aud": lambda: _sign(_claims(aud="someone-else")),
    "missing aud": lambda: _sign(_claims(aud=None)),
    "wrong iss": lambda: _sign(_claims(iss="https://evil.example")),
    "missing iss": lambda: _sign(_claims(iss=None)),
    "tampered payload": _tampered,
    "unpinned algorithm RS256": _rs256,
    "HS512 with right secret": lambda: _sign(_claims(), alg="HS512"),
    "not yet valid": lambda: _sign(_claims(nbf=int(time.time()) + 3600)),
    "roles not a list": lambda: _sign(_claims(roles="admin")),
    "sub not a string": lambda: _sign(_claims(sub=42)),
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
async def test_bad_token_is_401(client: httpx.AsyncClient, name: str) -> None:
    token = BAD_TOKENS[name]()
    body = {"sku": "JWT-NEG", "name": "n", "price_cents": 1, "currency": "EUR"}
    response = await client.post(
        "/v1/products", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(response, 401)
    assert (await client.get("/v1/products", params={"q": "JWT-NEG"})).json()["items"] == []


async def test_token_without_known_role_is_403(client: httpx.AsyncClient) -> None:
    token = _sign(_claims(roles=["superuser"]))
    response = await client.post(
        "/v1/products", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(response, 403)


async def test_the_control_token_is_accepted(client: httpx.AsyncClient) -> None:
    """Guards the suite itself: the same construction with nothing wrong passes auth."""
    token = _sign(_claims())
    response = await client.post(
        "/v1/products", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(response, 422)
