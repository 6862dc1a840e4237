"""Idempotency-Key rules: claim a key, complete it with the response, or release it.

A request first *claims* its (customer, key) in a short transaction of its own, so that a
concurrent duplicate sees the claim at once (409) instead of waiting. The response is
stored by `complete` inside the transaction that creates the order, so the order and its
replayable response commit together or not at all. A claim whose request died is taken
over after `claim_seconds`; a key is forgotten after `ttl_seconds`.

`claim`, `complete` and `release` run in the caller's transaction (the order service
begins it); `purge_expired` is a unit of work of its own (the worker's housekeeping).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

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
    "claim",
    "complete",
    "fingerprint",
    "purge_expired",
    "release",
    "validated_key",
]

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer to a keyed request: stored with its effect, replayed for a duplicate."""

    status: int
    body: dict[str, Any]
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
    session: AsyncSession, claim: Claim, *, ttl_seconds: int, claim_seconds: int
) -> StoredResponse | None:
    """None: this request owns the key now. Otherwise the response to replay; or 409/422."""
    if await repo.try_claim(session, claim, ttl_seconds=ttl_seconds, claim_seconds=claim_seconds):
        return None
    # The refused upsert locked the row, so this reads its latest committed state.
    row = await repo.get(session, claim)
    if row.fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body; use a new key."
        )
    if row.response_status is None or row.response_body is None:
        raise IdempotencyKeyInFlight(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )
    return StoredResponse(status=row.response_status, body=row.response_body, replayed=True)


async def complete(
    session: AsyncSession, claim: Claim, response: StoredResponse, order_id: UUID
) -> bool:
    """Store the response in the caller's transaction; False if the claim was taken over."""
    return await repo.store_response(
        session, claim, status=response.status, body=response.body, order_id=order_id
    )


async def release(session: AsyncSession, claim: Claim) -> None:
    """Forget an unfinished claim so the client may retry with the same key."""
    await repo.delete_claim(session, claim)


async def purge_expired(session: AsyncSession, *, batch: int = 1000) -> int:
    """Delete up to `batch` expired keys in a transaction of its own; returns how many went."""
    async with session.begin():
        return await repo.delete_expired(session, batch=batch)
