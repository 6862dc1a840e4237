"""A token that passed verification is trusted again without decoding, but never past its
expiry, never longer than VERIFIED_TRUST_SECONDS, and a token that failed is never kept."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

import shop_common.auth.tokens as tokens_module
from shop_common.auth import TokenVerifier, issue_dev_token
from shop_common.errors import Unauthorized
from shop_common.settings import ServiceSettings

SECRET = "verified-cache-test-secret-0123456789abcdef"


class _Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_AUTH_TEST_", extra="ignore", frozen=True)

    port: int = 1
    worker_port: int = 0
    metrics_port: int = 0
    database_url: str = "postgresql+asyncpg://nobody@127.0.0.1/none"
    db_schema: str = "none"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token PyJWT is asked to decode, in order."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(tokens_module.jwt, "decode", counting)
    return seen


def _verifier(clock: Clock) -> TokenVerifier:
    return TokenVerifier(_Settings(jwt_secret=SecretStr(SECRET), jwt_leeway_seconds=0), clock=clock)


async def test_a_verified_token_is_not_decoded_again(decodes: list[str]) -> None:
    clock = Clock()
    verifier = _verifier(clock)
    token = issue_dev_token(subject="alice", roles=["customer"], secret=SECRET)
    first = await verifier.verify(token)
    clock.now += 30
    assert await verifier.verify(token) == first
    assert decodes == [token]


async def test_trust_ends_with_the_trust_window(decodes: list[str]) -> None:
    clock = Clock()
    verifier = _verifier(clock)
    token = issue_dev_token(subject="alice", roles=["customer"], secret=SECRET, ttl_seconds=90)
    await verifier.verify(token)
    clock.now += tokens_module.VERIFIED_TRUST_SECONDS + 1
    await verifier.verify(token)  # past the window: decoded again, still valid
    assert len(decodes) == 2


async def test_trust_ends_with_expiry_within_the_window(decodes: list[str]) -> None:
    clock = Clock()
    verifier = _verifier(clock)
    short = issue_dev_token(subject="bob", roles=["customer"], secret=SECRET, ttl_seconds=5)
    await verifier.verify(short)
    clock.now += 4
    await verifier.verify(short)
    assert decodes.count(short) == 1
    clock.now += 2  # past `exp` on the verifier's clock: decoded (and so checked) again
    await verifier.verify(short)
    assert decodes.count(short) == 2


async def test_a_rejected_token_is_never_remembered(decodes: list[str]) -> None:
    verifier = _verifier(Clock())
    forged = issue_dev_token(subject="mallory", roles=["admin"], secret="x" * 40)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(forged)
    assert decodes == [forged, forged]
