"""Settings shared by every process: the connection ceiling the budget counts, and the
combinations refused at start-up."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from shop_common.settings import PROBE_CONNECTIONS, RELAY_CONNECTIONS, ServiceSettings


def settings(**overrides: Any) -> ServiceSettings:
    return ServiceSettings(
        port=1,
        worker_port=0,
        metrics_port=0,
        database_url="-",
        db_schema="-",
        jwt_secret=SecretStr("x" * 32),
        **overrides,
    )


def test_the_ceiling_counts_every_pool_and_the_probe() -> None:
    found = settings(
        db_pool_size=3,
        db_max_overflow=2,
        db_driver_pool_size=5,
        worker_prefetch=4,
        worker_db_pool_size=6,
        worker_db_max_overflow=1,
    )

    assert PROBE_CONNECTIONS == 1
    assert found.db_connection_ceiling("api") == 3 + 2 + 5 + 1
    assert found.db_connection_ceiling("worker") == 6 + 1 + 1


def test_a_worker_pool_smaller_than_its_deliveries_is_refused() -> None:
    settings(worker_prefetch=4, worker_db_pool_size=5, worker_db_max_overflow=1)  # 4 + 2 fit
    with pytest.raises(ValidationError, match="WORKER_DB_POOL_SIZE"):
        settings(worker_prefetch=4, worker_db_pool_size=4, worker_db_max_overflow=1)
    assert RELAY_CONNECTIONS == 2


def test_the_public_base_url_must_be_an_http_url() -> None:
    assert str(settings(public_base_url="https://shop.example.com").public_base_url) == (
        "https://shop.example.com/"
    )
    with pytest.raises(ValidationError):
        settings(public_base_url="shop.example.com")
