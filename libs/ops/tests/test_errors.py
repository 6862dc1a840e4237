"""What an operator sees when shop-ops cannot reach something: one line and exit 1."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from shop_ops.cli import app

pytestmark = pytest.mark.integration

NOWHERE_DB = "postgresql+asyncpg://orders_svc:s3cret@127.0.0.1:1/shop"
NOWHERE_MQ = "amqp://guest:s3cret@127.0.0.1:1/"


def test_an_unreachable_database_is_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(
        app, ["outbox", "status", "--service", "orders"], env={"ORDERS_DATABASE_URL": NOWHERE_DB}
    )

    assert result.exit_code == 1
    assert result.stderr.startswith("shop-ops: cannot reach a database or the broker")
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output


def test_an_unreachable_broker_is_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(
        app, ["parked", "list", "--service", "catalog"], env={"CATALOG_AMQP_URL": NOWHERE_MQ}
    )

    assert result.exit_code == 1
    assert result.stderr.startswith("shop-ops: cannot reach a database or the broker")
    assert "s3cret" not in result.output


def test_a_vhost_without_the_services_topology_says_so(own_vhost: str) -> None:
    result = CliRunner().invoke(
        app, ["parked", "list", "--service", "orders"], env={"ORDERS_AMQP_URL": own_vhost}
    )

    assert result.exit_code == 1
    assert "is the worker's topology declared?" in result.stderr
