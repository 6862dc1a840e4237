"""SQL for Idempotency-Keys.

The request path (claim, read, release) runs single statements on the API's driver pool:
each is its own transaction, and each is safe to run twice (the pool repeats a statement
whose connection dropped), as its docstring says. Housekeeping runs in the worker's session.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.db import DriverPool
from shop_orders.idempotency.models import Claim, IdempotencyKey

# Insert the key, or take over an expired key or a claim of the same request whose holder
# is gone: its database session ended (its API process died) or its lease ran out. The
# holder's session is this statement's own backend, as (pid, start), so that a reused pid is
# not mistaken for it; where that cannot be read, only the lease counts. A repeat of this
# very claim (same token, after a dropped connection) succeeds again.
_CLAIM = """
INSERT INTO idempotency_keys AS k (customer_id, key, fingerprint, claim_token, claimer_pid,
                                   claimer_started, claimed_until, expires_at)
VALUES ($1, $2, $3, $4, pg_backend_pid(),
        (SELECT backend_start FROM pg_stat_get_activity(pg_backend_pid())),
        now() + make_interval(secs => $5), now() + make_interval(secs => $6))
ON CONFLICT (customer_id, key) DO UPDATE
   SET fingerprint = excluded.fingerprint, claim_token = excluded.claim_token,
       claimer_pid = excluded.claimer_pid, claimer_started = excluded.claimer_started,
       response_status = NULL, response_body = NULL, order_id = NULL,
       claimed_until = excluded.claimed_until, expires_at = excluded.expires_at,
       created_at = now()
 WHERE k.expires_at < now()
    OR (k.response_status IS NULL AND k.claim_token = excluded.claim_token)
    OR (k.response_status IS NULL AND k.fingerprint = excluded.fingerprint
        AND (k.claimed_until < now()
             OR (k.claimer_started IS NOT NULL
                 AND NOT EXISTS (SELECT FROM pg_stat_get_activity(k.claimer_pid) AS h
                                  WHERE h.backend_start = k.claimer_started))))
RETURNING k.claim_token
"""
_STATE = """
SELECT fingerprint, claim_token, response_status, response_body::text AS response_body, order_id
  FROM idempotency_keys WHERE customer_id = $1 AND key = $2
"""
# Only the claim's own holder frees it, and only while it has no response.
_RELEASE = """
DELETE FROM idempotency_keys
 WHERE customer_id = $1 AND key = $2 AND claim_token = $3 AND response_status IS NULL
"""


async def try_claim(
    driver: DriverPool, claim: Claim, *, ttl_seconds: int, claim_seconds: int
) -> bool:
    """True if `claim` holds the key now; False if somebody else's row stands."""
    row = await driver.fetchrow(
        _CLAIM,
        claim.customer_id,
        claim.key,
        claim.fingerprint,
        claim.token,
        float(claim_seconds),
        float(ttl_seconds),
    )
    return row is not None


async def state(driver: DriverPool, claim: Claim) -> dict[str, Any] | None:
    """The key's row as it is now (fingerprint, claim_token, response_status,
    response_body as JSON text, order_id); None if there is none."""
    row = await driver.fetchrow(_STATE, claim.customer_id, claim.key)
    return None if row is None else dict(row)


async def release(driver: DriverPool, claim: Claim) -> None:
    """Delete the key if `claim` still holds it, unfinished (a repeat deletes nothing)."""
    await driver.fetch(_RELEASE, claim.customer_id, claim.key, claim.token)


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
