"""Child processes of a bench run: started in their own sessions, always stopped on exit."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

# Every process group we started and have not reaped yet. atexit kills what is left, so
# not even a crash of the runner leaves a server (or a wrk) running.
_LIVE: set[int] = set()


def _kill_leftovers() -> None:
    for pgid in list(_LIVE):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        _LIVE.discard(pgid)


atexit.register(_kill_leftovers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Service:
    """One long-running server process (ours or the baseline) with a readiness URL."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], ready_url: str, log: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.ready_url = ready_url
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.stopped = False  # by us, on purpose (not a crash)

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            # A session of its own: Ctrl-C in the terminal reaches the runner only, which
            # then stops everything in order instead of every process dying at once.
            self.popen = subprocess.Popen(  # noqa: S603
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE.add(self.popen.pid)

    async def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(f"{self.name} exited early:\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.ready_url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {within:.0f}s:\n{self.tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (graceful), then SIGKILL of the whole process group."""
        if self.popen is None:
            return
        self.stopped = True
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        _LIVE.discard(self.popen.pid)

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


async def run_tool(argv: list[str], env: dict[str, str], within: float) -> str:
    """Run a load tool to completion (killed after `within` s); its stdout, or raise."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    _LIVE.add(process.pid)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), within)
    except BaseException:  # timeout, Ctrl-C, cancellation: the tool must not outlive us
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(process.wait(), 5)
        raise
    finally:
        _LIVE.discard(process.pid)
    if process.returncode != 0:
        raise RuntimeError(
            f"{argv[0]} exited {process.returncode}: {stderr.decode(errors='replace')[-2000:]}"
        )
    return stdout.decode(errors="replace")
