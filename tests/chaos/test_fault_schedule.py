"""The bounded fault schedule: one round of every fault under a stream of orders and cancels.

`make chaos` runs the same harness for minutes (docs/operations.md, "Chaos runs").
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.chaos.run import ChaosConfig, run_chaos

pytestmark = pytest.mark.e2e

# Inside pytest-timeout's limit, so that a run that hangs still stops everything it started.
RUN_LIMIT_SECONDS = 150


@pytest.mark.timeout(RUN_LIMIT_SECONDS + 30)
async def test_one_round_of_faults_loses_nothing_doubles_nothing_and_conserves_stock(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    async with asyncio.timeout(RUN_LIMIT_SECONDS):
        accounting = await run_chaos(
            ChaosConfig(seed=7, rounds=1, compact=True, clients=4, tail_seconds=1.0, log_dir=logs)
        )
    print(accounting.render())
    assert {f.fault.kind for f in accounting.faults} >= {
        "kill",
        "freeze",
        "drop-connections",
        "terminate-backends",
    }
    assert accounting.trustworthy, accounting.render()  # each detector saw its sabotage
    assert accounting.ok, f"{accounting.render()}\nThe processes' logs: {logs}"
