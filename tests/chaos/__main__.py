"""`make chaos`: the long fault-schedule run; prints the accounting, exits 1 on any violation.

python -m tests.chaos --duration 600 --seed 1   (see docs/operations.md, "Chaos runs")
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

from tests.chaos.accounting import Accounting
from tests.chaos.run import ChaosConfig, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of faults")
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds of faults instead of --duration"
    )
    parser.add_argument("--seed", type=int, default=1, help="fixes the fault schedule")
    parser.add_argument("--clients", type=int, default=6, help="concurrent storefront clients")
    parser.add_argument("--budget", type=float, default=20.0, help="retry budget per request (s)")
    parser.add_argument("--settle", type=float, default=120.0, help="settle period (s)")
    parser.add_argument(
        "--shared-broker",
        action="store_true",
        help="use a vhost on the shared broker (no broker restarts) instead of a private node",
    )
    parser.add_argument(
        "--log-dir", type=Path, default=Path(".run/chaos"), help="where the processes' logs go"
    )
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 3600 or not 1 <= args.clients <= 32:
        parser.error("--duration must be in (0, 3600] and --clients in [1, 32]")
    log_dir: Path = args.log_dir / time.strftime("%Y%m%d-%H%M%S")
    config = ChaosConfig(
        seed=args.seed,
        rounds=args.rounds,
        duration=None if args.rounds else args.duration,
        clients=args.clients,
        budget_seconds=args.budget,
        settle_seconds=args.settle,
        private_broker=not args.shared_broker,
        log_dir=log_dir,
        verbose=True,
    )
    print(f"chaos: {config.describe()}; logs in {log_dir}/", flush=True)
    try:
        accounting = asyncio.run(_interruptible(config))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("chaos: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    print(accounting.render(), flush=True)
    return 0 if accounting.ok and accounting.trustworthy else 1


async def _interruptible(config: ChaosConfig) -> Accounting:
    """SIGINT (Ctrl-C) and SIGTERM cancel the run, so its clean-up runs (also when the shell
    that started it ignores SIGINT, as non-interactive shells do for background jobs)."""
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    return await run_chaos(config)


if __name__ == "__main__":
    sys.exit(main())
