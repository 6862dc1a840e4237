"""Verifying bearer tokens (HS256 in dev, JWKS RS256/ES256 in production) and minting dev ones."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from shop_common.errors import ServiceUnavailable, Unauthorized
from shop_common.settings import ServiceSettings

ROLES = frozenset({"admin", "customer"})
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
JWKS_KEY_LIFESPAN_SECONDS = 300.0
# A token verified once is trusted again, without decoding it, until it expires, for at most
# this long (a rotated-out signing key stops working within it) and for this many tokens.
VERIFIED_TRUST_SECONDS = 60.0
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class TokenVerifier:
    """Checks signature, pinned algorithm, issuer, audience and required claims.

    A storefront client sends the same token with every request of a session: verifying it
    (base64, JSON, HMAC or RSA) each time cost more than the rest of a cached read. A token
    that passed is remembered (by its exact text) until its `exp`, at most
    `VERIFIED_TRUST_SECONDS`; a token that failed is never remembered.
    """

    def __init__(
        self, settings: ServiceSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        # token -> (principal, wall-clock time until which it is trusted without decoding)
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._algorithms = list(settings.effective_jwt_algorithms)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        # kid -> (key, monotonic expiry): a known key is used without leaving the event loop.
        self._keys: dict[str, tuple[Any, float]] = {}
        self._jwks = (
            # The key set is cached for 5 minutes; a token with an unknown `kid` forces at
            # most one refetch per 30 s cooldown, so junk tokens cannot flood the issuer.
            jwt.PyJWKClient(
                settings.jwks_url,
                cache_keys=True,
                lifespan=int(JWKS_KEY_LIFESPAN_SECONDS),
                timeout=5,
                cooldown_duration=30,
            )
            if settings.jwks_url
            else None
        )
        self._secret = (
            settings.jwt_secret.get_secret_value()
            if settings.jwt_secret and not settings.jwks_url
            else None
        )

    async def verify(self, token: str) -> Principal:
        now = self._clock()
        known = self._verified.get(token)
        if known is not None and known[1] > now:
            return known[0]
        principal, expires = await self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = (principal, min(expires, now + VERIFIED_TRUST_SECONDS))
        return principal

    async def _decode(self, token: str) -> tuple[Principal, float]:
        """The token's principal and the time it stops being valid (`exp` plus leeway)."""
        try:
            key: Any
            key = self._secret if self._jwks is None else await self._signing_key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWKClientConnectionError as exc:
            # The issuer's keys are out of reach: our outage, not the caller's bad token.
            raise ServiceUnavailable(
                "Signing keys cannot be fetched right now.", retry_after_seconds=5
            ) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"Invalid bearer token: {exc}") from exc
        return _principal(claims), float(claims["exp"]) + self._leeway

    async def _signing_key(self, token: str) -> Any:
        assert self._jwks is not None
        kid = jwt.get_unverified_header(token).get("kid")
        cached = self._keys.get(kid) if isinstance(kid, str) else None
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        # PyJWKClient fetches over blocking urllib; keep it off the event loop.
        key = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
        if isinstance(kid, str):
            self._keys[kid] = (key, time.monotonic() + JWKS_KEY_LIFESPAN_SECONDS)
        return key


def _principal(claims: dict[str, Any]) -> Principal:
    subject = claims["sub"]
    roles = claims.get("roles", [])
    if not isinstance(subject, str) or not 0 < len(subject) <= 128 or not subject.isprintable():
        raise Unauthorized("Invalid bearer token: bad 'sub' claim")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("Invalid bearer token: 'roles' must be a list of strings")
    return Principal(subject=subject, roles=frozenset(roles) & ROLES)


def issue_dev_token(
    *,
    subject: str,
    roles: list[str],
    secret: str,
    issuer: str = "shop-dev-issuer",
    audience: str = "shop",
    ttl_seconds: int = 12 * 3600,
) -> str:
    """An HS256 token for local development and tests only."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "roles": roles,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")
