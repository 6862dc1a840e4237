"""The load generator: wrk, as fast as it goes, or paced by its Lua `delay()` to a constant rate.

Not hey: `hey -q` gives each of its `-c` workers a ticker, all started together, so it sends
bursts of `-c` requests rather than a constant rate (measured: at the same 250 req/s, p50 is
2.5 ms paced by wrk, 7 ms with `hey -c 4` and 70 ms with `hey -c 32`); and it can vary
neither the product id nor the Idempotency-Key. Every run is bounded: a fixed duration, and
a subprocess timeout above it.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.processes import run_tool

LUA = Path(__file__).with_name("lua")
THREADS = 2
CONNECTIONS = 32
# Far above any latency we expect, so slow requests are measured, not dropped as timeouts
# (wrk leaves timed-out requests out of its latency histogram).
TIMEOUT_S = 10
TOOLS = {"wrk": "wrk"}  # binary -> Debian package


@dataclass
class LoadResult:
    tool: str
    target: str
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    offered_rps: float | None = None  # None: as fast as it goes (closed loop)
    errors: dict[str, int] = field(default_factory=dict)
    late: int = 0  # paced runs: slots no connection was free for (sent late, or dropped)
    generator_cpu_s: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def held_rate(self) -> bool:
        """Did a constant-rate run get (nearly) the rate it offered?"""
        return self.offered_rps is None or self.rps >= 0.95 * self.offered_rps

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_count": self.error_count, "held_rate": self.held_rate}


def missing_tools() -> list[str]:
    return [binary for binary in TOOLS if shutil.which(binary) is None]


def install_hint(missing: list[str]) -> str:
    packages = " ".join(TOOLS[m] for m in missing)
    return f"sudo apt-get update && sudo apt-get install -y {packages}"


def ensure_tools(install: bool) -> None:
    """Install wrk with apt when allowed (root and --yes), else say exactly how."""
    missing = missing_tools()
    if not missing:
        return
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)  # noqa: S607
        packages = [TOOLS[m] for m in missing]
        subprocess.run(  # noqa: S603
            ["apt-get", "install", "-y", "-qq", *packages],  # noqa: S607
            check=True,
            env=env,
            timeout=600,
        )
        if not missing_tools():
            return
    raise SystemExit(
        f"missing load tool(s): {', '.join(missing)}. Install them with:\n"
        f"  {install_hint(missing)}\n"
        "(or run the bench as root with --yes to let it do that)"
    )


def children_cpu() -> float:
    """CPU of every child process that has ended (wrk, once it exited), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def wrk(
    base_url: str,
    script: str,
    duration_s: float,
    *,
    rate: float | None = None,
    env: dict[str, str] | None = None,
    target: str = "",
) -> LoadResult:
    """wrk -t2 -c32 with one of bench/lua's scripts; `rate` paces it (requests/s overall)."""
    seconds = max(1, round(duration_s))
    tool_env = {
        **os.environ,
        **(env or {}),
        "BENCH_RATE": str(rate or 0),
        "BENCH_THREADS": str(THREADS),
    }
    argv = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        f"--timeout={TIMEOUT_S}s",
        "-s",
        str(LUA / script),
        base_url,
    ]
    cpu_before = children_cpu()
    out = await run_tool(argv, tool_env, within=seconds + TIMEOUT_S + 30)
    cpu = children_cpu() - cpu_before
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    latency = data["latency_ms"]
    return LoadResult(
        tool="wrk",
        target=target or base_url,
        duration_s=data["duration_s"],
        requests=data["requests"],
        rps=data["requests"] / data["duration_s"],
        p50_ms=latency["p50"],
        p90_ms=latency["p90"],
        p99_ms=latency["p99"],
        max_ms=latency["max"],
        mean_ms=latency["mean"],
        offered_rps=rate,
        errors={k: v for k, v in data["errors"].items() if v},
        late=data["late"],
        generator_cpu_s=cpu,
    )


def ids_file(ids: list[str], directory: Path) -> Path:
    path = directory / "product-ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return path
