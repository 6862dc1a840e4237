"""Small asyncio helpers shared by the relay, the consumer and the worker."""

from __future__ import annotations

import asyncio


async def wait_any(*events: asyncio.Event, max_wait: float | None = None) -> None:
    """Return when any event is set or `max_wait` seconds pass, whichever comes first."""
    if any(event.is_set() for event in events):
        return
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=max_wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
