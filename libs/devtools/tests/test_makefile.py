"""The Makefile's promises: a clear word when Python 3.11 is missing, and a lean `make up`."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
MAKE = shutil.which("make") or "make"


def _fake_python(directory: Path, version: str) -> None:
    """A `python3` that is `version`: fails the Makefile's version test, reports itself."""
    script = directory / "python3"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python {version}"; exit 0; fi\nexit 1\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_without_python_3_11_make_says_what_to_install(tmp_path: Path) -> None:
    _fake_python(tmp_path, "3.12.3")
    result = subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPO), "check-python"],
        # Only the fake on PATH: the recipe uses shell builtins and the pythons it finds.
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "needs Python 3.11 on PATH (python3.11 or python3); found: Python 3.12.3" in (
        result.stderr
    )
    assert "never to download a Python" in result.stderr
    assert "apt-get install" in result.stderr
    assert "brew install python@3.11" in result.stderr
    assert "Traceback" not in result.stderr


def test_with_python_3_11_the_check_is_silent() -> None:
    result = subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPO), "check-python"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_make_up_installs_the_run_group_only() -> None:
    """What `make up` syncs: the services and shop-dev, none of the dev group's tools."""
    dry = subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPO), "-n", "-B", ".venv/.synced-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "sync --locked --inexact --no-default-groups --group run" in dry.stdout

    uv = shutil.which("uv") or str(REPO / ".tools/bin/uv")
    if not os.access(uv, os.X_OK):
        pytest.skip("uv is not installed (make installs it into .tools/)")
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-hashes", "--no-default-groups", "--group", "run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    names = {line.split("==")[0].strip() for line in exported.splitlines() if "==" in line}
    assert {"fastapi", "uvicorn", "aio-pika", "asyncpg"} <= names
    assert "-e ./libs/devtools" in exported
    assert not names & {"checkov", "pact-python", "mypy", "ruff", "pytest", "playwright"}
