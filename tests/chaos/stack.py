"""The system under faults: its own database, roles, broker vhost and the four processes.

Everything here is created for one run and removed at its end, also when the run fails or is
interrupted: the processes are stopped, a private broker node is stopped and its directory
deleted, the database is dropped (WITH FORCE) and the roles with it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from shop_common.auth import issue_dev_token
from shop_common.db.migrations import upgrade
from shop_common.db.provision import ServiceDatabase, admin_dsn, provision
from tests.support import TEST_JWT_SECRET
from tests.support.broker import Broker, PrivateBroker, SharedBroker, private_broker_scripts
from tests.support.processes import ServiceProcess, free_port

SERVICES = ("catalog", "orders")
PROCESSES = ("catalog-worker", "orders-worker", "catalog-api", "orders-api")
START_TIMEOUT_SECONDS = 60.0


@dataclass
class ChaosStack:
    run_id: str
    database: str
    roles: dict[str, str]
    vhost: str
    broker: Broker
    processes: dict[str, ServiceProcess]
    catalog_url: str
    orders_url: str
    admin_dsn: str  # superuser, on this run's database
    broker_note: str

    def token(self, subject: str, role: str) -> str:
        return issue_dev_token(subject=subject, roles=[role], secret=TEST_JWT_SECRET)

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.admin_dsn)

    async def restart(self, name: str, *, down_seconds: float) -> None:
        """SIGKILL `name`, leave it down a while, start it and wait until it is ready."""
        process = self.processes[name]
        await asyncio.to_thread(process.kill)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(process.start, START_TIMEOUT_SECONDS)

    async def terminate_backends(self) -> int:
        """`pg_terminate_backend` every connection the services' roles hold to this database."""
        conn = await self.connect()
        try:
            terminated: int = await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND usename = ANY($2::text[]) AND pid <> pg_backend_pid()",
                self.database,
                list(self.roles.values()),
            )
        finally:
            await conn.close()
        return terminated

    async def create_product(self, http: httpx.AsyncClient, stock: int) -> str:
        response = await http.post(
            f"{self.catalog_url}/v1/products",
            json={
                "sku": f"CHAOS-{uuid.uuid4().hex[:12]}",
                "name": "Chaos product",
                "price_cents": 1000,
                "currency": "EUR",
                "stock_available": stock,
            },
            headers={"Authorization": f"Bearer {self.token('chaos-admin', 'admin')}"},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def choose_broker(*, private: bool, vhost: str) -> tuple[Broker, str]:
    """A private node when we can run one (and are asked to), else the shared broker."""
    shared = SharedBroker(os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672"))
    if not private:
        return shared, "the shared broker (as asked): no broker restarts"
    scripts = private_broker_scripts()
    if isinstance(scripts, str):
        return shared, f"the shared broker, so no broker restarts: {scripts}"
    broker = PrivateBroker(*scripts, vhost=vhost)
    return broker, broker.description


@asynccontextmanager
async def chaos_stack(
    *, private_broker: bool = True, log_dir: Path | None = None
) -> AsyncIterator[ChaosStack]:
    """Provision, start, yield; then stop and remove everything, whatever happened."""
    run_id = uuid.uuid4().hex[:8]
    # The suite's superuser (root conftest.py), else the one provisioning uses.
    superuser = os.environ.get("TEST_PG_ADMIN_DSN") or admin_dsn()
    database = f"shop_chaos_{run_id}"
    roles = {service: f"{service}_chaos_{run_id}" for service in SERVICES}
    vhost = f"shop_chaos_{run_id}"
    broker, note = choose_broker(private=private_broker, vhost=vhost)
    processes: dict[str, ServiceProcess] = {}

    def last_resort() -> None:
        """At interpreter exit, if the clean-up below never ran (an interrupt that left this
        coroutine suspended): stop what this run started all the same."""
        for process in processes.values():
            process.thaw()
            process.kill()
        with contextlib.suppress(Exception):
            broker.stop()
        with contextlib.suppress(Exception):
            asyncio.run(_drop_database(superuser, database, list(roles.values())))

    atexit.register(last_resort)
    async with AsyncExitStack() as cleanup:
        cleanup.callback(atexit.unregister, last_resort)
        cleanup.push_async_callback(_drop_database, superuser, database, list(roles.values()))
        cleanup.push_async_callback(asyncio.to_thread, broker.stop)
        if isinstance(broker, SharedBroker):
            await asyncio.to_thread(broker.add_vhost, vhost)
            cleanup.push_async_callback(asyncio.to_thread, broker.delete_vhost, vhost)
        urls = _database_urls(superuser, database, roles)
        started, catalog_url, orders_url = _processes(urls, broker.url(vhost))
        processes.update(started)
        cleanup.push_async_callback(asyncio.to_thread, _stop_all, processes, log_dir)

        async def database_then_processes() -> None:
            await _migrate(superuser, database, roles, urls)
            # They wait for a private broker still booting by themselves (they reconnect).
            await asyncio.gather(
                *(asyncio.to_thread(p.start, START_TIMEOUT_SECONDS) for p in processes.values())
            )

        booting = (
            asyncio.to_thread(broker.start)
            if isinstance(broker, PrivateBroker)
            else asyncio.sleep(0)
        )
        await asyncio.gather(database_then_processes(), booting)
        yield ChaosStack(
            run_id=run_id,
            database=database,
            roles=roles,
            vhost=vhost,
            broker=broker,
            processes=processes,
            catalog_url=catalog_url,
            orders_url=orders_url,
            admin_dsn=_on_database(superuser, database),
            broker_note=note,
        )


def _database_urls(superuser: str, database: str, roles: dict[str, str]) -> dict[str, str]:
    host = superuser.split("@", 1)[1].rsplit("/", 1)[0]
    return {
        service: f"postgresql+asyncpg://{role}@{host}/{database}" for service, role in roles.items()
    }


async def _migrate(
    superuser: str, database: str, roles: dict[str, str], urls: dict[str, str]
) -> None:
    """The database, each service's role and schema, and its migrations."""
    for service, role in roles.items():
        await provision(superuser, ServiceDatabase(database=database, schema=service, role=role))
        # Alembic runs its own event loop, and its `context` is process-global: one migration
        # at a time, each in a thread of its own.
        await asyncio.to_thread(upgrade, f"shop_{service}", urls[service])


def _processes(
    db_urls: dict[str, str], amqp_url: str
) -> tuple[dict[str, ServiceProcess], str, str]:
    ports = {name: free_port() for name in PROCESSES}
    catalog_url = f"http://127.0.0.1:{ports['catalog-api']}"
    orders_url = f"http://127.0.0.1:{ports['orders-api']}"

    def env(service: str) -> dict[str, str]:
        prefix = service.upper()
        return {
            f"{prefix}_DATABASE_URL": db_urls[service],
            f"{prefix}_AMQP_URL": amqp_url,
            f"{prefix}_JWT_SECRET": TEST_JWT_SECRET,
            f"{prefix}_PORT": str(ports[f"{service}-api"]),
            f"{prefix}_WORKER_PORT": str(ports[f"{service}-worker"]),
            # Small pools: this stack shares the server with the rest of the suite.
            f"{prefix}_DB_POOL_SIZE": "4",
            f"{prefix}_DB_MAX_OVERFLOW": "4",
            f"{prefix}_LOG_LEVEL": "INFO",
        }

    catalog, orders = env("catalog"), {**env("orders"), "ORDERS_CATALOG_URL": catalog_url}
    processes = {
        "catalog-worker": ServiceProcess(
            "catalog-worker", catalog, f"http://127.0.0.1:{ports['catalog-worker']}/readyz"
        ),
        "orders-worker": ServiceProcess(
            "orders-worker", orders, f"http://127.0.0.1:{ports['orders-worker']}/readyz"
        ),
        "catalog-api": ServiceProcess("catalog-api", catalog, f"{catalog_url}/readyz"),
        "orders-api": ServiceProcess("orders-api", orders, f"{orders_url}/readyz"),
    }
    return processes, catalog_url, orders_url


def _stop_all(processes: dict[str, ServiceProcess], log_dir: Path | None) -> None:
    with ThreadPoolExecutor(max_workers=len(processes)) as pool:
        list(pool.map(lambda process: process.stop(timeout=10), processes.values()))
    for name, process in processes.items():
        if log_dir is not None and process.log.exists():
            log_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(process.log, log_dir / f"{name}.log")
        process.close()


async def _drop_database(superuser: str, database: str, roles: list[str]) -> None:
    conn = await asyncpg.connect(_on_database(superuser, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in roles:
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await conn.close()


def _on_database(dsn: str, database: str) -> str:
    return f"{dsn.rsplit('/', 1)[0]}/{database}".replace("postgresql+asyncpg://", "postgresql://")
