"""`outbox status`: what each service's outbox still has to send, and what keeps failing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shop_catalog.messaging import OUTBOX as CATALOG_OUTBOX
from shop_ops.settings import Service
from shop_orders.messaging import OUTBOX as ORDERS_OUTBOX

OUTBOXES: dict[Service, Table] = {Service.CATALOG: CATALOG_OUTBOX, Service.ORDERS: ORDERS_OUTBOX}


@dataclass(frozen=True)
class FailingRow:
    """An unsent event the relay tried and failed to publish (oldest first)."""

    id: uuid.UUID
    type: str
    subject: str
    created_at: datetime
    attempts: int
    last_error: str | None
    next_attempt_at: datetime


@dataclass(frozen=True)
class OutboxStatus:
    service: Service
    checked_at: datetime  # the database's clock: ages are measured against it
    pending: int
    oldest_pending_at: datetime | None
    failing: int
    failing_rows: tuple[FailingRow, ...]

    @property
    def oldest_age_seconds(self) -> float | None:
        if self.oldest_pending_at is None:
            return None
        return max((self.checked_at - self.oldest_pending_at).total_seconds(), 0.0)


async def outbox_status(
    conn: AsyncConnection, service: Service, *, show_failing: int = 10
) -> OutboxStatus:
    """Counts over the unsent rows (the relay's partial index), and the oldest failing ones."""
    t = OUTBOXES[service]
    unsent = t.c.published_at.is_(None)
    counts = (
        await conn.execute(
            select(
                func.now(),
                func.count(),
                func.min(t.c.created_at),
                func.count().filter(t.c.attempts > 0),
            ).where(unsent)
        )
    ).one()
    rows = await conn.execute(
        select(
            t.c.id,
            t.c.type,
            t.c.subject,
            t.c.created_at,
            t.c.attempts,
            t.c.last_error,
            t.c.available_at,
        )
        .where(unsent, t.c.attempts > 0)
        .order_by(t.c.seq)
        .limit(show_failing)
    )
    return OutboxStatus(
        service=service,
        checked_at=counts[0],
        pending=counts[1],
        oldest_pending_at=counts[2],
        failing=counts[3],
        failing_rows=tuple(FailingRow(*row) for row in rows),
    )
