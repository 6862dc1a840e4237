"""`make up` takes ports, URLs, roles and token settings from the services' settings classes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shop_catalog.settings import CatalogSettings
from shop_common.auth import Principal, TokenVerifier
from shop_common.db.provision import DEFAULT_ADMIN_DSN, ServiceDatabase, admin_dsn
from shop_dev.infrastructure import without_password
from shop_dev.stack import DevStackError, Stack, http_url
from shop_dev.up import banner
from shop_orders.settings import OrdersSettings

SECRET = "devtools-test-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test sets (the Makefile exports the dev secrets to every test run)."""
    for name in list(os.environ):
        if name.startswith(("CATALOG_", "ORDERS_", "JWT_", "PROVISION_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CATALOG_JWT_SECRET", SECRET)
    monkeypatch.setenv("ORDERS_JWT_SECRET", SECRET)


def test_defaults_are_the_settings_classes_defaults() -> None:
    stack = Stack.from_environment()
    catalog, orders = CatalogSettings(), OrdersSettings()

    assert stack.catalog.api_url == f"http://{catalog.host}:{catalog.port}"
    assert stack.orders.api_url == f"http://{orders.host}:{orders.port}"
    assert [(p.name, p.ready_url) for p in stack.workers()] == [
        ("catalog-worker", f"http://{catalog.host}:{catalog.worker_port}/readyz"),
        ("orders-worker", f"http://{orders.host}:{orders.worker_port}/readyz"),
    ]
    assert [(p.name, p.ready_url) for p in stack.apis()] == [
        ("catalog-api", f"http://{catalog.host}:{catalog.port}/readyz"),
        ("orders-api", f"http://{orders.host}:{orders.port}/readyz"),
    ]


def test_ports_and_hosts_follow_the_services_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_PORT", "18001")
    monkeypatch.setenv("CATALOG_WORKER_PORT", "19101")
    monkeypatch.setenv("ORDERS_HOST", "0.0.0.0")
    monkeypatch.setenv("ORDERS_PORT", "18002")

    stack = Stack.from_environment()
    catalog_api, orders_api = stack.apis()

    assert catalog_api.ready_url == "http://127.0.0.1:18001/readyz"
    assert stack.workers()[0].ready_url == "http://127.0.0.1:19101/readyz"
    assert orders_api.ready_url == "http://127.0.0.1:18002/readyz"
    # Orders is pointed at the Catalog this stack runs.
    assert orders_api.env["ORDERS_CATALOG_URL"] == "http://127.0.0.1:18001"


def test_explicit_settings_win_over_the_stacks_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_CATALOG_URL", "http://catalog.example:8001")
    monkeypatch.setenv("CATALOG_ACCESS_LOG", "false")

    catalog_api, orders_api = Stack.from_environment().apis()

    assert catalog_api.env == {}
    assert orders_api.env == {"ORDERS_ACCESS_LOG": "true"}


def test_roles_and_schemas_come_from_the_database_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_DATABASE_URL", "postgresql+asyncpg://o_role:pw@127.0.0.1/shop2")

    stack = Stack.from_environment()

    assert stack.catalog.database() == ServiceDatabase(
        database="shop", schema="catalog", role="catalog_svc"
    )
    assert stack.orders.database() == ServiceDatabase(
        database="shop2", schema="orders", role="o_role", password="pw"
    )


def test_a_missing_secret_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERS_JWT_SECRET")

    with pytest.raises(DevStackError, match="ORDERS_JWT_SECRET") as caught:
        Stack.from_environment()
    assert "JWT_SECRET" in str(caught.value)
    assert "make" in str(caught.value)


async def test_dev_tokens_are_accepted_by_both_services() -> None:
    stack = Stack.from_environment()
    tokens = stack.dev_tokens()

    for service in stack.services:
        verifier = TokenVerifier(service.settings)
        assert await verifier.verify(tokens["ADMIN_TOKEN"]) == Principal(
            subject="admin", roles=frozenset({"admin"})
        )
        assert await verifier.verify(tokens["CUSTOMER_TOKEN"]) == Principal(
            subject="alice", roles=frozenset({"customer"})
        )


def test_dev_tokens_need_one_signing_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_JWT_ISSUER", "someone-else")

    with pytest.raises(DevStackError, match="same JWT_SECRET, JWT_ISSUER and JWT_AUDIENCE"):
        Stack.from_environment().dev_tokens()


def test_banner_names_the_urls_and_the_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_WORKER_PORT", "19102")
    stack = Stack.from_environment()

    text = banner(stack, {"ADMIN_TOKEN": "a.b.c"}, Path(".run"))

    assert "http://127.0.0.1:8001/v1/products" in text
    assert "http://127.0.0.1:9201/metrics (catalog API)" in text
    assert (
        "http://127.0.0.1:9202/metrics (orders API), http://127.0.0.1:19102/metrics (worker)"
        in text
    )
    assert "  export ADMIN_TOKEN=a.b.c" in text


def test_one_superuser_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert admin_dsn() == DEFAULT_ADMIN_DSN
    monkeypatch.setenv("PROVISION_DATABASE_URL", "postgresql://root:secret@db:5433/postgres")
    assert admin_dsn() == "postgresql://root:secret@db:5433/postgres"
    assert without_password(admin_dsn()) == "postgresql://root:***@db:5433/postgres"


@pytest.mark.parametrize(
    ("host", "url"),
    [("127.0.0.1", "http://127.0.0.1:80"), ("::", "http://[::1]:80"), ("db", "http://db:80")],
)
def test_http_url(host: str, url: str) -> None:
    assert http_url(host, 80) == url


def test_importing_reads_no_environment() -> None:
    """Settings are read when `make up` runs, not when a module is imported."""
    result = subprocess.run(
        [sys.executable, "-c", "import shop_dev.up, shop_dev.tokens"],
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
