"""The one housekeeping loop every worker uses: run a task every so often until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """A worker `Component`: `task()` now and then every `interval` seconds until stopped.

    A failed round (the database away, say) is logged and tried again next round: a
    housekeeping task never takes the worker down.
    """

    def __init__(
        self, name: str, task: Callable[[], Awaitable[object]], *, interval: float
    ) -> None:
        self.name = name
        self.task = task
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.task()
            except Exception as exc:
                log.warning("%s failed: %r", self.name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    def __repr__(self) -> str:
        return f"Periodic({self.name!r}, every {self.interval:g}s)"
