"""Run a service's relay and consumers together until SIGTERM/SIGINT, then stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from typing import Any, Protocol

import uvloop

from shop_common.runtime import freeze_startup_objects

log = logging.getLogger(__name__)


class Component(Protocol):
    """Anything with a stoppable `run`: `OutboxRelay`, `EventConsumer`, `Periodic`, or your own."""

    async def run(self, stop: asyncio.Event) -> None: ...


class Worker:
    """Runs components side by side; one `stop` event ends them all.

    Components handle outages themselves (they reconnect); if one fails anyway, the
    others are asked to stop gracefully and the error is raised, so the process exits
    non-zero and the orchestrator restarts it.
    """

    def __init__(self, *components: Component) -> None:
        if not components:
            raise ValueError("a worker needs at least one component")
        self.components = components

    async def run(self, stop: asyncio.Event | None = None, *, handle_signals: bool = True) -> None:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        try:
            results = await asyncio.gather(
                *(self._run_one(component, stop) for component in self.components),
                return_exceptions=True,
            )
        finally:
            for sig in signals:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
        errors = [result for result in results if isinstance(result, Exception)]
        if errors:
            raise ExceptionGroup("worker component failed", errors)

    @staticmethod
    async def _run_one(component: Component, stop: asyncio.Event) -> None:
        try:
            await component.run(stop)
        except Exception:
            log.exception("worker component %r failed; stopping the others", component)
            raise
        finally:
            stop.set()


def run_process(main: Coroutine[Any, Any, None]) -> None:
    """Run a worker process's main coroutine to its end on uvloop (the APIs get uvloop from
    uvicorn): on asyncio's own loop, socket writes and the selector were about a third of
    the workers' CPU."""
    freeze_startup_objects()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)
