"""After the faults: wait for the saga to come to rest, then account for every request.

What counts as a violation (each is listed with a few example ids):

- lost, accepted: a 201 whose order does not exist.
- lost, unanswered: a request whose retries ended without a 201 (budget spent, or a 4xx)
  although an order exists for its Idempotency-Key: the customer has an order it was never
  told about.
- unanswered: a request (order or cancel) whose retry budget was spent without any answer
  although every fault is short and the system comes back within it: the customer's order
  is as good as lost to them (an orphaned Idempotency-Key claim that blocks retries for
  longer than the budget shows up here).
- refused: a valid order answered with a 4xx other than 409 (nothing in the stream is bad
  input).
- stuck, not final: an order still PENDING after the settle period.
- stuck, disagreeing: an order whose final status and Catalog's reservation disagree
  (CONFIRMED needs RESERVED, REJECTED needs REJECTED, CANCELLED needs RELEASED, a tombstone
  CANCELLED or REJECTED: anything else is a reservation held, missing or not released).
- duplicated, key: two different order ids answered for one key, or an answer that is not
  the order the key row stores.
- duplicated, keyless order: an order no Idempotency-Key row points at.
- duplicated, stock moved twice: Catalog answered an order more often than Orders asked
  (more `catalog.stock.reserved.v1` + `.rejected.v1` than `orders.order.placed.v1`, more
  `.released.v1` than `orders.order.cancelled.v1`: the saga sends a placement or a cancel
  again when no answer came and each copy gets one answer, ADR 0012), or both reserved and
  rejected.
- stock: a product where initial != available + reserved, available < 0, or reserved !=
  the units of its CONFIRMED orders (and of its RESERVED reservations).
- cancel not honoured: a cancel answered 200 whose order is not CANCELLED at the end, or
  whose reservation is still held, or that was reserved and never released (or released
  and never reserved).
- cancelled unasked: a CANCELLED order nobody asked to cancel (the PENDING sweeper).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby

import asyncpg

from tests.chaos.clients import Ledger, Request
from tests.chaos.schedule import Injected

AGREE = """(
    (o.status = 'CONFIRMED' AND r.status = 'RESERVED')
 OR (o.status = 'REJECTED' AND r.status = 'REJECTED')
 OR (o.status = 'CANCELLED' AND r.status IN ('RELEASED', 'CANCELLED', 'REJECTED'))
)"""
REST = f"""
SELECT
  (SELECT count(*) FROM orders.orders WHERE status = 'PENDING') AS pending,
  (SELECT count(*) FROM orders.orders o LEFT JOIN catalog.reservations r ON r.order_id = o.id
    WHERE o.status <> 'PENDING' AND NOT coalesce({AGREE}, false)) AS disagreeing,
  (SELECT count(*) FROM orders.outbox WHERE published_at IS NULL)
  + (SELECT count(*) FROM catalog.outbox WHERE published_at IS NULL) AS unsent
