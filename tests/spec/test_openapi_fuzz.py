"""schemathesis, every phase and every check, against both APIs as real processes.

The configuration, with the deliberate deviations and their reasons, is `schemathesis.toml`
beside this file; docs/contracts.md explains it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.spec.conftest import SpecStack

CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).parent / "st"
pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("api", ["catalog", "orders"])
def test_schemathesis_finds_nothing(api: str, spec_stack: SpecStack, tmp_path: Path) -> None:
    url = spec_stack.catalog_url if api == "catalog" else spec_stack.orders_url
    spec_stack.seed_products()
    env = {
        **os.environ,
        "SPEC_ADMIN_TOKEN": spec_stack.admin_token,
        "SPEC_CUSTOMER_TOKEN": spec_stack.customer_token,
    }
    result = subprocess.run(
        [
            str(ST),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{url}/openapi.json",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
