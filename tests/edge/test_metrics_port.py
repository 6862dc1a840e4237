"""An API process serves Prometheus on its metrics port and only there; a taken metrics
port stops it at start-up, as a taken API port does."""

from __future__ import annotations

import socket
import subprocess

import httpx
import pytest

from tests.support import TEST_JWT_SECRET
from tests.support.processes import BIN, ServiceProcess, free_port

pytestmark = pytest.mark.e2e

# Readiness needs no database here: only /livez and /metrics are asked for.
NO_DATABASE = "postgresql+asyncpg://nobody@127.0.0.1:1/none"


def test_metrics_are_on_the_metrics_port_only() -> None:
    api, metrics = free_port(), free_port()
    process = ServiceProcess(
        "catalog-api",
        {
            "CATALOG_DATABASE_URL": NO_DATABASE,
            "CATALOG_JWT_SECRET": TEST_JWT_SECRET,
            "CATALOG_PORT": str(api),
            "CATALOG_METRICS_PORT": str(metrics),
        },
        f"http://127.0.0.1:{api}/livez",
    )
    try:
        process.start(timeout=30)
        scrape = httpx.get(f"http://127.0.0.1:{metrics}/metrics")
        public = httpx.get(f"http://127.0.0.1:{api}/metrics")
        elsewhere = httpx.get(f"http://127.0.0.1:{metrics}/livez")
    finally:
        process.close()

    assert scrape.status_code == 200
    assert "http_requests_total" in scrape.text
    assert public.status_code == 404
    assert elsewhere.status_code == 404  # the metrics port serves metrics, nothing else


def test_a_taken_metrics_port_stops_the_api_at_start_up() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(BIN / "catalog-api")],
            env={
                "CATALOG_DATABASE_URL": NO_DATABASE,
                "CATALOG_JWT_SECRET": TEST_JWT_SECRET,
                "CATALOG_PORT": str(free_port()),
                "CATALOG_METRICS_PORT": str(port),
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    assert done.returncode == 3, done.stdout + done.stderr
    assert f"cannot listen for metrics on 127.0.0.1:{port}" in done.stdout