"""
EXAMPLES = 5

VIOLATIONS = {
    "lost_accepted": "lost: a 201 whose order does not exist",
    "lost_unanswered": "lost: no 201 in the end, yet the key has an order",
    "unanswered": "unanswered: retry budget spent, no answer",
    "refused": "refused: a valid order answered 4xx (not 409)",
    "stuck_pending": "stuck: still PENDING after the settle period",
    "stuck_disagreeing": "stuck: order and Catalog reservation disagree",
    "duplicated_key": "duplicated: two orders answered for one key",
    "duplicated_keyless": "duplicated: an order no key points at",
    "duplicated_stock": "duplicated: Catalog answered more than asked",
    "stock": "stock: product not conserved",
    "cancel_not_honoured": "cancels: a 200 cancel not honoured",
    "cancelled_unasked": "cancels: CANCELLED although nobody asked",
}


@dataclass(frozen=True)
class Rest:
    pending: int
    disagreeing: int
    unsent: int
    queued: int  # messages still in the services' queues (parking queues aside)

    @property
    def quiet(self) -> bool:
        return not (self.pending or self.disagreeing or self.unsent or self.queued)


async def settle(
    conn: asyncpg.Connection,
    queues: Callable[[], Awaitable[dict[str, int]]],
    within: float,
) -> tuple[Rest, dict[str, int], float]:
    """Poll until no order is PENDING, every order agrees with its reservation, both outboxes
    are empty and no message waits in a queue (a late duplicate would move stock after the
    accounting), or until `within` seconds passed; returns the last look and when."""
    started = time.monotonic()
    while True:
        row = await conn.fetchrow(REST)
        depths = await queues()
        queued = sum(n for queue, n in depths.items() if not queue.endswith(".parking"))
        rest = Rest(row["pending"], row["disagreeing"], row["unsent"], queued)
        waited = time.monotonic() - started
        if rest.quiet or waited > within:
            return rest, depths, waited
        await asyncio.sleep(0.5)


@dataclass
class Accounting:
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in VIOLATIONS})
    stock_rows: list[tuple[str, int, int, int, int, str]] = field(default_factory=list)
    answers: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    faults: list[Injected] = field(default_factory=list)
    # What the first few requests without an answer went through, attempt by attempt.
    unanswered: list[str] = field(default_factory=list)
    # Sabotages of the settled run -> "" when the accounting saw them (tests.chaos.selfcheck).
    self_check: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Violations by name, only those that happened."""
        return {name: len(found) for name, found in self.violations.items() if found}

    @property
    def ok(self) -> bool:
        return not self.counts()

    def render(self) -> str:
        out = [self.title, ""]
        out += ["Faults injected (seconds since the stream began):"]
        out += [f"  {i.started:6.1f}s  {i.fault.label:<36} {i.note}" for i in self.faults] or [
            "  none"
        ]
        out += ["", "What happened:"]
        out += [f"  {name:<46} {value}" for name, value in self.facts]
        out += ["", f"  {'violation':<58} count  examples"]
        for name, text in VIOLATIONS.items():
            found = self.violations[name]
            out.append(f"  {text:<58} {len(found):>5}  {' '.join(found[:EXAMPLES])}".rstrip())
        if self.unanswered:
            out += ["", "Requests without an answer (phase: outcome x times, in order):"]
            out += [f"  {line}" for line in self.unanswered]
        out += ["", "Stock per product:"]
        out += _table(
            ("product", "initial", "available", "reserved", "confirmed units", "conserved"),
            [(p[:8], *rest) for p, *rest in self.stock_rows],
        )
        out += ["", "Answers other than 200/201, by phase (attempts, retries included):"]
        outcomes = sorted({o for (_, _, o) in self.answers}, key=lambda o: (not o.isdigit(), o))
        rows = sorted({(phase, op) for (phase, op, _) in self.answers}, key=_phase_order)
        out += (
            _table(
                ("phase", "op", *outcomes),
                [
                    (phase, op, *(self.answers.get((phase, op, o), 0) or "" for o in outcomes))
                    for phase, op in rows
                ],
            )
            if self.answers
            else ["  none"]
        )
        missed = {what: why for what, why in self.self_check.items() if why}
        done = len(self.self_check)
        out += ["", f"Accounting self-check: {done - len(missed)} of {done} sabotages detected"]
        out += [f"  MISSED {what}: {why}" for what, why in missed.items()]
        verdict = "PASSED: no violation" if self.ok else f"FAILED: {self.counts()}"
        return "\n".join([*out, "", verdict])

    @property
    def trustworthy(self) -> bool:
        """Every sabotage of the run was detected (the detectors work on this data)."""
        return not any(self.self_check.values())


def _phase_order(row: tuple[str, str]) -> tuple[bool, str, str]:
    return (row[0] != "steady", row[0], row[1])


def _table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first, *rest = row
        return "  " + "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        )

    return [line(row) for row in cells]


@dataclass(frozen=True)
class Run:
    """What the accounting knows of a run besides the database and the clients' ledger."""

    title: str
    initial_stock: dict[str, int]
    rest: Rest
    settled_after: float
    queues: dict[str, int]  # messages left in each queue that has any
    faults: list[Injected]


