"""Placed -> CONFIRMED, from the orders' own timestamps (read as superuser after the run).

`created_at` is `now()` of the transaction that placed the order, `updated_at` that of the
transaction that confirmed it, so their difference is the saga as the system saw it: from
the start of the placing transaction to the start of the confirming one (a commit, well
under a millisecond here, is left out at both ends). Each phase places its orders as its own
customer, so one phase's rows are told apart from another's by `customer_id`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class SagaResult:
    placed: int
    confirmed: int
    other: dict[str, int]  # status -> count of orders not CONFIRMED (REJECTED, PENDING...)
    span_s: float  # first placement -> last confirmation
    confirmed_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def wait_settled(conn: asyncpg.Connection, customer: str, *, within: float) -> int:
    """Wait until none of the customer's orders is PENDING; returns how many still are."""
    deadline = time.monotonic() + within
    while True:
        pending: int = await conn.fetchval(
            "SELECT count(*) FROM orders.orders WHERE customer_id = $1 AND status = 'PENDING'",
            customer,
        )
        if pending == 0 or time.monotonic() > deadline:
            return pending
        await asyncio.sleep(0.25)


async def measure(conn: asyncpg.Connection, customer: str) -> SagaResult:
    counts = {
        r["status"]: r["n"]
        for r in await conn.fetch(
            "SELECT status, count(*) AS n FROM orders.orders WHERE customer_id = $1 "
            "GROUP BY status",
            customer,
        )
    }
    row = await conn.fetchrow(
        """
        SELECT count(*) AS n,
               extract(epoch FROM max(updated_at) - min(created_at)) AS span,
               percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY d) AS pct,
               max(d) AS worst
        FROM (SELECT created_at, updated_at,
                     extract(epoch FROM updated_at - created_at) * 1000 AS d
              FROM orders.orders WHERE customer_id = $1 AND status = 'CONFIRMED') AS confirmed
        """,
        customer,
    )
    confirmed = row["n"]
    span = float(row["span"] or 0.0)
    pct = row["pct"] or [float("nan")] * 3
    return SagaResult(
        placed=sum(counts.values()),
        confirmed=confirmed,
        other={k: v for k, v in counts.items() if k != "CONFIRMED"},
        span_s=span,
        confirmed_per_s=confirmed / span if span > 0 else 0.0,
        p50_ms=float(pct[0]),
        p90_ms=float(pct[1]),
        p99_ms=float(pct[2]),
        max_ms=float(row["worst"] or float("nan")),
    )
