"""`shop-dev`: the local stack behind `make up` (provision, migrate, seed, run, stop on Ctrl-C).

Dev tooling only. It names the services' console scripts but imports no service code, so
the rule that libs/common never imports a service still holds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
import httpx

from shop_common.auth.tokens import issue_dev_token
from shop_common.db.provision import ServiceDatabase, provision

ADMIN_DSN = os.environ.get(
    "PROVISION_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("SHOP_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
LOG_DIR = Path(".run")
READY_TIMEOUT_SECONDS = 60
SERVICES = ("catalog", "orders")


@dataclass
class Process:
    name: str
    argv: list[str]
    ready_url: str | None
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None


def _say(message: str) -> None:
    print(f"[make up] {message}", flush=True)  # noqa: T201


def _fail(message: str) -> None:
    print(f"[make up] ERROR: {message}", file=sys.stderr, flush=True)  # noqa: T201
    sys.exit(1)


async def _check_infrastructure() -> None:
    try:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _fail(
            f"PostgreSQL is not reachable as a superuser at {ADMIN_DSN} ({exc!r}).\n"
            "  Start it (Debian: `pg_ctlcluster 15 main start`) or point "
            "PROVISION_DATABASE_URL at a superuser DSN, then run `make up` again."
        )
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        await connection.close()
    except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
        _fail(
            f"RabbitMQ is not reachable at {AMQP_URL} ({exc!r}).\n"
            "  Start it (`rabbitmq-server -detached`) or set SHOP_AMQP_URL, CATALOG_AMQP_URL "
            "and ORDERS_AMQP_URL, then run `make up` again."
        )


def _run_step(argv: list[str]) -> None:
    result = subprocess.run(argv, check=False)  # noqa: S603
    if result.returncode != 0:
        _fail(f"`{' '.join(argv)}` failed with exit code {result.returncode}")


def _start(process: Process) -> None:
    LOG_DIR.mkdir(exist_ok=True)
    log = (LOG_DIR / f"{process.name}.log").open("ab")
    process.popen = subprocess.Popen(  # noqa: S603
        process.argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **process.env},
        start_new_session=True,
    )


def _wait_ready(processes: list[Process]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending = [p for p in processes if p.ready_url]
    while pending:
        for process in list(pending):
            assert process.popen is not None
            assert process.ready_url is not None
            if process.popen.poll() is not None:
                _fail(f"{process.name} exited early; see {LOG_DIR / process.name}.log")
            try:
                if httpx.get(process.ready_url, timeout=1).status_code == 200:
                    pending.remove(process)
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            names = ", ".join(p.name for p in pending)
            _fail(f"not ready after {READY_TIMEOUT_SECONDS}s: {names}; see {LOG_DIR}/")
        time.sleep(0.3)


def _stop(processes: list[Process]) -> None:
    for process in processes:
        if process.popen and process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        if process.popen is None:
            continue
        try:
            process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()
    _say("stopped all processes")


def _processes() -> list[Process]:
    catalog, orders = _url("CATALOG_PORT", "8001"), _url("ORDERS_PORT", "8002")
    catalog_worker = _url("CATALOG_WORKER_PORT", "9101")
    orders_worker = _url("ORDERS_WORKER_PORT", "9102")
    return [
        Process("catalog-worker", ["catalog-worker"], f"{catalog_worker}/readyz"),
        Process("orders-worker", ["orders-worker"], f"{orders_worker}/readyz"),
        Process("catalog-api", ["catalog-api"], f"{catalog}/readyz"),
        Process("orders-api", ["orders-api"], f"{orders}/readyz", {"ORDERS_CATALOG_URL": catalog}),
    ]


def _url(port_variable: str, default: str) -> str:
    return f"http://127.0.0.1:{os.environ.get(port_variable, default)}"


def main() -> None:
    asyncio.run(_check_infrastructure())
    for service in SERVICES:
        asyncio.run(
            provision(
                ADMIN_DSN,
                ServiceDatabase(database="shop", schema=service, role=f"{service}_svc"),
            )
        )
        _run_step([f"{service}-migrate"])
    _say("roles, schemas and migrations are in place")
    _run_step(["catalog-seed"])

    processes = _processes()
    workers = [p for p in processes if p.name.endswith("-worker")]
    apis = [p for p in processes if p not in workers]
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        # Workers first: they declare the RabbitMQ topology (queues, bindings) on start-up,
        # so events written by the APIs are routable from the first request.
        for group in (workers, apis):
            for process in group:
                _start(process)
            _wait_ready(group)
        _print_banner()
        while not stopping:
            for process in processes:
                assert process.popen is not None
                if process.popen.poll() is not None:
                    _say(f"{process.name} exited ({process.popen.returncode}); stopping the rest")
                    stopping = True
            time.sleep(0.5)
    finally:
        _stop(processes)


def _print_banner() -> None:
    secret = os.environ["JWT_SECRET"]
    admin = issue_dev_token(subject="admin", roles=["admin"], secret=secret)
    customer = issue_dev_token(subject="alice", roles=["customer"], secret=secret)
    catalog, orders = _url("CATALOG_PORT", "8001"), _url("ORDERS_PORT", "8002")
    _say("ready. Ctrl-C stops everything.")
    print(  # noqa: T201
        f"""
  Catalog API   {catalog}/v1/products    docs: {catalog}/docs
  Orders API    {orders}/v1/orders      docs: {orders}/docs
  Workers       {_url("CATALOG_WORKER_PORT", "9101")}/metrics (catalog)
                {_url("ORDERS_WORKER_PORT", "9102")}/metrics (orders)
  Logs          {LOG_DIR}/<process>.log

  export ADMIN_TOKEN={admin}
  export CUSTOMER_TOKEN={customer}
""",
        flush=True,
    )
