"""What `make up` left running, recorded in `<run dir>/stack.json`, so `make down` can stop it.

`make up` records its own pid (the supervisor) and each process's pid once they are started;
`make up DETACH=1` records no supervisor, since it exits once the stack is ready. A pid is
only signalled while it still runs the command that was recorded (pids are reused).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

STATE_FILE = "stack.json"


@dataclass(frozen=True)
class RecordedProcess:
    name: str
    pid: int
    # A word of its command line (`catalog-api`, `shop-dev`): the pid is ours while it matches.
    marker: str

    def alive(self) -> bool:
        command = running_command(self.pid)
        return command is not None and self.marker in command


@dataclass
class RunState:
    run_dir: Path
    supervisor: RecordedProcess | None = None
    processes: list[RecordedProcess] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def path(self) -> Path:
        return self.run_dir / STATE_FILE

    @classmethod
    def load(cls, run_dir: Path) -> RunState | None:
        path = run_dir / STATE_FILE
        try:
            data = json.loads(path.read_text())
            return cls(
                run_dir=run_dir,
                supervisor=RecordedProcess(**data["supervisor"]) if data["supervisor"] else None,
                processes=[RecordedProcess(**p) for p in data["processes"]],
                started_at=str(data["started_at"]),
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: nothing we could stop by it
            return None

    def save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "supervisor": asdict(self.supervisor) if self.supervisor else None,
            "processes": [asdict(p) for p in self.processes],
            "started_at": self.started_at,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def alive(self) -> list[RecordedProcess]:
        everyone = [self.supervisor, *self.processes] if self.supervisor else self.processes
        return [p for p in everyone if p.alive()]


def running_command(pid: int) -> str | None:
    """The command line `pid` runs, or None when no such process runs (or it is a zombie)."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():  # Linux
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return None
            return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            return None
    try:  # macOS and other Unixes
        result = subprocess.run(  # noqa: S603
            ["ps", "-o", "stat=,command=", "-p", str(pid)],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    state, _, command = result.stdout.strip().partition(" ")
    if result.returncode != 0 or not state or state.startswith("Z"):
        return None
    return command


def stop_recorded(
    state: RunState, say: Callable[[str], None], *, supervisor_grace: float = 40, grace: float = 15
) -> list[str]:
    """Stop what `state` records; returns the names of the processes that were running.

    A running supervisor (`make up` in the foreground or with `&`) is asked to stop (SIGTERM):
    it stops its processes in order. Whatever still runs then gets SIGTERM, and SIGKILL after
    `grace` seconds.
    """
    stopped = [p.name for p in state.alive()]
    supervisor = state.supervisor
    if supervisor is not None and supervisor.alive():
        say(f"asking make up (pid {supervisor.pid}) to stop its processes")
        os.kill(supervisor.pid, signal.SIGTERM)
        _wait_gone([supervisor, *state.processes], supervisor_grace)
    running = [p for p in state.processes if p.alive()]
    for process in running:
        say(f"stopping {process.name} (pid {process.pid})")
        _signal_group(process.pid, signal.SIGTERM)
    _wait_gone(running, grace)
    for process in running:
        if process.alive():
            say(f"{process.name} (pid {process.pid}) did not stop in {grace:g}s: killing it")
            _signal_group(process.pid, signal.SIGKILL)
    _wait_gone(running, 5)
    state.clear()
    return stopped


def _signal_group(pid: int, signum: int) -> None:
    """Each process leads its own session (see Supervisor.start): signal it and its children."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, signum)


def _wait_gone(processes: list[RecordedProcess], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(p.alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
