"""Retention: delete published outbox rows and old inbox records (a worker runs it hourly)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shop_common.messaging.inbox import delete_received
from shop_common.messaging.outbox import delete_published

log = logging.getLogger(__name__)


class RetentionSweeper:
    """Inbox records must outlive any duplicate that can still arrive, including parked
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
    ) -> None:
        self.engine = engine
        self.outbox, self.inbox = outbox, inbox
        self.outbox_for, self.inbox_for = outbox_for, inbox_for

    async def sweep_once(self) -> tuple[int, int]:
        async with self.engine.begin() as conn:
            published = await delete_published(conn, self.outbox, self.outbox_for)
            received = await delete_received(conn, self.inbox, self.inbox_for)
        if published or received:
            log.info("retention removed %d outbox and %d inbox rows", published, received)
        return published, received
