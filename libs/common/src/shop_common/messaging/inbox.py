"""Inbox: the ids of events already handled, written in the handler's own transaction."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta

from sqlalchemy import Column, DateTime, Index, MetaData, Table, Text, Uuid, delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from shop_common.messaging.envelope import Envelope


def inbox_table(metadata: MetaData, name: str = "inbox") -> Table:
    """The inbox table, in `metadata`'s schema; create it from the service's migrations."""
    return Table(
        name,
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("type", Text, nullable=False),
        Column("source", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # For the retention DELETE (`delete_received`), which otherwise reads the whole table.
        Index(f"ix_{name}_received_at", "received_at"),
    )


async def record_once(session: AsyncSession, table: Table, envelope: Envelope) -> bool:
    """Insert the event id; False if it was already there (a duplicate: skip the effect).

    A concurrent delivery of the same id waits on the other transaction's uncommitted row
    and then sees the conflict, so two copies in flight still produce one effect.
    """
    values = {"event_id": envelope.id, "type": envelope.type, "source": envelope.source}
    result = await session.execute(_record_statement(table), values)
    return result.first() is not None


@functools.cache
def _record_statement(table: Table) -> ReturningInsert[tuple[uuid.UUID]]:
    # Built once per table: building it per event cost a cache-key walk every time.
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.event_id])
        .returning(table.c.event_id)
    )


async def delete_received(conn: AsyncConnection, table: Table, older_than: timedelta) -> int:
    """Retention: forget event ids received more than `older_than` ago; returns how many.

    Only safe beyond the longest time a duplicate can still arrive (relay retries, parked
    messages an operator may replay): pick days, not minutes.
    """
    result = await conn.execute(delete(table).where(table.c.received_at < func.now() - older_than))
    return result.rowcount
