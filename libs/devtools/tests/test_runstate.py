"""`make down` stops what `make up` recorded, and only that: a reused pid is left alone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shop_dev.runstate import RecordedProcess, RunState, running_command, stop_recorded

# A stand-in for a service process: its command line carries a marker, like `catalog-api`.
SLEEPER = "import sys, time; time.sleep(120)"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    popen = subprocess.Popen(
        [sys.executable, "-c", SLEEPER, "fake-catalog-api"], start_new_session=True
    )
    try:
        yield popen
    finally:
        if popen.poll() is None:
            popen.kill()
        popen.wait(timeout=10)


def test_state_round_trips_and_an_unreadable_file_is_dropped(tmp_path: Path) -> None:
    state = RunState(
        run_dir=tmp_path,
        supervisor=RecordedProcess("make up", 11, "shop-dev"),
        processes=[RecordedProcess("catalog-api", 12, "catalog-api")],
    )
    state.save()

    assert RunState.load(tmp_path) == state
    (tmp_path / "stack.json").write_text("{not json")
    assert RunState.load(tmp_path) is None
    assert not (tmp_path / "stack.json").exists()


def test_a_pid_counts_only_while_it_runs_the_recorded_command(
    sleeper: subprocess.Popen[bytes],
) -> None:
    command = running_command(sleeper.pid)

    assert command is not None
    assert "fake-catalog-api" in command
    assert RecordedProcess("catalog-api", sleeper.pid, "fake-catalog-api").alive()
    # The same pid running something else (a pid reused after a reboot) is not ours.
    assert not RecordedProcess("catalog-api", sleeper.pid, "orders-worker").alive()


def test_stop_recorded_stops_the_processes_and_clears_the_record(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    state = RunState(
        run_dir=tmp_path, processes=[RecordedProcess("catalog-api", sleeper.pid, "fake-catalog")]
    )
    state.save()
    said: list[str] = []

    stopped = stop_recorded(state, said.append, grace=5)

    assert stopped == ["catalog-api"]
    assert sleeper.wait(timeout=10) == -15  # SIGTERM
    assert not (tmp_path / "stack.json").exists()
    assert said == [f"stopping catalog-api (pid {sleeper.pid})"]


def test_a_process_gone_already_is_nothing_to_stop(tmp_path: Path) -> None:
    popen = subprocess.Popen([sys.executable, "-c", "pass"])
    popen.wait(timeout=30)
    state = RunState(run_dir=tmp_path, processes=[RecordedProcess("x", popen.pid, "python")])

    assert state.alive() == []
    assert stop_recorded(state, print) == []
