"""The accounting checks itself: every sabotage of a settled run must show as its violation.

Each sabotage changes the run's data (inside a transaction that is rolled back) or a copy of
the clients' ledger, then the accounting runs again on it. A detector that misses its
sabotage would let a real violation through, so the run fails.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from tests.chaos.accounting import Run, account
from tests.chaos.clients import Attempt, Ledger, Request


@dataclass(frozen=True)
class Sabotage:
    expect: str  # the violation it must cause
    what: str
    apply: Callable[[asyncpg.Connection, Ledger], Awaitable[None]]


def _sql(statement: str, *args: Callable[[Ledger], object]) -> Callable[..., Awaitable[None]]:
    async def apply(conn: asyncpg.Connection, ledger: Ledger) -> None:
        status = await conn.execute(statement, *(arg(ledger) for arg in args))
        if status.endswith(" 0"):
            raise LookupError(f"the run has nothing to sabotage with {statement!r}")

    return apply


def _ledger(change: Callable[[Ledger], None]) -> Callable[..., Awaitable[None]]:
    async def apply(_: asyncpg.Connection, ledger: Ledger) -> None:
        change(ledger)

    return apply


def _first_accepted(ledger: Ledger) -> Request:
    return next(p for p in ledger.places if p.final == 201)


def _forget_answer(ledger: Ledger) -> None:
    accepted = _first_accepted(ledger)
    accepted.final, accepted.answered_ids = None, set()


def _stray(final: int | None) -> Callable[[Ledger], None]:
    def add(ledger: Ledger) -> None:
        attempt = Attempt("place", "steady", str(final or "connection"), 0.0)
        key = f"sabotage-{uuid.uuid4()}"
        ledger.places.append(Request("place", "nobody", key=key, attempts=[attempt], final=final))

    return add


def _cancelled_ids(ledger: Ledger) -> list[uuid.UUID]:
    return [uuid.UUID(str(c.order_id)) for c in ledger.cancels]


SABOTAGES = (
    Sabotage(
        "lost_accepted",
        "delete an accepted order",
        _sql(
            "DELETE FROM orders.orders WHERE id = "
            "(SELECT id FROM orders.orders WHERE status = 'REJECTED' LIMIT 1)"
        ),
    ),
    Sabotage("lost_unanswered", "forget the 201 of an order", _ledger(_forget_answer)),
    Sabotage("unanswered", "a request with no answer", _ledger(_stray(None))),
    Sabotage("refused", "a valid order answered 422", _ledger(_stray(422))),
    Sabotage(
        "stuck_pending",
        "an order back to PENDING",
        _sql(
            "UPDATE orders.orders SET status = 'PENDING' WHERE id = "
            "(SELECT id FROM orders.orders WHERE status = 'REJECTED' LIMIT 1)"
        ),
    ),
    Sabotage(
        "stuck_disagreeing",
        "a CONFIRMED order's reservation REJECTED",
        _sql(
            "UPDATE catalog.reservations SET status = 'REJECTED' WHERE order_id = "
            "(SELECT id FROM orders.orders WHERE status = 'CONFIRMED' LIMIT 1)"
        ),
    ),
    Sabotage(
        "duplicated_key",
        "a second order id answered for a key",
        _ledger(lambda ledger: _first_accepted(ledger).answered_ids.add(str(uuid.uuid4()))),
    ),
    Sabotage(
        "duplicated_keyless",
        "an order no key points at",
        _sql(
            "UPDATE orders.idempotency_keys SET order_id = NULL WHERE order_id = "
            "(SELECT id FROM orders.orders LIMIT 1)"
        ),
    ),
    Sabotage(
        "duplicated_stock",
        "a second stock.reserved event",
        _sql(
            "INSERT INTO catalog.outbox (id, source, type, subject, payload, created_at) "
            "SELECT gen_random_uuid(), source, type, subject, payload, created_at "
            "FROM catalog.outbox WHERE type = 'catalog.stock.reserved.v1' LIMIT 1"
        ),
    ),
    Sabotage(
        "stock",
        "one unit more available",
        _sql(
            "UPDATE catalog.products SET stock_available = stock_available + 1 "
            "WHERE id = (SELECT id FROM catalog.products LIMIT 1)"
        ),
    ),
    Sabotage(
        "cancel_not_honoured",
        "a released reservation held again",
        _sql(
            "UPDATE catalog.reservations SET status = 'RESERVED' WHERE order_id = "
            "(SELECT order_id FROM catalog.reservations WHERE status = 'RELEASED' "
            "AND order_id = ANY($1::uuid[]) LIMIT 1)",
            _cancelled_ids,
        ),
    ),
    Sabotage(
        "cancelled_unasked",
        "an order CANCELLED nobody cancelled",
        _sql(
            "UPDATE orders.orders SET status = 'CANCELLED' WHERE id = "
            "(SELECT id FROM orders.orders WHERE status = 'REJECTED' "
            "AND NOT id = ANY($1::uuid[]) LIMIT 1)",
            _cancelled_ids,
        ),
    ),
)


class _Undo(Exception):
    """Raised to roll a sabotage back."""


async def self_check(conn: asyncpg.Connection, ledger: Ledger, run: Run) -> dict[str, str]:
    """Each sabotage's description -> "" if its violation was detected, else why not."""
    found: dict[str, str] = {}
    for sabotage in SABOTAGES:
        try:
            async with conn.transaction():
                sabotaged = copy.deepcopy(ledger)
                try:
                    await sabotage.apply(conn, sabotaged)
                except (LookupError, StopIteration) as exc:
                    found[sabotage.what] = f"nothing to sabotage ({exc})"
                    raise _Undo from exc
                counts = (await account(conn, sabotaged, run)).counts()
                found[sabotage.what] = (
                    "" if counts.get(sabotage.expect) else f"{sabotage.expect} not seen: {counts}"
                )
                raise _Undo
        except _Undo:
            pass
    return found
