"""Both APIs as real processes on free ports, with their own database and vhost, for a browser.

Chromium is Debian's (`apt-get install chromium`; `.ci/run` installs it): Playwright drives
it through `executable_path` and never downloads a browser of its own. Where it is missing
the tests are skipped with the reason, except in CI (`CI=true`), where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from shop_common.db.migrations import upgrade
from shop_common.db.provision import DEFAULT_ADMIN_DSN, ServiceDatabase, provision
from tests.support import TEST_JWT_SECRET
from tests.support.processes import ServiceProcess, free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Screenshots: kept after the run for a person (or a CI artefact store) to look at.
ARTIFACTS = Path(os.environ.get("SHOP_TEST_ARTIFACTS", REPO / ".run" / "artifacts")) / "browser"
PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", DEFAULT_ADMIN_DSN)
AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")


@dataclass(frozen=True)
class Apis:
    catalog_url: str
    orders_url: str


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = (
            f"Chromium is not installed at {CHROMIUM} (Debian/Ubuntu: `apt-get install "
            "chromium`; or set CHROMIUM_PATH); .ci/run installs it"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the browser tests, not skip them")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    shots = sorted(ARTIFACTS.glob("*.png")) if ARTIFACTS.is_dir() else []
    if shots:
        terminalreporter.write_line(f"browser screenshots ({len(shots)}): {ARTIFACTS}/")


def _admin(sql: str, database: str = "postgres") -> None:
    async def run() -> None:
        conn = await asyncpg.connect(f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{database}")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def apis(chromium: Path) -> Iterator[Apis]:
    suffix = uuid.uuid4().hex[:10]
    database = vhost = f"shop_browser_{suffix}"
    roles = {service: f"{service}_browser_{suffix}" for service in ("catalog", "orders")}
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    urls = {s: f"postgresql+asyncpg://{role}@{host}/{database}" for s, role in roles.items()}
    ports = {"catalog": free_port(), "orders": free_port()}
    catalog_url = f"http://127.0.0.1:{ports['catalog']}"
    _rabbitmqctl("add_vhost", vhost)
    processes: list[ServiceProcess] = []
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        for service, role in roles.items():
            target = ServiceDatabase(database=database, schema=service, role=role)
            asyncio.run(provision(PG_ADMIN_DSN, target))
            upgrade(f"shop_{service}", urls[service])
        for service in ("catalog", "orders"):
            prefix = service.upper()
            env = {
                f"{prefix}_DATABASE_URL": urls[service],
                f"{prefix}_AMQP_URL": f"{AMQP_BASE}/{vhost}",
                f"{prefix}_JWT_SECRET": TEST_JWT_SECRET,
                f"{prefix}_PORT": str(ports[service]),
                f"{prefix}_WORKER_PORT": str(free_port()),
                f"{prefix}_DOCS_ENABLED": "true",
                "ORDERS_CATALOG_URL": catalog_url,
            }
            url = f"http://127.0.0.1:{ports[service]}"
            processes.append(ServiceProcess(f"{service}-api", env, f"{url}/readyz"))
        for process in processes:
            process.start(timeout=60)
        yield Apis(catalog_url=catalog_url, orders_url=f"http://127.0.0.1:{ports['orders']}")
    finally:
        for process in processes:
            process.stop(timeout=10)
            process.close()
        _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in roles.values():
            _admin(f'DROP ROLE IF EXISTS "{role}"')
        _rabbitmqctl("delete_vhost", vhost)