async def account(conn: asyncpg.Connection, ledger: Ledger, run: Run) -> Accounting:
    acc = Accounting(title=run.title, faults=run.faults)
    v = acc.violations
    orders = {
        str(r["id"]): (r["status"], r["pricing_source"])
        for r in await conn.fetch("SELECT id, status, pricing_source FROM orders.orders")
    }
    keyed = {
        (r["customer_id"], r["key"]): (str(r["order_id"]) if r["order_id"] else None)
        for r in await conn.fetch("SELECT customer_id, key, order_id FROM orders.idempotency_keys")
    }
    reservations = {
        str(r["order_id"]): r["status"]
        for r in await conn.fetch("SELECT order_id, status FROM catalog.reservations")
    }
    events: Counter[tuple[str, str]] = Counter()
    for table in ("orders.outbox", "catalog.outbox"):
        counted = f"SELECT type, subject, count(*) AS n FROM {table} GROUP BY 1, 2"
        for r in await conn.fetch(counted):
            events[(r["type"], r["subject"])] = r["n"]

    # Requests: lost, refused, duplicated answers.
    accepted = [p for p in ledger.places if p.final == 201]
    for place in ledger.places:
        stored = keyed.get((place.customer, str(place.key)))
        if place.final == 201:
            v["lost_accepted"] += [i for i in place.answered_ids if i not in orders]
            if len(place.answered_ids) > 1 or (
                stored is not None and {stored} != place.answered_ids
            ):
                v["duplicated_key"].append(str(place.key))
        elif stored is not None and stored in orders:
            v["lost_unanswered"].append(stored)
        elif place.unanswered:
            v["unanswered"].append(str(place.key))
        if place.final is not None and 400 <= place.final < 500 and place.final != 409:
            v["refused"].append(f"{place.key}:{place.final}")
    v["duplicated_keyless"] = sorted(set(orders) - {o for o in keyed.values() if o})
    for order_id in orders:
        asked, answered = _asked_and_answered(events, order_id)
        if (
            answered["reserved"] + answered["rejected"] > asked["placed"]
            or (answered["reserved"] and answered["rejected"])
            or answered["released"] > asked["cancelled"]
        ):
            v["duplicated_stock"].append(order_id)

    # The saga at rest.
    agree = {
        "CONFIRMED": {"RESERVED"},
        "REJECTED": {"REJECTED"},
        "CANCELLED": {"RELEASED", "CANCELLED", "REJECTED"},
    }
    for order_id, (status, _) in orders.items():
        if status == "PENDING":
            v["stuck_pending"].append(order_id)
        elif reservations.get(order_id) not in agree.get(status, set()):
            v["stuck_disagreeing"].append(f"{order_id}:{status}/{reservations.get(order_id)}")

    # Cancels.
    asked = {c.order_id for c in ledger.cancels}
    v["unanswered"] += [f"cancel:{c.order_id}" for c in ledger.cancels if c.unanswered]
    honoured = [c for c in ledger.cancels if c.final == 200]
    for cancel in honoured:
        oid = str(cancel.order_id)
        _, answered = _asked_and_answered(events, oid)
        if (
            cancel.answered_status != "CANCELLED"
            or orders.get(oid, ("?",))[0] != "CANCELLED"
            or reservations.get(oid) in (None, "RESERVED")
            or bool(answered["reserved"]) != bool(answered["released"])
        ):
            v["cancel_not_honoured"].append(oid)
    v["cancelled_unasked"] = sorted(
        oid for oid, (status, _) in orders.items() if status == "CANCELLED" and oid not in asked
    )

    # Stock per product.
    confirmed_units = _units(
        await conn.fetch(
            "SELECT l.product_id, sum(l.quantity) AS units FROM orders.order_lines l "
            "JOIN orders.orders o ON o.id = l.order_id WHERE o.status = 'CONFIRMED' GROUP BY 1"
        )
    )
    held_units = _units(
        await conn.fetch(
            "SELECT (line->>'product_id')::uuid AS product_id, sum((line->>'quantity')::int) "
            "AS units FROM catalog.reservations r, jsonb_array_elements(r.lines) AS line "
            "WHERE r.status = 'RESERVED' GROUP BY 1"
        )
    )
    for r in await conn.fetch("SELECT id, stock_available, stock_reserved FROM catalog.products"):
        pid, available, reserved = str(r["id"]), r["stock_available"], r["stock_reserved"]
        initial, confirmed = run.initial_stock.get(pid, -1), confirmed_units.get(pid, 0)
        conserved = (
            available >= 0
            and available + reserved == initial
            and reserved == confirmed == held_units.get(pid, 0)
        )
        acc.stock_rows.append(
            (pid, initial, available, reserved, confirmed, "yes" if conserved else "NO")
        )
        if not conserved:
            v["stock"].append(pid)

    # What happened, for the reader.
    finals = Counter(status for status, _ in orders.values())
    cancels_of_confirmed = sum(
        1 for c in honoured if events[("orders.order.confirmed.v1", str(c.order_id))]
    )
    attempts = [len(p.attempts) for p in ledger.places]
    retried = sum(a > 1 for a in attempts)
    acc.facts = [
        ("orders requested (Idempotency-Keys)", str(len(ledger.places))),
        ("accepted (201)", str(len(accepted))),
        ("orders in the database", f"{len(orders)}: " + _counter(finals)),
        (
            "priced from the replica (Catalog away)",
            str(sum(1 for _, source in orders.values() if source == "replica")),
        ),
        ("attempts per order request", f"max {max(attempts, default=0)}, {retried} retried"),
        ("cancels requested", str(len(ledger.cancels))),
        (
            "cancels answered 200",
            f"{len(honoured)} ({cancels_of_confirmed} after CONFIRMED, "
            f"{len(honoured) - cancels_of_confirmed} before)",
        ),
        ("cancels answered 409 (order REJECTED)", str(sum(c.final == 409 for c in ledger.cancels))),
        (
            "settled after",
            f"{run.settled_after:.1f}s (PENDING {run.rest.pending}, disagreeing "
            f"{run.rest.disagreeing}, unsent events {run.rest.unsent}, queued {run.rest.queued})",
        ),
        ("messages left in queues (parking, retry, ...)", _counter(Counter(run.queues)) or "none"),
    ]
    acc.unanswered = [_story(r) for r in [*ledger.places, *ledger.cancels] if r.unanswered][
        :EXAMPLES
    ]
    acc.answers = Counter(
        (a.phase, a.op, a.outcome)
        for request in (*ledger.places, *ledger.cancels)
        for a in request.attempts
        if a.outcome not in ("200", "201")
    )
    return acc


