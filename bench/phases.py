"""The measurements, one function each; every load is bounded by its duration."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench import load, relay, saga
from bench.cpu import CpuMeter
from bench.infra import ADMIN_DSN, DATABASE
from bench.stack import Stack, quiesce


@dataclass(frozen=True)
class Plan:
    round_s: float
    rounds: int
    warmup_s: float
    curve_pcts: tuple[int, ...]
    post_s: float
    relay_sizes: tuple[int, int]
    relay_timeouts_s: tuple[float, float]
    headroom_wait_s: float
    products: int = 1000
    settle_timeout_s: float = 120.0

    @classmethod
    def full(cls, round_s: float = 10.0) -> Plan:
        return cls(
            round_s=round_s,
            rounds=3,
            warmup_s=3.0,
            # Past 100%: paced arrivals can be served above the closed-loop maximum (no
            # 32-deep queue), so the knee may lie beyond it.
            curve_pcts=(10, 25, 50, 75, 100, 150),
            post_s=2 * round_s,
            relay_sizes=(10_000, 100_000),
            relay_timeouts_s=(60.0, 180.0),
            headroom_wait_s=30.0,
        )

    @classmethod
    def quick(cls, round_s: float = 3.0) -> Plan:
        return cls(
            round_s=round_s,
            rounds=3,
            warmup_s=1.0,
            curve_pcts=(25, 100, 150),  # 50% is the get_half phase
            post_s=2 * round_s,
            relay_sizes=(2_000, 20_000),
            relay_timeouts_s=(30.0, 60.0),
            headroom_wait_s=0.0,  # a rough look: no waiting for other sessions
        )


def median_of(results: list[load.LoadResult]) -> dict[str, float]:
    return {
        key: statistics.median(getattr(r, key) for r in results)
        for key in ("rps", "p50_ms", "p90_ms", "p99_ms")
    }


async def get_interleaved(stack: Stack, plan: Plan, env: dict[str, str]) -> dict[str, Any]:
    """A B A B A B: ours and the baseline in alternating rounds, so drift hits both alike."""
    targets = {"ours": stack.urls["catalog"], "baseline": stack.urls["baseline"]}
    for url in targets.values():  # warm-up: pools, caches, the first requests' imports
        await load.wrk(url, "get_product.lua", plan.warmup_s, env=env)
    rounds: dict[str, list[load.LoadResult]] = {"ours": [], "baseline": []}
    for _ in range(plan.rounds):
        for name, url in targets.items():
            rounds[name].append(await load.wrk(url, "get_product.lua", plan.round_s, env=env))
    return {
        name: {"median": median_of(results), "rounds": [r.as_dict() for r in results]}
        for name, results in rounds.items()
    }


async def get_curve(
    stack: Stack, plan: Plan, env: dict[str, str], max_rps: dict[str, float]
) -> dict[str, list[dict[str, Any]]]:
    """Constant offered rates, fractions of each one's own maximum; ours and baseline alternate."""
    points: dict[str, list[dict[str, Any]]] = {"ours": [], "baseline": []}
    urls = {"ours": stack.urls["catalog"], "baseline": stack.urls["baseline"]}
    for pct in plan.curve_pcts:
        for name, url in urls.items():
            rate = max_rps[name] * pct / 100
            result = await load.wrk(url, "get_product.lua", plan.round_s, rate=rate, env=env)
            points[name].append({"pct": pct, **result.as_dict()})
    return points


async def get_half(stack: Stack, plan: Plan, env: dict[str, str], rate: float) -> dict[str, Any]:
    """The latency target: GET at 50% of our max, in rounds, median of the rounds' percentiles.

    A single stall of a few hundred ms decides one run's p99, so one run is not a figure.
    The baseline runs at the same offered rate (not at 50% of its own), interleaved.
    """
    targets = {"ours": stack.urls["catalog"], "baseline": stack.urls["baseline"]}
    rounds: dict[str, list[load.LoadResult]] = {"ours": [], "baseline": []}
    for _ in range(plan.rounds):
        for name, url in targets.items():
            result = await load.wrk(url, "get_product.lua", plan.round_s, rate=rate, env=env)
            rounds[name].append(result)
    return {
        "rate": rate,
        **{
            name: {"median": median_of(results), "rounds": [r.as_dict() for r in results]}
            for name, results in rounds.items()
        },
    }


