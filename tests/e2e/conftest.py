"""The whole system as four real processes on loopback, against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from tests.support import TEST_JWT_SECRET, ServiceDb
from tests.support.e2e import Shop, Stack
from tests.support.processes import ServiceProcess, free_port

PROCESSES = ("catalog-api", "catalog-worker", "orders-api", "orders-worker")


@pytest.fixture(scope="session")
def stack(
    provision_service: Callable[[str], ServiceDb],
    amqp_url: str,
    make_token: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    catalog_db, orders_db = provision_service("catalog"), provision_service("orders")
    names = ("catalog", "catalog_w", "catalog_m", "orders", "orders_w", "orders_m")
    ports = {name: free_port() for name in names}
    catalog_url = f"http://127.0.0.1:{ports['catalog']}"
    orders_url = f"http://127.0.0.1:{ports['orders']}"
    catalog_env = {
        "CATALOG_DATABASE_URL": catalog_db.url,
        "CATALOG_AMQP_URL": amqp_url,
        "CATALOG_JWT_SECRET": TEST_JWT_SECRET,
        "CATALOG_PORT": str(ports["catalog"]),
        "CATALOG_WORKER_PORT": str(ports["catalog_w"]),
        "CATALOG_METRICS_PORT": str(ports["catalog_m"]),
        "CATALOG_LOG_LEVEL": "INFO",
    }
    orders_env = {
        "ORDERS_DATABASE_URL": orders_db.url,
        "ORDERS_AMQP_URL": amqp_url,
        "ORDERS_JWT_SECRET": TEST_JWT_SECRET,
        "ORDERS_PORT": str(ports["orders"]),
        "ORDERS_WORKER_PORT": str(ports["orders_w"]),
        "ORDERS_METRICS_PORT": str(ports["orders_m"]),
        "ORDERS_CATALOG_URL": catalog_url,
        "ORDERS_LOG_LEVEL": "INFO",
    }
    # Every process exports its spans, each to a file of its own (shop_common.tracing),
    # sampled as in production: all of a sampled caller's trace, and its own new traces.
    trace_dir = tmp_path_factory.mktemp("traces")
    traces = {name: trace_dir / f"{name}.jsonl" for name in PROCESSES}

    def env(name: str, service_env: dict[str, str]) -> dict[str, str]:
        return {**service_env, "SHOP_TRACES_FILE": str(traces[name])}

    processes = {
        "catalog-worker": ServiceProcess(
            "catalog-worker",
            env("catalog-worker", catalog_env),
            f"http://127.0.0.1:{ports['catalog_w']}/readyz",
        ),
        "orders-worker": ServiceProcess(
            "orders-worker",
            env("orders-worker", orders_env),
            f"http://127.0.0.1:{ports['orders_w']}/readyz",
        ),
        "catalog-api": ServiceProcess(
            "catalog-api", env("catalog-api", catalog_env), f"{catalog_url}/readyz"
        ),
        "orders-api": ServiceProcess(
            "orders-api", env("orders-api", orders_env), f"{orders_url}/readyz"
        ),
    }
    try:
        for process in processes.values():
            process.start(timeout=60)
        yield Stack(
            processes=processes,
            catalog_url=catalog_url,
            orders_url=orders_url,
            admin={"Authorization": f"Bearer {make_token('e2e-admin', 'admin')}"},
            customer={"Authorization": f"Bearer {make_token('e2e-alice', 'customer')}"},
            vhost=amqp_url.rsplit("/", 1)[1],
            traces=traces,
            metrics={
                name: f"http://127.0.0.1:{ports[key]}/metrics"
                for name, key in (
                    ("catalog-api", "catalog_m"),
                    ("catalog-worker", "catalog_w"),
                    ("orders-api", "orders_m"),
                    ("orders-worker", "orders_w"),
                )
            },
        )
    finally:
        for process in processes.values():
            process.stop(timeout=10)
        for name, process in processes.items():
            if process.popen is not None and process.popen.returncode not in (0, None):
                print(f"--- {name} exited {process.popen.returncode}:\n{process.output()}")
            process.close()


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def shop(http: httpx.AsyncClient, stack: Stack) -> Shop:
    return Shop(http, stack)