def _story(request: Request) -> str:
    """`<op> <key or order> (from-to): <phase>: <outcome> xN, ...`, repeats folded."""
    runs = groupby(request.attempts, key=lambda a: (a.phase, a.outcome))
    told = ", ".join(f"{phase}: {outcome} x{len(list(same))}" for (phase, outcome), same in runs)
    first, last = request.attempts[0].at, request.attempts[-1].at
    return f"{request.op} {request.key or request.order_id} ({first:.1f}s-{last:.1f}s): {told}"


def _asked_and_answered(
    events: Counter[tuple[str, str]], order_id: str
) -> tuple[dict[str, int], dict[str, int]]:
    """How often Orders asked (placed, cancelled) and Catalog answered, from the outboxes.

    Orders sends a placement or a cancel again when no answer came (ADR 0012) and Catalog
    answers each copy, moving stock only the first time: so an answer may repeat, but never
    more often than it was asked for.
    """
    asked = {
        kind: events[(f"orders.order.{kind}.v1", order_id)] for kind in ("placed", "cancelled")
    }
    answered = {
        kind: events[(f"catalog.stock.{kind}.v1", order_id)]
        for kind in ("reserved", "rejected", "released")
    }
    return asked, answered


def _units(rows: Iterable[asyncpg.Record]) -> dict[str, int]:
    return {str(r["product_id"]): int(r["units"]) for r in rows}


def _counter(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()) if n)
