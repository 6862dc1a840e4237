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

from shop_dev.console import Renderer
from shop_dev.errors import DevStackError
from shop_dev.stack import Process

STILL_WAITING_EVERY_SECONDS = 10.0
TAIL_LINES = 15


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
    """Owns the processes it starts; each one's output goes to `<log_dir>/<name>.log`.

    The previous run's log is kept as `<name>.log.1`.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._running: dict[str, _Running] = {}

    def start(self, process: Process) -> int:
        """Start `process`; returns its pid."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_path(process)
        if path.exists():
            path.replace(path.with_name(path.name + ".1"))
        log = path.open("ab")
        popen = subprocess.Popen(  # noqa: S603
            [console_script(process.name)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **process.env},
            # Its own session: Ctrl-C reaches only us, we stop the children in order, and
            # `make up DETACH=1` can leave them running when it exits.
            start_new_session=True,
        )
        self._running[process.name] = _Running(process, popen, log)
        return popen.pid

    def wait_ready(
        self,
        processes: Sequence[Process],
        *,
        timeout: float,
        stopping: Callable[[], bool],
        say: Callable[[str], None],
    ) -> None:
        """Return once every process answers its ready URL with 200, or when `stopping()`.

        Says when each one is ready and, every few seconds, what the others still answer.
        """
        started = time.monotonic()
        deadline = started + timeout
        next_report = started + STILL_WAITING_EVERY_SECONDS
        pending = list(processes)
        last: dict[str, str] = {p.name: "no answer yet" for p in pending}
        while pending and not stopping():
            for process in list(pending):
                if (code := self._running[process.name].popen.poll()) is not None:
                    raise DevStackError(self.exit_report(process, code, "exited while starting"))
                try:
                    response = httpx.get(process.ready_url, timeout=1)
                except httpx.HTTPError as exc:
                    last[process.name] = f"{type(exc).__name__}"
                    continue
                if response.status_code == 200:
                    pending.remove(process)
                    say(f"    {process.name} ready ({time.monotonic() - started:.1f}s)")
                else:
                    last[process.name] = f"{response.status_code} {response.text[:200]}"
            now = time.monotonic()
            if pending and now > deadline:
                waiting = "; ".join(f"{p.name} ({p.ready_url}: {last[p.name]})" for p in pending)
                raise DevStackError(
                    f"not ready after {timeout:g}s: {waiting}. See {self.log_dir}/<process>.log"
                )
            if pending and now > next_report:
                next_report = now + STILL_WAITING_EVERY_SECONDS
                for p in pending:
                    say(f"    still waiting for {p.name}: {p.ready_url} says {last[p.name]}")
            time.sleep(0.2)

    def pids(self) -> dict[str, int]:
        return {name: running.popen.pid for name, running in self._running.items()}

    def first_exited(self) -> tuple[Process, int] | None:
        for running in self._running.values():
            if (code := running.popen.poll()) is not None:
                return running.process, code
        return None

    def exit_report(self, process: Process, code: int, what: str) -> str:
        """`process` stopped by itself: the last lines of its log, and a hint if we know one."""
        path = self.log_path(process)
        try:
            lines = path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        except OSError:
            lines = []
        renderer = Renderer(colour=False)
        shown = "\n".join("    " + renderer.line(process.name, line) for line in lines)
        report = f"{process.name} {what} (exit code {code}). The end of {path}:\n{shown}"
        if any("address already in use" in line.lower() for line in lines):
            report += (
                "\n  Its port is taken by another process: stop that, or pick another port "
                "(see the README's table of settings, e.g. `make up CATALOG_PORT=18001`)."
            )
        return report

    def detach(self) -> None:
        """Leave the processes running (`make up DETACH=1`); only close our copies of the logs."""
        for running in self._running.values():
            running.log.close()
        self._running.clear()

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

    def log_path(self, process: Process) -> Path:
        return self.log_dir / f"{process.name}.log"
