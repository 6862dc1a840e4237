"""The processes' JSON logs as one readable stream: `make up` after its banner, and `make logs`.

Each process keeps writing JSON lines to `<run dir>/<process>.log` (what an operator's log
pipeline reads); this module follows those files and prints one line per record:

    22:10:03.123 catalog-worker INFO  consumer catalog.events: handled orders.… trace=4bf92f35

with the request id (`req=`) and trace id (`trace=`) when the record has them, colour on a
terminal (none when `NO_COLOR` is set or the output is a file or pipe), and any lines that
are not JSON (a crash before logging was set up) passed through as they are.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_LEVELS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[1;31m",
    "CRITICAL": "\x1b[1;31m",
}
_PROCESSES = {
    "catalog-api": "\x1b[36m",
    "catalog-worker": "\x1b[34m",
    "orders-api": "\x1b[35m",
    "orders-worker": "\x1b[33m",
}
_OTHER = ("\x1b[36m", "\x1b[35m", "\x1b[34m", "\x1b[33m")
# The fields every record has (observability.configure_logging); anything else is shown.
_KNOWN = {"time", "level", "logger", "message", "service", "request_id", "trace_id", "span_id"}
_KNOWN |= {"exc_info"}
_KNOWN |= {"color_message", "taskName"}  # uvicorn's coloured copy of the message; asyncio's task
_ID_CHARS = 8  # enough to tell requests apart on screen; the JSON logs have the whole id


def write_stdout(text: str) -> None:
    """Print `text`; once the reader is gone (`make up | less`, then q), print nothing more.

    A closed pipe must never stop `make up` halfway through stopping its processes.
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # also keeps the interpreter's exit quiet
        os.close(devnull)