def _process_groups(stack: Stack) -> dict[str, int]:
    return {s.name: s.pid for s in stack.ours}


async def place_orders(
    stack: Stack, plan: Plan, ids_file: Path, *, label: str, rate: float | None
) -> dict[str, Any]:
    """Orders as one fresh customer, at saturation (rate None) or a constant rate, until settled.

    CPU is counted from the first request until the last order has left PENDING, so the
    events that finish the saga are inside the window.
    """
    await quiesce(stack)
    customer = f"bench-{label}-{uuid.uuid4().hex[:8]}"
    env = {
        "BENCH_IDS_FILE": str(ids_file),
        "BENCH_TOKEN": stack.token(customer),
        "BENCH_KEY_PREFIX": customer,
    }
    conn = await asyncpg.connect(stack.infra.admin_url)
    try:
        async with CpuMeter(_process_groups(stack), DATABASE, ADMIN_DSN) as meter:
            result = await load.wrk(
                stack.urls["orders"], "place_order.lua", plan.post_s, rate=rate, env=env
            )
            still_pending = await saga.wait_settled(conn, customer, within=plan.settle_timeout_s)
        measured = await saga.measure(conn, customer)
    finally:
        await conn.close()
    return {
        "customer": customer,
        "load": result.as_dict(),
        "saga": measured.as_dict(),
        "still_pending": still_pending,
        "cpu": cpu_summary(meter, result.generator_cpu_s),
    }


def cpu_summary(meter: CpuMeter, generator_cpu_s: float) -> dict[str, Any]:
    seconds = {**meter.result, "load generator": generator_cpu_s}
    accounted = sum(v for k, v in seconds.items() if k not in ("postgres (bench db backends)",))
    return {
        "wall_s": meter.wall_s,
        "seconds": seconds,
        "machine_busy_s": meter.machine_busy_s,
        # CPU nobody above used: other work on the machine (other engineers' test runs).
        "other_s": max(0.0, meter.machine_busy_s - accounted),
    }


async def warm_orders(stack: Stack, plan: Plan, ids_file: Path) -> None:
    customer = f"bench-warmup-{uuid.uuid4().hex[:8]}"
    env = {
        "BENCH_IDS_FILE": str(ids_file),
        "BENCH_TOKEN": stack.token(customer),
        "BENCH_KEY_PREFIX": customer,
    }
    await load.wrk(stack.urls["orders"], "place_order.lua", plan.warmup_s, env=env)
    conn = await asyncpg.connect(stack.infra.admin_url)
    try:
        await saga.wait_settled(conn, customer, within=plan.settle_timeout_s)
    finally:
        await conn.close()


async def relay_backlogs(stack: Stack, plan: Plan) -> dict[str, Any]:
    """Drain two backlogs with the orders worker's relay; Catalog's worker stopped (see relay)."""
    await quiesce(stack)
    stack.services["catalog-worker"].stop()
    runs: list[dict[str, Any]] = []
    for rows, timeout in zip(plan.relay_sizes, plan.relay_timeouts_s, strict=True):
        async with CpuMeter(_process_groups(stack), DATABASE, ADMIN_DSN) as meter:
            result = await relay.drain(
                stack.infra.admin_url, stack.infra.amqp_url, rows, within=timeout
            )
        runs.append({**result.as_dict(), "cpu": cpu_summary(meter, 0.0)})
        if result.timed_out:
            break  # a bigger backlog would only time out too; say so rather than wait
    small, big = [*runs, None][:2]
    ratio = None
    if big is not None:
        ratio = big["seconds"] / small["seconds"]
    return {
        "runs": runs,
        "time_ratio": ratio,
        "size_ratio": plan.relay_sizes[1] / plan.relay_sizes[0],
        "ratio_is_lower_bound": bool(big is None or big["timed_out"]),
    }
