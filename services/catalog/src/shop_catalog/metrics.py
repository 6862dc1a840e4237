"""Catalog's business metrics: reservations decided, and why stock was refused.

Counted once the consumer's transaction commits (`shop_common.metrics.after_commit`), so
a batch applied again one message at a time counts each reservation once. Labels are
outcomes and reasons, never ids; the catalog lives in docs/observability.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import get_args

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from shop_common.events import RejectionReason
from shop_common.metrics import after_commit

REASONS: tuple[str, ...] = get_args(RejectionReason)

RESERVATIONS = Counter(
    "shop_catalog_reservations_total",
    "Orders' stock requests Catalog decided: reserved (every line) or rejected (none).",
    ["outcome"],
)
REJECTIONS = Counter(
    "shop_catalog_reservation_rejections_total",
    "Rejected reservations by reason: insufficient_stock, inactive or unknown_product "
    "(a reservation refused for two reasons counts under both).",
    ["reason"],
)

for _outcome in ("reserved", "rejected"):
    RESERVATIONS.labels(_outcome)
for _reason in REASONS:
    REJECTIONS.labels(_reason)


def reservation_decided(session: AsyncSession, refusals: Iterable[str | None]) -> None:
    """A reservation was decided in `session`'s transaction; `refusals` is each line's
    reason (None for a line that could be had). Counted on commit."""
    reasons = sorted({reason for reason in refusals if reason})
    after_commit(session, lambda: _decided(reasons))


def _decided(reasons: list[str]) -> None:
    RESERVATIONS.labels("rejected" if reasons else "reserved").inc()
    for reason in reasons:
        REJECTIONS.labels(reason).inc()
