"""Worker: runs components until SIGTERM/SIGINT; one failure stops the rest gracefully."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from shop_common.messaging import Backoff
from shop_common.worker import Worker


class Idle:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.stopped_gracefully = False

    async def run(self, stop: asyncio.Event) -> None:
        self.started.set()
        await stop.wait()
        self.stopped_gracefully = True


class Broken:
    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("bug")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_every_component_gracefully(sig: signal.Signals) -> None:
    a, b = Idle(), Idle()
    worker = asyncio.create_task(Worker(a, b).run())
    await asyncio.wait_for(asyncio.gather(a.started.wait(), b.started.wait()), 5)
    os.kill(os.getpid(), sig)
    await asyncio.wait_for(worker, 5)
    assert a.stopped_gracefully
    assert b.stopped_gracefully
    # The handlers are gone again: the default SIGINT behaviour is back.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_a_failing_component_stops_the_others_and_raises() -> None:
    idle = Idle()
    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(Worker(idle, Broken()).run(handle_signals=False), 5)
    assert raised.group_contains(RuntimeError, match="bug")
    assert idle.stopped_gracefully


def test_backoff_is_bounded_and_jittered() -> None:
    backoff = Backoff(initial=0.1, maximum=2.0)
    delays = [backoff.next_delay() for _ in range(2000)]
    assert 0.05 <= delays[0] <= 0.1
    assert max(delays) <= 2.0
    assert min(delays[10:]) >= 1.0  # capped delays keep at least half of the cap
    assert len({round(d, 6) for d in delays[10:]}) > 100  # and are spread, not lockstep
    backoff.reset()
    assert backoff.next_delay() <= 0.1
