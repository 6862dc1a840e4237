"""Start the stack's processes, wait until each is ready, and stop them all (SIGTERM, then kill)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from shop_dev.stack import DevStackError, Process


def console_script(name: str) -> str:
    """The workspace's console script `name`: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name) or name


@dataclass
class _Running:
    process: Process
    popen: subprocess.Popen[bytes]
    log: IO[bytes]


class Supervisor:
    """Owns the processes it starts; each one's output goes to `<log_dir>/<name>.log`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._running: dict[str, _Running] = {}

    def start(self, process: Process) -> None:
        self.log_dir.mkdir(exist_ok=True)
        log = (self.log_dir / f"{process.name}.log").open("ab")
        popen = subprocess.Popen(  # noqa: S603
            [console_script(process.name)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **process.env},
            # Its own session: Ctrl-C reaches only us, and we stop the children in order.
            start_new_session=True,
        )
        self._running[process.name] = _Running(process, popen, log)

    def wait_ready(
        self, processes: Sequence[Process], *, timeout: float, stopping: Callable[[], bool]
    ) -> None:
        """Return once every process answers its ready URL with 200, or when `stopping()`."""
        deadline = time.monotonic() + timeout
        pending = list(processes)
        while pending and not stopping():
            for process in list(pending):
                if (code := self._running[process.name].popen.poll()) is not None:
                    raise DevStackError(
                        f"{process.name} exited early ({code}); see {self._log(process)}"
                    )
                try:
                    if httpx.get(process.ready_url, timeout=1).status_code == 200:
                        pending.remove(process)
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                raise DevStackError(f"not ready after {timeout:g}s: {names}; see {self.log_dir}/")
            time.sleep(0.3)

    def first_exited(self) -> tuple[Process, int] | None:
        for running in self._running.values():
            if (code := running.popen.poll()) is not None:
                return running.process, code
        return None

    def stop_all(self, grace: float = 15) -> None:
        """SIGTERM to every process still running; kill those not gone after `grace` seconds."""
        for running in self._running.values():
            if running.popen.poll() is None:
                running.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for running in self._running.values():
            try:
                running.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                running.popen.kill()
                running.popen.wait()
            running.log.close()
        self._running.clear()

    def _log(self, process: Process) -> Path:
        return self.log_dir / f"{process.name}.log"
