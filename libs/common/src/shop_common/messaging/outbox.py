"""Transactional outbox: an event is a row written in the same transaction as its cause."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shop_common.events import EventPayload, payload_model
from shop_common.messaging.envelope import Envelope
from shop_common.tracing import TRACEPARENT_HEADER, TRACESTATE_HEADER, current_trace_headers


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """The outbox table, in `metadata`'s schema; create it from the service's migrations.

    `seq` orders rows for the relay (oldest first); it is never used as a high-water mark,
    because sequence values are taken at insert and committed in any order.
    """
    return Table(
        name,
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
        Column("source", Text, nullable=False),
        Column("type", Text, nullable=False),
        Column("subject", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text, nullable=True),
        # A row that failed waits until then before the next try (per-row backoff).
        Column("available_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index(f"ix_{name}_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
        Index(f"ix_{name}_published_at", "published_at"),
    )


def notify_channel(table: Table) -> str:
    """The LISTEN/NOTIFY channel of an outbox table: `<schema>_<table>`, e.g. `orders_outbox`."""
    return f"{table.schema}_{table.name}" if table.schema else table.name


# A session whose info holds this key (a set) is a unit of work that wakes this process's
# own relays itself after it commits: `enqueue` adds the outbox's channel to the set instead
# of sending a NOTIFY, when a relay for that channel runs in this process. The consumer does
# this for its handlers' events. NOTIFY is for relays in other processes: each one takes a
# database-wide lock at commit and is delivered to every listener.
WAKE_AFTER_COMMIT = "shop_common.messaging.wake_after_commit"
_LOCAL_RELAYS: dict[str, list[Callable[[], None]]] = {}


def register_local_relay(channel: str, wake: Callable[[], None]) -> Callable[[], None]:
    """A relay of this process publishes `channel`'s outbox; returns the unregistering call."""
    _LOCAL_RELAYS.setdefault(channel, []).append(wake)

    def unregister() -> None:
        wakes = _LOCAL_RELAYS.get(channel, [])
        if wake in wakes:
            wakes.remove(wake)
        if not wakes:
            _LOCAL_RELAYS.pop(channel, None)

    return unregister


def wake_local_relays(channels: Iterable[str]) -> None:
    """Wake this process's relays of `channels` (call it after the commit that wrote them)."""
    for channel in channels:
        for wake in _LOCAL_RELAYS.get(channel, ()):
            wake()


class Outbox:
    """Writes events of one service (`service` gives the CloudEvents source `/<service>`)."""

    def __init__(self, table: Table, *, service: str) -> None:
        self.table = table
        self.source = f"/{service}"
        self.channel = notify_channel(table)
        # Insert and NOTIFY in one round trip (Postgres folds a transaction's repeated
        # NOTIFYs into one), built once: composing it per event cost a cache-key walk.
        columns = ("id", "source", "type", "subject", "payload", "headers", "created_at")
        row = {name: bindparam(name, type_=table.c[name].type) for name in columns}
        self._insert = insert(table).values(row)
        enqueued = self._insert.returning(table.c.id).cte("enqueued")
        self._enqueue = select(func.pg_notify(self.channel, "")).select_from(enqueued)

    async def enqueue(
        self,
        session: AsyncSession,
        event_type: str,
        payload: EventPayload,
        *,
        subject: str | uuid.UUID,
        event_id: uuid.UUID | None = None,
        traceparent: str | None = None,
    ) -> Envelope:
        """Add an event inside the session's current transaction; returns its envelope.

        Commits or rolls back with the caller's state change. The NOTIFY that wakes the
        relay is transactional too: Postgres delivers it only on commit. In a session that
        wakes its own process's relay after commit (`WAKE_AFTER_COMMIT`), no NOTIFY is sent.
        """
        envelope, values = self.prepare(
            event_type, payload, subject=subject, event_id=event_id, traceparent=traceparent
        )
        wakes = session.info.get(WAKE_AFTER_COMMIT)
        if wakes is not None and self.channel in _LOCAL_RELAYS:
            wakes.add(self.channel)
            await session.execute(self._insert, values)
        else:
            await session.execute(self._enqueue, values)
        return envelope

    def prepare(
        self,
        event_type: str,
        payload: EventPayload,
        *,
        subject: str | uuid.UUID,
        event_id: uuid.UUID | None = None,
        traceparent: str | None = None,
    ) -> tuple[Envelope, dict[str, Any]]:
        """The envelope of an event and the outbox row that carries it, for a statement that
        writes the row itself alongside its state change (it must NOTIFY `self.channel`)."""
        model = payload_model(event_type)
        if type(payload) is not model:
            raise TypeError(f"{event_type} carries {model.__name__}, not {type(payload).__name__}")
        # The context this event is written in (the request's or the handled event's span):
        # the relay's publish continues it (shop_common.tracing).
        headers: dict[str, Any] = (
            {TRACEPARENT_HEADER: traceparent} if traceparent else current_trace_headers()
        )
        envelope = Envelope(
            id=event_id or uuid.uuid4(),
            source=self.source,
            type=str(event_type),
            subject=str(subject),
            time=datetime.now(UTC),
            data=payload.to_event_data(),
            traceparent=headers.get(TRACEPARENT_HEADER),
            tracestate=headers.get(TRACESTATE_HEADER),
        )
        values = {
            "id": envelope.id,
            "source": envelope.source,
            "type": envelope.type,
            "subject": envelope.subject,
            "payload": dict(envelope.data),
            "headers": headers,
            "created_at": envelope.time,
        }
        return envelope, values


async def delete_published(conn: AsyncConnection, table: Table, older_than: timedelta) -> int:
    """Retention: drop rows published more than `older_than` ago; returns how many."""
    result = await conn.execute(delete(table).where(table.c.published_at < func.now() - older_than))
    return result.rowcount
