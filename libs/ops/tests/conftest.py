"""Fixtures for shop-ops' own tests: a broker vhost where the test owns the services' queues."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def own_vhost() -> Iterator[str]:
    """A vhost of shop-ops' tests' own: shop-ops names queues after the service, so a test
    that declares `catalog.events` itself needs a broker nobody else uses (only
    test_parked_cli declares anything in it: catalog's queues)."""
    vhost = f"shop_t_ops_{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{AMQP_BASE}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)
