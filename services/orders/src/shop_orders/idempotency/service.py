"""Claim, complete and release Idempotency-Keys.

A request first *claims* its (customer, key) in a short transaction of its own, so that a
concurrent duplicate sees the claim at once (409) instead of waiting. The response is
stored by `complete` inside the transaction that creates the order, so the order and its
replayable response commit together or not at all. A claim whose request died is taken
over after `claim_seconds`; a key is forgotten after `ttl_seconds`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_orders.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
)
from shop_orders.idempotency.models import IdempotencyKey

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    customer_id: str
    key: str
    fingerprint: str
    token: UUID = field(default_factory=uuid4)


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
    now = func.now()
    table = IdempotencyKey.__table__
    stmt = insert(IdempotencyKey).values(
        customer_id=claim.customer_id,
        key=claim.key,
        fingerprint=claim.fingerprint,
        claim_token=claim.token,
        claimed_until=now + timedelta(seconds=claim_seconds),
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=[IdempotencyKey.customer_id, IdempotencyKey.key],
        set_={
            "fingerprint": stmt.excluded.fingerprint,
            "claim_token": stmt.excluded.claim_token,
            "response_status": None,
            "response_body": None,
            "order_id": None,
            "claimed_until": stmt.excluded.claimed_until,
            "expires_at": stmt.excluded.expires_at,
            "created_at": now,
        },
        # Take over an expired key, or the abandoned claim of the same request.
        where=or_(
            table.c.expires_at < now,
            (table.c.response_status.is_(None))
            & (table.c.claimed_until < now)
            & (table.c.fingerprint == stmt.excluded.fingerprint),
        ),
    ).returning(IdempotencyKey.key)
    async with session.begin():
        if (await session.execute(upsert)).first() is not None:
            return None
        # ON CONFLICT locked the row, so this reads its latest committed state.
        row = (
            await session.execute(
                select(
                    IdempotencyKey.fingerprint,
                    IdempotencyKey.response_status,
                    IdempotencyKey.response_body,
                ).where(
                    IdempotencyKey.customer_id == claim.customer_id,
                    IdempotencyKey.key == claim.key,
                )
            )
        ).one()
    if row.fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body; use a new key."
        )
    if row.response_status is None:
        raise IdempotencyKeyInFlight(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )
    return StoredResponse(status=row.response_status, body=row.response_body)


async def complete(
    session: AsyncSession, claim: Claim, response: StoredResponse, order_id: UUID
) -> bool:
    """Store the response in the caller's transaction; False if the claim was taken over."""
    result = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.customer_id == claim.customer_id,
            IdempotencyKey.key == claim.key,
            IdempotencyKey.claim_token == claim.token,
            IdempotencyKey.response_status.is_(None),
        )
        .values(response_status=response.status, response_body=response.body, order_id=order_id)
        .returning(IdempotencyKey.key)
    )
    return result.first() is not None


async def release(session: AsyncSession, claim: Claim) -> None:
    """Forget an unfinished claim so the client may retry with the same key."""
    async with session.begin():
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.customer_id == claim.customer_id,
                IdempotencyKey.key == claim.key,
                IdempotencyKey.claim_token == claim.token,
                IdempotencyKey.response_status.is_(None),
            )
        )


async def purge_expired(session: AsyncSession, *, batch: int = 1000) -> int:
    """Delete up to `batch` expired keys; returns how many went."""
    async with session.begin():
        expired = (
            select(IdempotencyKey.customer_id, IdempotencyKey.key)
            .where(IdempotencyKey.expires_at < func.now())
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        result = await session.execute(
            delete(IdempotencyKey)
            .where(tuple_(IdempotencyKey.customer_id, IdempotencyKey.key).in_(expired))
            .returning(IdempotencyKey.key)
        )
        return len(result.all())
