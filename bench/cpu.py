"""CPU seconds per process group over a window, from /proc/<pid>/stat (utime + stime).

Groups: each of our processes (its whole process group), the PostgreSQL backends serving
the bench database, every process of the PostgreSQL and RabbitMQ users (shared with anything
else running on this machine), and the machine as a whole (/proc/stat) so a report can say
how much CPU went to other work during the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

TICK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.5


@dataclass(frozen=True)
class Stat:
    pgrp: int
    uid: int
    cpu_s: float


def read_stat(pid: int) -> Stat | None:
    try:
        raw = open(f"/proc/{pid}/stat", "rb").read().decode(errors="replace")  # noqa: SIM115
        uid = os.stat(f"/proc/{pid}").st_uid
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return Stat(pgrp=int(fields[2]), uid=uid, cpu_s=(int(fields[11]) + int(fields[12])) / TICK)


def all_stats() -> dict[int, Stat]:
    stats: dict[int, Stat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := read_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    return stats


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return (total - idle) / TICK, total / TICK


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def uid_of(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


@dataclass
class _Group:
    """A set of pids decided anew at every poll; a pid first seen after the start was born
    during the window, so all of its CPU counts (it started from zero)."""

    select: Callable[[dict[int, Stat]], set[int]]
    start: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)

    def observe(self, stats: dict[int, Stat], pids: set[int], *, first: bool) -> None:
        for pid in pids:
            if pid in stats:
                if first:
                    self.start[pid] = stats[pid].cpu_s
                self.last[pid] = stats[pid].cpu_s

    def seconds(self) -> float:
        return sum(v - self.start.get(pid, 0.0) for pid, v in self.last.items())


class CpuMeter:
    """Usage: `async with CpuMeter(groups, database) as meter: ...`; then `meter.result`."""

    def __init__(self, process_groups: dict[str, int], database: str, admin_dsn: str) -> None:
        self.database = database
        self.admin_dsn = admin_dsn
        self.groups: dict[str, _Group] = {}
        for name, pgid in process_groups.items():
            self.groups[name] = _Group(lambda s, g=pgid: {p for p, st in s.items() if st.pgrp == g})
        self._backends: set[int] = set()
        self.groups["postgres (bench db backends)"] = _Group(lambda s: self._backends & s.keys())
        for label, user in (("postgres (all processes)", "postgres"), ("rabbitmq", "rabbitmq")):
            uid = uid_of(user)
            if uid is not None:
                self.groups[label] = _Group(
                    lambda s, u=uid: {p for p, st in s.items() if st.uid == u}
                )
        self.result: dict[str, float] = {}
        self.wall_s = 0.0
        self.machine_busy_s = 0.0
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    async def _refresh_backends(self) -> None:
        assert self._conn is not None
        rows = await self._conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database
        )
        self._backends = {r["pid"] for r in rows}

    def _observe(self, *, first: bool) -> None:
        stats = all_stats()
        for group in self.groups.values():
            group.observe(stats, group.select(stats), first=first)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            await self._refresh_backends()
            self._observe(first=False)

    async def __aenter__(self) -> CpuMeter:
        # The meter's own connection goes to another database, so it is not counted.
        self._conn = await asyncpg.connect(self.admin_dsn)
        await self._refresh_backends()
        self._t0 = time.monotonic()
        self._busy0, _ = machine_busy_s()
        self._self0 = _self_cpu()
        self._observe(first=True)
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        assert self._conn is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        try:
            await self._refresh_backends()
            self._observe(first=False)
        finally:
            await self._conn.close()
        self.wall_s = time.monotonic() - self._t0
        self.machine_busy_s = machine_busy_s()[0] - self._busy0
        self.result = {name: group.seconds() for name, group in self.groups.items()}
        self.result["bench runner"] = _self_cpu() - self._self0
