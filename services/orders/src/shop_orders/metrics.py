"""Orders' business metrics: placements, the saga's outcomes and how long they took,
pricing from the replica, repeated Idempotency-Keys, and what is still PENDING.

Labels are statuses and outcomes, never ids. Outcomes are counted once their transaction
commits (`shop_common.metrics.after_commit`); the catalog lives in docs/observability.md.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.metrics import after_commit

# The statuses an order leaves PENDING for (orders.models.OrderStatus; a test holds them equal).
SETTLED_STATUSES = ("CONFIRMED", "REJECTED", "CANCELLED")
PRICING_SOURCES = ("catalog", "replica")
KEY_REPEAT_OUTCOMES = ("replayed", "in_flight", "reused")
# From a saga on an idle machine (tens of ms) to the PENDING deadline (2 h, ADR 0012).
SETTLE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 7200)

PLACED = Counter(
    "shop_orders_placed_total",
    "Orders placed (201, not replays), by where their prices came from: catalog or replica.",
    ["pricing_source"],
)
REPLICA_FALLBACKS = Counter(
    "shop_orders_replica_fallbacks_total",
    "Placements Catalog could not price (breaker open, retries spent, 503) that turned to "
    "the local product replica; placed_total{pricing_source=replica} counts those it priced.",
)
KEY_REPEATS = Counter(
    "shop_orders_idempotency_key_repeats_total",
    "Requests whose Idempotency-Key was already claimed: replayed (the first answer again), "
    "in_flight (409, the first is still running) or reused (422, another body).",
    ["outcome"],
)
SETTLED = Counter(
    "shop_orders_settled_total",
    "Orders that left PENDING, by the status they reached (the saga's outcome; each order once).",
    ["status"],
)
SETTLE_DURATION = Histogram(
    "shop_orders_settle_duration_seconds",
    "From placement to leaving PENDING, by the status reached.",
    ["status"],
    buckets=SETTLE_BUCKETS,
)
CANCELLED_AFTER_CONFIRM = Counter(
    "shop_orders_cancelled_after_confirm_total",
    "CONFIRMED orders cancelled later (their final status is CANCELLED).",
)
for _source in PRICING_SOURCES:
    PLACED.labels(_source)
for _outcome in KEY_REPEAT_OUTCOMES:
    KEY_REPEATS.labels(_outcome)
for _status in SETTLED_STATUSES:
    SETTLED.labels(_status)
    SETTLE_DURATION.labels(_status)


def order_placed(pricing_source: str) -> None:
    """A placement committed (its statement ran in autocommit on the driver pool)."""
    PLACED.labels(pricing_source).inc()


def key_repeated(outcome: str) -> None:
    KEY_REPEATS.labels(outcome).inc()


def order_left(session: AsyncSession, *, was: str, status: str, placed_at: datetime | None) -> None:
    """An order went from `was` to `status` in `session`'s transaction: counted on commit."""
    if was == "PENDING":
        after_commit(session, lambda: _settled(status, placed_at))
    elif status == "CANCELLED":
        after_commit(session, CANCELLED_AFTER_CONFIRM.inc)


def _settled(status: str, placed_at: datetime | None) -> None:
    SETTLED.labels(status).inc()
    if placed_at is not None:
        # The database stamped `placed_at`; hosts keep their clocks in step (NTP), so the
        # skew is small beside the seconds this measures.
        elapsed = (datetime.now(UTC) - placed_at).total_seconds()
        SETTLE_DURATION.labels(status).observe(max(elapsed, 0.0))


@functools.cache
def _pending_gauges() -> tuple[Gauge, Gauge]:
    # Created by the first count, which only the worker takes: the API exports no PENDING
    # gauges rather than a 0 that would look like a count.
    pending = Gauge("shop_orders_pending", "Orders in PENDING now, as the worker last counted.")
    oldest = Gauge(
        "shop_orders_pending_oldest_age_seconds",
        "Age of the oldest PENDING order as the worker last counted it (0 when none).",
    )
    return pending, oldest


def pending_counted(count: int, oldest_age_seconds: float) -> None:
    """The worker counted the PENDING orders (a timer: the PENDING age alert reads these)."""
    pending, oldest = _pending_gauges()
    pending.set(count)
    oldest.set(oldest_age_seconds)
