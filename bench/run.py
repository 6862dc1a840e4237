"""`make bench` / `python -m bench`: the whole benchmark in one run, from a fresh clone.

Provisions its own database and vhost, starts our four processes and the baseline on free
loopback ports, seeds products, measures (see docs/performance.md for what and how), prints
the table, writes bench/results/<section>.json (and latest.json), redraws the picture and
the section of docs/performance.md. Every process it starts is stopped when it ends,
whether it finishes, fails or is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg

from bench import infra, load, phases, plot, report, stack
from bench.cpu import CpuMeter
from bench.phases import Plan

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
BUSY_OTHERS = 16  # connections held by other databases that mean "a test session is on"
HEADINGS = {
    "latest": "Latest run",
    "before": "Before (baseline of this project as of {commit})",
    "after": "After (as of {commit})",
}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)  # noqa: T201


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (about 2 minutes)")
    parser.add_argument("--round-seconds", type=float, help="length of one load round")
    parser.add_argument(
        "--section",
        default="latest",
        help="docs/performance.md section and results file to write: latest (default), "
        "before, after, or any word",
    )
    parser.add_argument(
        "--yes", action="store_true", help="as root: apt-get install wrk if missing"
    )
    parser.add_argument("--keep", action="store_true", help="keep database and vhost after")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/performance.md")
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: redraw the picture and the docs section from "
        "bench/results/<section>.json (e.g. with `uv run --with matplotlib`)",
    )
    parser.add_argument(
        "--serve",
        type=float,
        metavar="SECONDS",
        help="no measurements: start and seed the stack, print its URLs, keep it up this long "
        "(or until Ctrl-C), e.g. to profile it under your own load",
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,30}", args.section):
        parser.error("--section must be a short lowercase word")
    return args


def _git(*args: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    return "unknown"


def _tool_version(argv: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
        text = (out.stdout + out.stderr).strip().splitlines()
        match = re.search(r"\d+\.\d+(\.\d+)?", text[0] if text else "")
        if match:
            return match.group(0)
    return "unknown"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


async def _server_versions(admin_url: str, amqp_url: str) -> tuple[str, str]:
    conn = await asyncpg.connect(admin_url)
    try:
        postgres = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    connection = await aio_pika.connect(amqp_url)
    try:
        props = connection.transport.connection.server_properties  # type: ignore[union-attr]
        rabbit = props.get("version", "unknown")
        rabbit = rabbit.decode() if isinstance(rabbit, bytes) else str(rabbit)
    finally:
        await connection.close()
    return postgres, rabbit


def _meta(args: argparse.Namespace, plan: Plan, argv: list[str] | None) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": f"Linux {platform.release()}",
        "python": platform.python_version(),
        "command": os.environ.get("BENCH_COMMAND")
        or "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        "plan": f"{'quick' if args.quick else 'full'}: {plan.rounds} rounds of {plan.round_s:g} s",
        "plan_detail": vars(plan),
        "loadavg_start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "wrk": _tool_version(["wrk", "-v"]),
        "threads": load.THREADS,
        "connections": load.CONNECTIONS,
    }


async def _wait_for_headroom(within: float) -> tuple[float, dict[str, int]]:
    """PostgreSQL is shared (max_connections): let another session's burst pass first.

    Only while others hold many connections (a test session does), and at most `within`
    seconds; then it measures anyway, and any connection errors are counted and flagged.
    """
    started = time.monotonic()
    headroom = await infra.connection_headroom()
    while headroom["held_by_others"] > BUSY_OTHERS:
        if time.monotonic() - started > within:
            say(f"measuring anyway: others hold {headroom['held_by_others']} connections")
            break
        await asyncio.sleep(2)
        headroom = await infra.connection_headroom()
    waited = time.monotonic() - started
    return (waited if waited > 2 else 0.0), headroom


async def _phase(
    system: stack.Stack,
    plan: Plan,
    results: dict[str, Any],
    name: str,
    make: Callable[[], Awaitable[Any]],
) -> Any | None:
    """Run one measurement; a failure is recorded (and reported) without losing the others.

    Each phase also records how much CPU other work on the machine took meanwhile (in
    cores): the noise its figures were taken in.
    """
    waited, headroom = await _wait_for_headroom(plan.headroom_wait_s)
    say(f"{name} ... (PostgreSQL connections held by others: {headroom['held_by_others']})")
    results.setdefault("pg_connections_by_others", {})[name] = headroom["held_by_others"]
    if waited:
        results.setdefault("waited_for_headroom_s", {})[name] = round(waited, 1)
    started = time.monotonic()
    generator_before = load.children_cpu()
    try:
        groups = {s.name: s.pid for s in system.ours if s.running}
        async with CpuMeter(groups, infra.DATABASE, infra.ADMIN_DSN) as meter:
            results[name] = await make()
        other = phases.cpu_summary(meter, load.children_cpu() - generator_before)["other_s"]
        results.setdefault("other_work_cores", {})[name] = round(other / meter.wall_s, 2)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:
        results.setdefault("errors", []).append(f"{name}: {exc!r}")
        say(f"{name} FAILED: {exc!r}\n{traceback.format_exc()}")
        return None
    say(f"{name} done in {time.monotonic() - started:.0f} s")
    return results[name]


async def measure(system: stack.Stack, plan: Plan, results: dict[str, Any], work: Path) -> None:
    ids_file = load.ids_file(system.product_ids, work)
    env = {"BENCH_IDS_FILE": str(ids_file)}
    get = await _phase(
        system, plan, results, "get", lambda: phases.get_interleaved(system, plan, env)
    )
    if get:
        max_rps = {n: get[n]["median"]["rps"] for n in ("ours", "baseline")}
        await _phase(
            system,
            plan,
            results,
            "get_half",
            lambda: phases.get_half(system, plan, env, max_rps["ours"] / 2),
        )
        await _phase(
            system, plan, results, "curve", lambda: phases.get_curve(system, plan, env, max_rps)
        )
    await phases.warm_orders(system, plan, ids_file)
    sat = await _phase(
        system,
        plan,
        results,
        "post_saturation",
        lambda: phases.place_orders(system, plan, ids_file, label="sat", rate=None),
    )
    if sat:
        half_rate = sat["load"]["rps"] / 2
        await _phase(
            system,
            plan,
            results,
            "post_half",
            lambda: phases.place_orders(system, plan, ids_file, label="half", rate=half_rate),
        )
    await _phase(system, plan, results, "relay", lambda: phases.relay_backlogs(system, plan))


async def serve(system: stack.Stack, work: Path, seconds: float) -> None:
    ids_file = load.ids_file(system.product_ids, work)
    pids = ", ".join(f"{s.name} {s.pid}" for s in system.services.values())
    say(
        f"serving for {seconds:.0f} s (Ctrl-C stops it sooner)\n"
        f"  catalog  {system.urls['catalog']}\n  orders   {system.urls['orders']}\n"
        f"  baseline {system.urls['baseline']}\n  pids     {pids}\n"
        f"  product ids: {ids_file}\n"
        f"  customer token: {system.token('bench-you')}\n"
        f"  e.g. BENCH_IDS_FILE={ids_file} wrk -t2 -c32 -d10s -s bench/lua/get_product.lua "
        f"{system.urls['catalog']}"
    )
    await asyncio.sleep(seconds)


async def run(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    plan = (
        Plan.quick(args.round_seconds or 3.0)
        if args.quick
        else Plan.full(args.round_seconds or 10.0)
    )
    load.ensure_tools(install=args.yes)
    await infra.check_reachable()
    results: dict[str, Any] = {"meta": _meta(args, plan, argv)}
    before = RESULTS / "before.json"
    if before.exists() and args.section != "before":
        with contextlib.suppress(KeyError, ValueError, ZeroDivisionError):
            old = json.loads(before.read_text())
            per_order = report.cpu_per_order(old["post_saturation"])
            results["before_cpu_ms_per_order"] = sum(
                per_order[p] for p in report.OUR_PROCESSES if p in per_order
            )
    headroom = await infra.connection_headroom()
    results["meta"]["pg_connections_at_start"] = headroom
    if headroom["for_service_roles"] - headroom["held_by_others"] < headroom["needed"]:
        say(
            f"WARNING: PostgreSQL allows {headroom['for_service_roles']} connections, others hold "
            f"{headroom['held_by_others']} and the stack may need {headroom['needed']} at "
            "saturation: expect connection errors in the results (they are counted and flagged)"
        )
    say(f"provisioning database {infra.DATABASE} and vhost {infra.VHOST}")
    try:
        created = await infra.create()
    except BaseException:
        if not args.keep:  # a half-made database or vhost is not left behind either
            await infra.destroy()
        raise
    system = stack.build(created)
    try:
        results["meta"]["postgres"], results["meta"]["rabbitmq"] = await _server_versions(
            created.admin_url, created.amqp_url
        )
        say("starting catalog-worker, orders-worker, catalog-api, orders-api, baseline")
        await stack.start(system)
        say(f"seeding {plan.products} products through the API")
        await stack.seed(system, plan.products)
        await stack.quiesce(system, within=300)
        await stack.check_equivalent(system)
        with tempfile.TemporaryDirectory(prefix="bench-") as work:
            if args.serve:
                await serve(system, Path(work), args.serve)
            else:
                await measure(system, plan, results, Path(work))
    finally:
        for service in system.services.values():
            if service.popen is not None and not service.running and not service.stopped:
                # A crash makes every number after it suspect: the run fails, loudly.
                results.setdefault("errors", []).append(f"{service.name} exited during the run")
                say(f"{service.name} exited during the run; {service.log}:\n{service.tail()}")
        system.stop()
        say("stopped every process")
        if not args.keep:
            await infra.destroy()
    return results


def write_outputs(
    results: dict[str, Any], section: str, *, docs: bool, json_too: bool = True
) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    if json_too:
        text = json.dumps(results, indent=2, sort_keys=True) + "\n"
        for name in {"latest", section}:
            (RESULTS / f"{name}.json").write_text(text)
    picture = None
    if results.get("curve") and plot.available():
        png = RESULTS / f"{section}-latency-vs-load.png"
        plot.draw(results, png)
        picture = f"../bench/results/{png.name}"
        say(f"wrote {png.relative_to(ROOT)}")
    elif results.get("curve"):
        say(
            "matplotlib is not installed, so no picture; draw it with "
            f"`uv run --with matplotlib python -m bench.plot bench/results/{section}.json`"
        )
        existing = RESULTS / f"{section}-latency-vs-load.png"
        picture = f"../bench/results/{existing.name}" if existing.exists() else None
    if docs:
        heading = HEADINGS.get(section, section).format(commit=results["meta"]["commit"][:10])
        update_doc(section, report.markdown(results, heading, picture))
        say(f"updated section '{section}' of {DOC.relative_to(ROOT)}")


def update_doc(section: str, block: str) -> None:
    """Replace this section's block in docs/performance.md (appended when it is not there)."""
    begin, end = f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->"
    current = DOC.read_text() if DOC.exists() else "# Performance\n"
    body = f"{begin}\n{block}{end}"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        tail = rest.split(end, 1)[1]
        updated = head + body + tail
    else:
        updated = current.rstrip("\n") + "\n\n" + body + "\n"
    DOC.write_text(updated)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render:
        saved = json.loads((RESULTS / f"{args.section}.json").read_text())
        write_outputs(saved, args.section, docs=not args.no_docs, json_too=False)
        print("\n" + report.text_table(saved) + "\n", flush=True)  # noqa: T201
        return
    lock = infra.acquire_lock()

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # the same clean-up path as Ctrl-C

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    started = time.monotonic()
    try:
        results = asyncio.run(run(args, argv))
    except KeyboardInterrupt:
        say("interrupted; every process was stopped")
        sys.exit(130)
    finally:
        lock.close()
    results["meta"]["run_seconds"] = round(time.monotonic() - started)
    if args.serve:
        return
    write_outputs(results, args.section, docs=not args.no_docs)
    print("\n" + report.text_table(results) + "\n", flush=True)  # noqa: T201
    say(f"finished in {results['meta']['run_seconds']} s")
    if results.get("errors"):
        say("some phases failed: " + "; ".join(results["errors"]))
        sys.exit(1)
