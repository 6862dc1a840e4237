"""The console stream: JSON log records as readable lines, several files merged as they grow."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from shop_dev.console import LogFollower, Renderer, colour_wanted, log_files

PLAIN = Renderer(colour=False)


def record(**fields: object) -> str:
    base = {"time": "2026-12-01 22:10:03,123", "level": "INFO", "logger": "x", "message": "hi"}
    return json.dumps({**base, "service": "catalog-worker", **fields})


def test_a_record_shows_time_process_level_message_and_ids() -> None:
    line = PLAIN.line(
        "catalog-worker",
        record(
            message="consumer catalog.events: handled orders.order.placed.v1 7f3e",
            request_id=None,
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        ),
    )

    assert line == (
        "22:10:03.123 catalog-worker INFO  consumer catalog.events: handled "
        "orders.order.placed.v1 7f3e  trace=4bf92f35"
    )


def test_request_ids_extras_and_tracebacks_are_shown_plainly() -> None:
    line = PLAIN.line(
        "orders-api",
        record(
            level="ERROR",
            message="boom",
            request_id="0123456789abcdef",
            exc_info="Traceback (most recent call last):\n  ValueError: x",
            color_message="\x1b[1mboom\x1b[0m",
            attempt=3,
        ),
    )

    first, *rest = line.splitlines()
    assert first == "22:10:03.123 orders-api     ERROR boom  req=01234567  attempt=3"
    assert rest == [" " * 13 + "Traceback (most recent call last):", " " * 13 + "  ValueError: x"]
    assert "\x1b" not in line


def test_lines_that_are_not_json_pass_through() -> None:
    assert PLAIN.line("catalog-api", "Traceback (most recent call last):") == (
        " " * 12 + " catalog-api    Traceback (most recent call last):"
    )


def test_colour_marks_level_and_process() -> None:
    line = Renderer(colour=True).line("orders-worker", record(level="WARNING", message="slow"))

    assert "\x1b[33mWARN \x1b[0m" in line
    assert "\x1b[33morders-worker " in line


def test_colour_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    assert colour_wanted(Tty())
    assert not colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted(Tty())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert colour_wanted(io.StringIO())


def follower(run_dir: Path) -> tuple[LogFollower, io.StringIO]:
    out = io.StringIO()
    return LogFollower(out.write, PLAIN, discover=lambda: log_files(run_dir)), out


def test_new_lines_of_several_files_come_out_merged_by_time(tmp_path: Path) -> None:
    api, worker = tmp_path / "orders-api.log", tmp_path / "catalog-worker.log"
    api.write_text(record(message="old") + "\n")
    worker.write_text("")
    follow, out = follower(tmp_path)
    follow.start_at_end()

    with api.open("a") as f:
        f.write(record(time="2026-12-01 22:10:05,000", message="second") + "\n")
    with worker.open("a") as f:
        f.write(record(time="2026-12-01 22:10:04,000", message="first") + "\n")
        f.write(record(time="2026-12-01 22:10:06,000", message="half")[:20])  # no newline yet

    assert follow.poll() == 2
    assert [line.split()[-1] for line in out.getvalue().splitlines()] == ["first", "second"]

    with worker.open("a") as f:
        f.write(record(time="2026-12-01 22:10:06,000", message="half")[20:] + "\n")
    assert follow.poll() == 1
    assert out.getvalue().splitlines()[-1].endswith("catalog-worker INFO  half")


def test_a_file_replaced_by_the_next_run_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "catalog-api.log"
    log.write_text(record(message="run one") + "\n")
    follow, out = follower(tmp_path)
    follow.start_at_end()

    log.replace(tmp_path / "catalog-api.log.1")  # what Supervisor.start does
    log.write_text(record(message="run two") + "\n")

    assert follow.poll() == 1
    assert out.getvalue().rstrip().endswith("run two")
    assert list(log_files(tmp_path)) == ["catalog-api"]


def test_backlog_shows_the_last_lines_of_each_file(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("".join(record(message=f"a{i}") + "\n" for i in range(30)))
    (tmp_path / "b.log").write_text(record(message="b0") + "\n" + "plain text\n")
    follow, out = follower(tmp_path)

    follow.backlog(2)

    shown = out.getvalue().splitlines()
    assert len(shown) == 4
    assert {line.split()[-1] for line in shown} == {"a28", "a29", "b0", "text"}
    assert follow.poll() == 0
