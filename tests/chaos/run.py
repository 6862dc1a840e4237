"""One chaos run: a stack of its own, a stream of orders and cancels, the faults, the accounting."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.chaos.accounting import Accounting, Run, account, settle
from tests.chaos.clients import ClientSettings, Ledger, PhaseClock, Storefront
from tests.chaos.schedule import FaultRunner, plan
from tests.chaos.selfcheck import self_check
from tests.chaos.stack import ChaosStack, chaos_stack

# Two products run out (rejections, and stock that cancels give back), two never do.
STOCK = (20, 60, 1_000_000, 1_000_000)


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 1
    rounds: int | None = 1  # rounds of faults (every kind once per round) ...
    duration: float | None = None  # ... or seconds of faults (rounds repeat until then)
    clients: int = 4
    # How long a client retries one request: above the few seconds an orphaned
    # Idempotency-Key claim may block its retries, well below a person's patience.
    budget_seconds: float = 20.0
    cancel_share: float = 0.3
    settle_seconds: float = 30.0
    compact: bool = False  # shorter rounds: processes killed two at a time (bounded test)
    tail_seconds: float = 2.0  # steady stream after the last fault
    private_broker: bool = True
    log_dir: Path | None = None
    verbose: bool = False  # print each fault as it is injected

    def describe(self) -> str:
        span = f"{self.rounds} round(s)" if self.duration is None else f"{self.duration:g}s"
        return (
            f"seed {self.seed}, faults for {span}, {self.clients} clients, retry budget "
            f"{self.budget_seconds:g}s, settle up to {self.settle_seconds:g}s"
        )


async def run_chaos(config: ChaosConfig) -> Accounting:
    began = time.monotonic()
    async with chaos_stack(private_broker=config.private_broker, log_dir=config.log_dir) as stack:
        return await _run(stack, config, setup_seconds=time.monotonic() - began)


async def _run(stack: ChaosStack, config: ChaosConfig, *, setup_seconds: float) -> Accounting:
    async with httpx.AsyncClient(timeout=10) as http:
        initial = {await stack.create_product(http, stock): stock for stock in STOCK}
    conn = await stack.connect()
    try:
        # Orders prices from its replica while Catalog is away: let it have every product.
        await _wait_for(
            lambda: conn.fetchval("SELECT count(*) FROM orders.product_replica"),
            len(initial),
            within=30,
        )
        phases, ledger = PhaseClock(), Ledger()
        settings = ClientSettings(
            budget_seconds=config.budget_seconds,
            cancel_share=config.cancel_share,
            cancel_within_seconds=2.5,
            think_seconds=(0.05, 0.3),
        )
        clients = [
            Storefront(
                orders_url=stack.orders_url,
                customer=f"chaos-{stack.run_id}-{n}",
                token=stack.token(f"chaos-{stack.run_id}-{n}", "customer"),
                products=list(initial),
                settings=settings,
                phases=phases,
                ledger=ledger,
                rng=random.Random(config.seed * 1000 + n),
            )
            for n in range(config.clients)
        ]
        runner = FaultRunner(stack, phases, say=print if config.verbose else None)
        stop = asyncio.Event()
        stream = [asyncio.create_task(client.run(stop)) for client in clients]
        try:
            until = time.monotonic() + (config.duration or 0)
            rounds = plan(
                config.seed, broker_restarts=stack.broker.can_restart, compact=config.compact
            )
            await runner.run(rounds, count=None if config.duration else config.rounds, until=until)
            await asyncio.sleep(config.tail_seconds)
        except BaseException:
            for task in stream:
                task.cancel()
            await asyncio.gather(*stream, return_exceptions=True)
            raise
        # Requests in flight finish, or spend their retry budget.
        stop.set()
        for failed in await asyncio.gather(*stream, return_exceptions=True):
            if isinstance(failed, BaseException):
                raise failed
        streamed = phases.now()
        rest, queues, waited = await settle(
            conn,
            lambda: asyncio.to_thread(stack.broker.queue_depths, stack.vhost),
            within=config.settle_seconds,
        )
        run = Run(
            title=(
                f"Chaos accounting: {config.describe()}\n"
                f"Set-up {setup_seconds:.0f}s, stream {streamed:.0f}s, on {stack.broker_note}, "
                f"database {stack.database}"
            ),
            initial_stock=initial,
            rest=rest,
            settled_after=waited,
            queues={queue: n for queue, n in queues.items() if n},
            faults=runner.injected,
        )
        accounting = await account(conn, ledger, run)
        accounting.self_check = await self_check(conn, ledger, run)
        return accounting
    finally:
        await conn.close()


async def _wait_for(probe: Callable[[], Awaitable[int]], expected: int, *, within: float) -> None:
    deadline = time.monotonic() + within
    while (found := await probe()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {expected}, still {found} after {within}s")
        await asyncio.sleep(0.2)
