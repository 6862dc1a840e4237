"""Production auth: RS256 tokens checked against the issuer's JWKS, served on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic_settings import SettingsConfigDict

from shop_common.auth import TokenVerifier
from shop_common.errors import ServiceUnavailable, Unauthorized
from shop_common.settings import ServiceSettings
from tests.support.processes import free_port

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "shop-test-key-1"


class _Settings(ServiceSettings):
    # A prefix nobody sets, so the Makefile's JWT_SECRET cannot leak into these settings.
    model_config = SettingsConfigDict(env_prefix="SHOP_AUTH_TEST_", extra="ignore", frozen=True)

    port: int = 1
    worker_port: int = 0
    metrics_port: int = 0
    database_url: str = "postgresql+asyncpg://nobody@127.0.0.1/none"
    db_schema: str = "none"


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def verifier(jwks_url: str) -> TokenVerifier:
    return TokenVerifier(
        _Settings(jwks_url=jwks_url, jwt_issuer="https://id.example", jwt_audience="shop")
    )


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "u1", "roles": ["customer"], "iss": "https://id.example", "aud": "shop",
              "iat": now, "exp": now + 300}  # fmt: skip
    claims.update(overrides)
    return claims


async def test_rs256_token_from_the_issuer_is_accepted(verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(), KEY, algorithm="RS256", headers={"kid": KID})
    principal = await verifier.verify(token)
    assert principal.subject == "u1"
    assert principal.roles == frozenset({"customer"})


async def test_token_signed_by_another_key_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(), OTHER_KEY, algorithm="RS256", headers={"kid": KID})
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_unknown_key_id_is_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(), KEY, algorithm="RS256", headers={"kid": "someone-else"})
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_hs256_signed_with_the_public_key_is_rejected(verifier: TokenVerifier) -> None:
    """Algorithm confusion: the public key used as an HMAC secret must never verify."""
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"kid": KID, "alg": "HS256"}
    signing = jwt.api_jws.PyJWS()
    signing._algorithms["HS256"].prepare_key = lambda key: key  # type: ignore[method-assign]
    token = signing.encode(
        json.dumps(_claims()).encode(), public_pem, algorithm="HS256", headers=header
    )
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


def test_settings_refuse_a_missing_or_short_dev_secret() -> None:
    with pytest.raises(ValueError, match="_JWT_SECRET"):
        _Settings()
    with pytest.raises(ValueError, match="at least 32"):
        _Settings(jwt_secret="short")


async def test_an_unreachable_issuer_is_503_not_401(jwks_url: str) -> None:

    dead = TokenVerifier(
        _Settings(
            jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json",
            jwt_issuer="https://id.example",
        )
    )
    token = jwt.encode(_claims(), KEY, algorithm="RS256", headers={"kid": KID})
    with pytest.raises(ServiceUnavailable):
        await dead.verify(token)


async def test_a_known_key_is_used_without_a_thread_hop(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = jwt.encode(_claims(), KEY, algorithm="RS256", headers={"kid": KID})
    await verifier.verify(token)  # fetches (or reuses) the key set once
    hops: list[object] = []

    async def no_thread(*args: object, **_: object) -> object:
        hops.append(args[0])
        raise AssertionError("a cached key must not go through a thread")

    monkeypatch.setattr("shop_common.auth.tokens.asyncio.to_thread", no_thread)
    for _ in range(3):
        assert (await verifier.verify(token)).subject == "u1"
    assert hops == []
