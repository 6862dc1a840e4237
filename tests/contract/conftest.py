"""Fixtures for the contract tests: where the pact is written, and the providers to verify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shop_catalog.settings import CatalogSettings
from tests.contract.catalog_pact import EXPECTATIONS, PACT_FILE, recorded_descriptions, run_consumer
from tests.contract.provider import CatalogDatabaseStates
from tests.support.processes import ServiceProcess, free_port


@pytest.fixture(scope="session", autouse=True)
def _no_pact_telemetry() -> Iterator[None]:
    """Pact's core otherwise reports anonymous usage to Google Analytics over the network."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PACT_DO_NOT_TRACK", "true")
        yield


@pytest.fixture(scope="session")
def pact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the consumer tests write the pact: a per-session temp dir, never the repo."""
    return tmp_path_factory.mktemp("pacts")


@pytest.fixture
async def orders_pact(pact_dir: Path) -> Path:
    """The pact file the consumer tests wrote.

    Interactions whose consumer test did not run (e.g. `-k provider`) are recorded here by
    the same code, so a provider test never verifies a partial pact.
    """
    path = pact_dir / PACT_FILE
    recorded = recorded_descriptions(path)
    for expectation in EXPECTATIONS:
        if expectation.description not in recorded:
            await run_consumer(expectation, pact_dir)
    return path


@pytest.fixture(scope="module")
def catalog_url(catalog_settings: CatalogSettings) -> Iterator[str]:
    """A real `catalog-api` process on a free loopback port, against the session's database."""
    port = free_port()
    assert catalog_settings.jwt_secret is not None
    env = {
        "CATALOG_PORT": str(port),
        "CATALOG_DATABASE_URL": catalog_settings.database_url,
        "CATALOG_AMQP_URL": catalog_settings.amqp_url.get_secret_value(),
        "CATALOG_JWT_SECRET": catalog_settings.jwt_secret.get_secret_value(),
        "CATALOG_LOG_LEVEL": "WARNING",
    }
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess("catalog-api", env, ready_url=f"{url}/livez")
    try:
        process.start()
        yield url
    finally:
        process.stop()
        process.close()


@pytest.fixture(scope="module")
def catalog_states(pg_admin_url: str) -> CatalogDatabaseStates:
    return CatalogDatabaseStates(pg_admin_url.replace("postgresql+asyncpg", "postgresql", 1))