def colour_wanted(stream: IO[str]) -> bool:
    """Colour for a terminal; never with `NO_COLOR` or `TERM=dumb`; always with `FORCE_COLOR`."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


@dataclass(frozen=True)
class Renderer:
    colour: bool
    name_width: int = 14

    def line(self, process: str, raw: str) -> str:
        """One log line as a person reads it; `raw` without its newline."""
        record = _json_object(raw)
        name = self._paint(process.ljust(self.name_width), _process_colour(process))
        if record is None:
            return f"{' ' * 12} {name} {raw}"
        level = str(record.get("level", "")).upper()
        shown = {"WARNING": "WARN", "CRITICAL": "CRIT"}.get(level, level)
        message = str(record.get("message", ""))
        ids = [
            f"{label}={str(value)[:_ID_CHARS]}"
            for label, key in (("req", "request_id"), ("trace", "trace_id"))
            if (value := record.get(key))
        ]
        extras = [f"{k}={v}" for k, v in record.items() if k not in _KNOWN and v is not None]
        tail = "  ".join(ids + extras)
        text = (
            f"{self._paint(_clock(record.get('time')), _DIM)} {name} "
            f"{self._paint(shown.ljust(5), _LEVELS.get(level, ''))} {message}"
        )
        if tail:
            text += "  " + self._paint(tail, _DIM)
        if exc := record.get("exc_info"):
            indented = "\n".join(f"{' ' * 13}{row}" for row in str(exc).splitlines())
            text += "\n" + self._paint(indented, _DIM)
        return text

    def _paint(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.colour and code else text


def _json_object(raw: str) -> dict[str, Any] | None:
    if not raw.startswith("{"):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _clock(value: object) -> str:
    """`2025-12-01 22:10:03,123` (logging's asctime) as `22:10:03.123`."""
    text = str(value or "")
    return text[11:23].replace(",", ".") if len(text) >= 23 else text.ljust(12)


def _process_colour(process: str) -> str:
    return _PROCESSES.get(process) or _OTHER[sum(map(ord, process)) % len(_OTHER)]


def merge_key(raw: str) -> str:
    """What orders lines of several files: their time (sortable), '' when they have none."""
    record = _json_object(raw)
    return str(record.get("time", "")) if record else ""


def log_files(run_dir: Path) -> dict[str, Path]:
    """`<process>.log` files in `run_dir` by process name (not the previous run's `.log.1`)."""
    if not run_dir.is_dir():
        return {}
    return {path.stem: path for path in sorted(run_dir.glob("*.log"))}


@dataclass
class _Tail:
    path: Path
    offset: int
    inode: int
    partial: bytes = b""


class LogFollower:
    """Follows log files and passes their new lines, rendered, to `out` (one merged stream).

    A file that shrinks or is replaced (the next `make up` starts fresh files) is read again
    from its beginning; files that appear later are picked up by `discover`.
    """

    def __init__(
        self,
        out: Callable[[str], None],
        renderer: Renderer,
        discover: Callable[[], Mapping[str, Path]],
    ) -> None:
        self.out = out
        self.renderer = renderer
        self.discover = discover
        self._tails: dict[str, _Tail] = {}

    def start_at_end(self) -> None:
        """Show only what is written from now on."""
        for name, path in self.discover().items():
            self._tails[name] = _tail_at(path, end=True)

    def backlog(self, lines: int) -> None:
        """Print the last `lines` lines of every file (merged by time), then follow from there."""
        collected: list[tuple[str, int, str, str]] = []
        for name, path in self.discover().items():
            tail = _tail_at(path, end=True)
            self._tails[name] = tail
            for seq, raw in enumerate(_last_lines(path, tail.offset - len(tail.partial), lines)):
                collected.append((merge_key(raw), seq, name, raw))
        self._write(collected)

    def poll(self) -> int:
        """Print whatever the files gained since the last call; returns how many lines."""
        collected: list[tuple[str, int, str, str]] = []
        for name, path in self.discover().items():
            tail = self._tails.get(name)
            if tail is None:
                tail = self._tails[name] = _tail_at(path, end=False)
            last_key = ""
            for seq, raw in enumerate(_read_new(tail)):
                last_key = merge_key(raw) or last_key  # a traceback line sorts with its record
                collected.append((last_key, seq, name, raw))
        self._write(collected)
        return len(collected)

    def follow(self, stop: Callable[[], bool], interval: float = 0.2) -> None:
        while not stop():
            if not self.poll():
                time.sleep(interval)

    def _write(self, collected: Iterable[tuple[str, int, str, str]]) -> None:
        rows = sorted(collected, key=lambda row: row[0])  # stable: a file's order is kept
        if not rows:
            return
        self.out("".join(self.renderer.line(name, raw) + "\n" for _, _, name, raw in rows))


def _tail_at(path: Path, *, end: bool) -> _Tail:
    """Where to read `path` from: its start, or its end (keeping a half-written last line)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return _Tail(path, 0, 0)
    if not end or stat.st_size == 0:
        return _Tail(path, 0, stat.st_ino)
    with path.open("rb") as f:
        f.seek(max(0, stat.st_size - 64 * 1024))
        data = f.read(stat.st_size - f.tell())
    partial = data[data.rfind(b"\n") + 1 :]
    return _Tail(path, stat.st_size, stat.st_ino, partial)


def _read_new(tail: _Tail) -> list[str]:
    try:
        stat = tail.path.stat()
    except FileNotFoundError:
        return []
    if stat.st_ino != tail.inode or stat.st_size < tail.offset:  # replaced or truncated
        tail.inode, tail.offset, tail.partial = stat.st_ino, 0, b""
    if stat.st_size == tail.offset:
        return []
    with tail.path.open("rb") as f:
        f.seek(tail.offset)
        chunk = f.read()
    tail.offset += len(chunk)
    data = tail.partial + chunk
    *complete, tail.partial = data.split(b"\n")
    return [line.decode("utf-8", "replace").rstrip("\r") for line in complete if line.strip()]


def _last_lines(path: Path, end: int, count: int) -> list[str]:
    if count <= 0 or end == 0:
        return []
    with path.open("rb") as f:
        f.seek(max(0, end - 256 * 1024))
        data = f.read(end - f.tell())
    lines = [line for line in data.split(b"\n") if line.strip()]
    return [line.decode("utf-8", "replace") for line in lines[-count:]]
