"""The fault schedule: which fault, on what, for how long and after how long a pause.

A seed fixes the schedule: rounds in which every kind of fault happens once, in a shuffled
order, with drawn pauses and durations. Faults never overlap; each one's phase lasts from
its start until `RECOVERY_SECONDS` after it ended, so answers a client gets while the system
recovers are counted with the fault that caused them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tests.chaos.clients import PhaseClock
from tests.chaos.stack import PROCESSES, ChaosStack

RECOVERY_SECONDS = 1.0


@dataclass(frozen=True)
class Fault:
    kind: str  # kill | freeze | drop-connections | broker-restart | terminate-backends
    targets: tuple[str, ...] = ()
    hold: float = 0.0  # seconds down (kill, broker-restart) or frozen (freeze)
    pause: float = 0.0  # steady seconds before it

    @property
    def label(self) -> str:
        return " ".join((self.kind, "+".join(self.targets))).strip()


@dataclass(frozen=True)
class Injected:
    fault: Fault
    started: float
    took: float
    note: str


def plan(seed: int, *, broker_restarts: bool, compact: bool = False) -> Iterator[list[Fault]]:
    """Endless rounds of faults; the same seed gives the same rounds.

    A round kills every process once (each alone; `compact`: both workers at once, then both
    APIs), freezes Catalog (its API, its worker or both; `compact`: both), drops the vhost's
    broker connections, terminates the services' database connections and, when the broker
    is our own, restarts its app. `compact` rounds are shorter, for the bounded test.
    """
    rng = random.Random(seed)
    apis, workers = ("catalog-api", "orders-api"), ("catalog-worker", "orders-worker")
    pauses = (0.5, 1.5) if compact else (1.5, 3.0)
    while True:
        kills: list[tuple[str, ...]] = [workers, apis] if compact else [(n,) for n in PROCESSES]
        frozen: tuple[str, ...] = (
            ("catalog-api", "catalog-worker")
            if compact
            else rng.choice(
                [("catalog-api",), ("catalog-worker",), ("catalog-api", "catalog-worker")]
            )
        )
        kinds: list[tuple[str, tuple[str, ...]]] = [("kill", targets) for targets in kills]
        kinds += [("freeze", frozen), ("drop-connections", ()), ("terminate-backends", ())]
        if broker_restarts:
            kinds.append(("broker-restart", ()))
        rng.shuffle(kinds)
        yield [
            Fault(
                kind, targets, hold=_hold(rng, kind, compact), pause=round(rng.uniform(*pauses), 1)
            )
            for kind, targets in kinds
        ]


def _hold(rng: random.Random, kind: str, compact: bool) -> float:
    holds = {
        "kill": (0.0, 0.5) if compact else (0.0, 3.0),
        "freeze": (3.0, 4.0) if compact else (3.0, 10.0),
        "broker-restart": (1.0, 3.0) if compact else (2.0, 8.0),
    }
    low, high = holds.get(kind, (0.0, 0.0))
    return round(rng.uniform(low, high), 1)


class FaultRunner:
    """Injects faults one after the other and labels the phase clock while each lasts."""

    def __init__(
        self, stack: ChaosStack, phases: PhaseClock, say: Callable[[str], None] | None = None
    ) -> None:
        self.stack = stack
        self.phases = phases
        self.say = say
        self.injected: list[Injected] = []

    async def run(self, rounds: Iterator[list[Fault]], *, count: int | None, until: float) -> None:
        """`count` rounds, or rounds until `until` (monotonic): then every process runs again.

        After an error or a cancellation nothing is healed: the stack is being torn down.
        """
        try:
            await self._run(rounds, count=count, until=until)
        finally:
            self.phases.current = "steady"
        await self.heal()

    async def _run(self, rounds: Iterator[list[Fault]], *, count: int | None, until: float) -> None:
        for done, faults in enumerate(rounds):
            if count is not None and done >= count:
                return
            for fault in faults:
                if count is None and time.monotonic() > until:
                    return
                await asyncio.sleep(fault.pause)
                await self.inject(fault)

    async def inject(self, fault: Fault) -> None:
        started = time.monotonic()
        self.phases.current = fault.label
        note = await self._apply(fault)
        injected = Injected(fault, started - self.phases.started, time.monotonic() - started, note)
        self.injected.append(injected)
        if self.say is not None:
            self.say(f"{injected.started:7.1f}s  {fault.label:<36} {note}")
        await asyncio.sleep(RECOVERY_SECONDS)
        self.phases.current = "steady"

    async def _apply(self, fault: Fault) -> str:
        stack = self.stack
        if fault.kind == "kill":
            began = time.monotonic()
            await asyncio.gather(
                *(stack.restart(name, down_seconds=fault.hold) for name in fault.targets)
            )
            return f"SIGKILL, down {fault.hold:.1f}s, ready after {time.monotonic() - began:.1f}s"
        if fault.kind == "freeze":
            try:
                for name in fault.targets:
                    stack.processes[name].freeze()
                await asyncio.sleep(fault.hold)
            finally:
                for name in fault.targets:
                    stack.processes[name].thaw()
            return f"SIGSTOP for {fault.hold:.1f}s, then SIGCONT"
        if fault.kind == "drop-connections":
            await asyncio.to_thread(stack.broker.close_connections, stack.vhost, "chaos fault")
            return f"rabbitmqctl close_all_connections -p {stack.vhost}"
        if fault.kind == "broker-restart":
            await asyncio.to_thread(stack.broker.restart_app, fault.hold)
            return f"stop_app, {fault.hold:.1f}s down, start_app"
        if fault.kind == "terminate-backends":
            return f"pg_terminate_backend: {await stack.terminate_backends()} connections"
        raise ValueError(f"unknown fault {fault.kind!r}")

    async def heal(self) -> None:
        """After the schedule (or an error in it): nothing frozen, every process up."""
        for process in self.stack.processes.values():
            process.thaw()
        if self.stack.broker.can_restart:
            with contextlib.suppress(RuntimeError):
                await asyncio.to_thread(self.stack.broker.ctl, "start_app")
        for process in self.stack.processes.values():
            if not process.running:
                await asyncio.to_thread(process.start, 60.0)
