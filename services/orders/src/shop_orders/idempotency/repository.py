"""SQL for Idempotency-Keys; every function runs in the caller's transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Row, and_, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shop_orders.idempotency.models import Claim, IdempotencyKey


async def try_claim(
    session: AsyncSession, claim: Claim, *, ttl_seconds: int, claim_seconds: int
) -> bool:
    """Insert the key, or take over an expired key or an abandoned claim of the same request.

    False when somebody else's row stands; it is locked then, until the transaction ends.
    """
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
        where=or_(
            table.c.expires_at < now,
            (table.c.response_status.is_(None))
            & (table.c.claimed_until < now)
            & (table.c.fingerprint == stmt.excluded.fingerprint),
        ),
    ).returning(IdempotencyKey.key)
    return (await session.execute(upsert)).first() is not None


async def get(
    session: AsyncSession, claim: Claim
) -> Row[tuple[str, int | None, dict[str, Any] | None]]:
    """The claimed key's fingerprint and stored response (both NULL while in flight)."""
    stmt = select(
        IdempotencyKey.fingerprint, IdempotencyKey.response_status, IdempotencyKey.response_body
    ).where(IdempotencyKey.customer_id == claim.customer_id, IdempotencyKey.key == claim.key)
    return (await session.execute(stmt)).one()


async def store_response(
    session: AsyncSession, claim: Claim, *, status: int, body: dict[str, Any], order_id: UUID
) -> bool:
    """Store the response if `claim` still holds the key, unfinished; False otherwise."""
    result = await session.execute(
        update(IdempotencyKey)
        .where(_held_by(claim))
        .values(response_status=status, response_body=body, order_id=order_id)
        .returning(IdempotencyKey.key)
    )
    return result.first() is not None


async def delete_claim(session: AsyncSession, claim: Claim) -> None:
    """Delete the key if `claim` still holds it, unfinished."""
    await session.execute(delete(IdempotencyKey).where(_held_by(claim)))


async def delete_expired(session: AsyncSession, *, batch: int) -> int:
    """Delete up to `batch` expired keys (skipping locked ones); returns how many went."""
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


def _held_by(claim: Claim) -> ColumnElement[bool]:
    """The key's row, while this claim (not a takeover) holds it and it has no response."""
    return and_(
        IdempotencyKey.customer_id == claim.customer_id,
        IdempotencyKey.key == claim.key,
        IdempotencyKey.claim_token == claim.token,
        IdempotencyKey.response_status.is_(None),
    )
