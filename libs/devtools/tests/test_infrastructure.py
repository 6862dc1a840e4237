"""When PostgreSQL or RabbitMQ is missing or refuses it, `make up` says what to do (no traceback).

Against the real servers on 127.0.0.1: a port where nothing listens, a user that does not
exist, a role that is no superuser, a wrong password, a vhost that does not exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shop_common.db.provision import DEFAULT_ADMIN_DSN
from shop_dev.errors import DevStackError
from shop_dev.infrastructure import check_postgres, check_rabbitmq, check_service_login
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", DEFAULT_ADMIN_DSN)
AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
NOWHERE = free_port()  # bound a moment ago and closed: nothing listens there


@pytest.fixture
async def plain_role() -> AsyncIterator[str]:
    """A login role that is not a superuser."""
    name = f"shop_dev_t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE ROLE "{name}" LOGIN')
        yield name
    finally:
        await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        await conn.close()


async def test_postgres_not_running_says_how_to_start_it_or_what_to_set() -> None:
    with pytest.raises(DevStackError) as caught:
        await check_postgres(f"postgresql://postgres@127.0.0.1:{NOWHERE}/postgres")

    message = str(caught.value)
    assert f"PostgreSQL does not answer at 127.0.0.1:{NOWHERE}" in message
    assert "nothing listens there" in message
    assert "systemctl start postgresql" in message
    assert "PROVISION_DATABASE_URL" in message


async def test_a_refused_superuser_login_names_both_ways_out() -> None:
    dsn = PG_ADMIN_DSN.replace("//postgres", "//no_such_superuser", 1)
    if dsn == PG_ADMIN_DSN:
        pytest.skip("TEST_PG_ADMIN_DSN does not log in as postgres")
    with pytest.raises(DevStackError) as caught:
        await check_postgres(dsn)

    message = str(caught.value)
    assert "PostgreSQL refused the superuser login" in message
    assert "PROVISION_DATABASE_URL=postgresql://postgres:<password>@" in message
    assert "trust" in message


async def test_a_login_that_is_no_superuser_is_refused(plain_role: str) -> None:
    dsn = PG_ADMIN_DSN.replace("//postgres", f"//{plain_role}", 1)
    if dsn == PG_ADMIN_DSN:
        pytest.skip("TEST_PG_ADMIN_DSN does not log in as postgres")
    with pytest.raises(DevStackError, match="not as a superuser"):
        await check_postgres(dsn)


async def test_a_service_role_the_server_refuses_says_where_its_password_goes() -> None:
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    with pytest.raises(DevStackError) as caught:
        await check_service_login(
            f"postgresql+asyncpg://no_such_svc@{host}/postgres", "CATALOG_DATABASE_URL"
        )

    message = str(caught.value)
    assert "PostgreSQL refused the service login" in message
    assert "CATALOG_DATABASE_URL=postgresql+asyncpg://no_such_svc:<password>@" in message


async def test_rabbitmq_not_running_says_how_to_start_it_or_what_to_set() -> None:
    with pytest.raises(DevStackError) as caught:
        await check_rabbitmq(f"amqp://guest:guest@127.0.0.1:{NOWHERE}/", ["CATALOG_AMQP_URL"])

    message = str(caught.value)
    assert f"RabbitMQ does not answer at 127.0.0.1:{NOWHERE}" in message
    assert "systemctl start rabbitmq-server" in message
    assert "CATALOG_AMQP_URL" in message
    assert "guest:***@" in message  # never the password


async def test_rabbitmq_refusing_the_password_says_how_to_add_a_user() -> None:
    url = AMQP_BASE.replace(":guest@", ":wrong-password@", 1) + "/"
    if ":wrong-password@" not in url:
        pytest.skip("TEST_AMQP_BASE does not log in as guest")
    with pytest.raises(DevStackError) as caught:
        await check_rabbitmq(url, ["CATALOG_AMQP_URL", "ORDERS_AMQP_URL"])

    message = str(caught.value)
    assert "RabbitMQ refused the login" in message
    assert "rabbitmqctl add_user" in message
    assert "CATALOG_AMQP_URL and ORDERS_AMQP_URL" in message
    assert "wrong-password" not in message


async def test_a_missing_vhost_says_how_to_create_it() -> None:
    vhost = f"shop_dev_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(DevStackError) as caught:
        await check_rabbitmq(f"{AMQP_BASE}/{vhost}", ["ORDERS_AMQP_URL"])

    assert f"rabbitmqctl add_vhost {vhost}" in str(caught.value)


def test_make_up_prints_the_message_and_no_traceback(tmp_path: Path) -> None:
    """Through the real entry point (what `make up` runs), with every port free."""
    env = {
        **os.environ,
        "PROVISION_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{NOWHERE}/postgres",
        "SHOP_DEV_RUN_DIR": str(tmp_path),
        "CATALOG_JWT_SECRET": "x" * 32,
        "ORDERS_JWT_SECRET": "x" * 32,
        **{
            f"{svc}_{kind}": str(free_port())
            for svc in ("CATALOG", "ORDERS")
            for kind in ("PORT", "WORKER_PORT", "METRICS_PORT")
        },
    }
    result = subprocess.run(
        [sys.executable, "-m", "shop_dev.cli", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("[make up] ERROR: PostgreSQL does not answer"), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "2/6 provision" in result.stdout
