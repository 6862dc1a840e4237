"""Retention deletes only what is old enough: published outbox rows and inbox records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, insert, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from shop_common.messaging import RetentionSweeper, inbox_table, outbox_table

pytestmark = pytest.mark.integration


async def test_sweep_removes_only_old_published_and_old_received(pg_admin_url: str) -> None:
    schema = f"ret_{uuid.uuid4().hex[:8]}"
    metadata = MetaData(schema=schema)
    outbox, inbox = outbox_table(metadata), inbox_table(metadata)
    engine = create_async_engine(pg_admin_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(metadata.create_all)
            rows = [
                {
                    "id": uuid.uuid4(),
                    "source": "/t",
                    "type": "t",
                    "subject": "s",
                    "payload": {},
                    "created_at": datetime.now(UTC),
                }
                for _ in range(3)
            ]
            await conn.execute(insert(outbox), rows)
            old, recent, unsent = (r["id"] for r in rows)
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == old)
                .values(published_at=text("now() - interval '8 days'"))
            )
            await conn.execute(
                update(outbox).where(outbox.c.id == recent).values(published_at=text("now()"))
            )
            stale, fresh = uuid.uuid4(), uuid.uuid4()
            await conn.execute(insert(inbox).values(event_id=stale, type="t", source="/t"))
            await conn.execute(insert(inbox).values(event_id=fresh, type="t", source="/t"))
            await conn.execute(
                update(inbox)
                .where(inbox.c.event_id == stale)
                .values(received_at=text("now() - interval '31 days'"))
            )
        sweeper = RetentionSweeper(
            engine,
            outbox=outbox,
            inbox=inbox,
            outbox_for=timedelta(days=7),
            inbox_for=timedelta(days=30),
        )
        assert await sweeper.sweep_once() == (1, 1)
        async with engine.connect() as conn:
            kept = set((await conn.execute(select(outbox.c.id))).scalars())
            remembered = set((await conn.execute(select(inbox.c.event_id))).scalars())
        assert kept == {recent, unsent}
        assert remembered == {fresh}
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()
