"""What one service recorded about one order: its row, its outbox events, its inbox receipts.

Each service is read through its own role, in its own schema; the two are joined in memory
by event id (an event's outbox id is the id the other service's inbox records), so no
service ever reads the other's tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, func, null, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shop_catalog import messaging as catalog_messaging
from shop_catalog.reservations.models import Reservation
from shop_ops.settings import Service
from shop_orders import messaging as orders_messaging
from shop_orders.orders.models import Order


@dataclass(frozen=True)
class EventRecord:
    """An outbox row about the order: when it was written, when the broker confirmed it."""

    id: uuid.UUID
    type: str
    created_at: datetime
    published_at: datetime | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class StateRecord:
    """The order row (Orders) or the reservation row (Catalog)."""

    status: str
    reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ServiceRecords:
    service: Service
    checked_at: datetime  # that database's clock
    state: StateRecord | None
    events: tuple[EventRecord, ...]  # oldest first


@dataclass(frozen=True)
class _Tables:
    state: Table
    outbox: Table
    inbox: Table


_TABLES = {
    Service.ORDERS: _Tables(Order.__table__, orders_messaging.OUTBOX, orders_messaging.INBOX),  # type: ignore[arg-type]
    Service.CATALOG: _Tables(
        Reservation.__table__,  # type: ignore[arg-type]
        catalog_messaging.OUTBOX,
        catalog_messaging.INBOX,
    ),
}


async def read_records(
    conn: AsyncConnection, service: Service, order_id: uuid.UUID
) -> ServiceRecords:
    tables = _TABLES[service]
    state = tables.state
    key = state.c.id if service is Service.ORDERS else state.c.order_id
    reason: ColumnElement[Any] = state.c.status_reason if service is Service.ORDERS else null()
    row = (
        await conn.execute(
            select(state.c.status, reason, state.c.created_at, state.c.updated_at).where(
                key == order_id
            )
        )
    ).first()
    outbox = tables.outbox
    events = await conn.execute(
        select(
            outbox.c.id,
            outbox.c.type,
            outbox.c.created_at,
            outbox.c.published_at,
            outbox.c.attempts,
            outbox.c.last_error,
        )
        .where(outbox.c.subject == str(order_id))
        .order_by(outbox.c.seq)
    )
    return ServiceRecords(
        service=service,
        checked_at=(await conn.execute(select(func.now()))).scalar_one(),
        state=None if row is None else StateRecord(*row),
        events=tuple(EventRecord(*event) for event in events),
    )


async def read_receipts(
    conn: AsyncConnection, service: Service, event_ids: Collection[uuid.UUID]
) -> Mapping[uuid.UUID, datetime]:
    """When `service` received each of these events (absent: not received, or forgotten)."""
    if not event_ids:
        return {}
    inbox = _TABLES[service].inbox
    rows = await conn.execute(
        select(inbox.c.event_id, inbox.c.received_at).where(inbox.c.event_id.in_(event_ids))
    )
    return {row.event_id: row.received_at for row in rows}
