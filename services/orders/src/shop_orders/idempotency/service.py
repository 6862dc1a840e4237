"""Idempotency-Key rules: claim a key, answer from it, or release it.

A request first *claims* its (customer, key) in a statement of its own, so that a
concurrent duplicate sees the claim at once (409) instead of waiting. The response is
stored by the statement that creates the order (`orders.repository.insert_placed`), so the
order and its replayable response commit together or not at all. A claim whose request
died is taken over as soon as its database session is gone (its API process was killed),
or after `claim_seconds` at the latest; a key is forgotten after `ttl_seconds`.

Each function here is one statement on the API's driver pool, its own unit of work;
`purge_expired` is the worker's housekeeping, in a session.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.db import DriverPool
from shop_orders import metrics
from shop_orders.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
)
from shop_orders.idempotency import repository as repo
from shop_orders.idempotency.models import Claim

__all__ = [
    "Claim",
    "StoredResponse",
    "answer_of",
    "claim",
    "fingerprint",
    "purge_expired",
    "release",
    "validated_key",
]

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_IN_FLIGHT = "A request with this Idempotency-Key is still being processed; retry shortly."


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer to a keyed request: stored with its effect, replayed for a duplicate.
    `body` is the JSON text as stored, sent as it is the first time and every time after."""

    status: int
    body: str
    order_id: UUID
    replayed: bool = False


def validated_key(raw: str | None) -> str:
    if raw is None:
        raise IdempotencyKeyRequired("Send an Idempotency-Key header (for example a UUID).")
    if not _KEY.match(raw):
        raise IdempotencyKeyRequired("Idempotency-Key must be 1-255 visible ASCII characters.")
    return raw


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(
    driver: DriverPool, claim: Claim, *, ttl_seconds: int, claim_seconds: int
) -> StoredResponse | None:
    """None: this request owns the key now. Otherwise the response to replay; or 409/422."""
    if await repo.try_claim(driver, claim, ttl_seconds=ttl_seconds, claim_seconds=claim_seconds):
        return None
    row = await repo.state(driver, claim)
    if row is None:  # the row went (expired and purged) between the two statements
        metrics.key_repeated("in_flight")
        raise IdempotencyKeyInFlight(_IN_FLIGHT, headers={"Retry-After": "1"})
    if row["fingerprint"] != claim.fingerprint:
        metrics.key_repeated("reused")
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body; use a new key."
        )
    stored = _stored(row, replayed=True)
    if stored is None:
        metrics.key_repeated("in_flight")
        raise IdempotencyKeyInFlight(_IN_FLIGHT, headers={"Retry-After": "1"})
    metrics.key_repeated("replayed")
    return stored


async def answer_of(driver: DriverPool, claim: Claim) -> StoredResponse | None:
    """The response stored under the key by `claim`'s own request, if it stored one: after
    a dropped connection left it unknown whether the order's statement committed."""
    row = await repo.state(driver, claim)
    if row is None or row["claim_token"] != claim.token:
        return None
    return _stored(row, replayed=False)


async def release(driver: DriverPool, claim: Claim) -> None:
    """Forget an unfinished claim so the client may retry with the same key."""
    await repo.release(driver, claim)


def _stored(row: dict[str, Any], *, replayed: bool) -> StoredResponse | None:
    if row["response_status"] is None or row["response_body"] is None:
        return None
    return StoredResponse(
        status=row["response_status"],
        body=row["response_body"],
        order_id=row["order_id"],
        replayed=replayed,
    )


async def purge_expired(session: AsyncSession, *, batch: int = 1000) -> int:
    """Delete up to `batch` expired keys in a transaction of its own; returns how many went."""
    async with session.begin():
        return await repo.delete_expired(session, batch=batch)
