"""Retention: published outbox rows and old inbox records are deleted on a schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_common.messaging.inbox import delete_received
from shop_common.messaging.outbox import delete_published

log = logging.getLogger(__name__)


class RetentionSweeper:
    """A worker `Component`: sweeps every `interval` seconds until stopped.

    Inbox records must outlive any duplicate that can still arrive, including parked
    messages an operator replays; keep `inbox_for` well above the parking-queue review time.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        outbox: Table,
        inbox: Table,
        outbox_for: timedelta,
        inbox_for: timedelta,
        interval: float = 3600.0,
    ) -> None:
        self.engine = engine
        self.outbox, self.inbox = outbox, inbox
        self.outbox_for, self.inbox_for = outbox_for, inbox_for
        self.interval = interval

    async def sweep_once(self) -> tuple[int, int]:
        async with self.engine.begin() as conn:
            published = await delete_published(conn, self.outbox, self.outbox_for)
            received = await delete_received(conn, self.inbox, self.inbox_for)
        return published, received

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                published, received = await self.sweep_once()
                if published or received:
                    log.info("retention removed %d outbox and %d inbox rows", published, received)
            except Exception as exc:  # the database may be away; next round tries again
                log.warning("retention sweep failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
