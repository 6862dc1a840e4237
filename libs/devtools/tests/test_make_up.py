"""`make up`, `make down`, `make logs` and `make reset` as a developer runs them, through make.

Each test's stack has its own database, roles, vhost, ports and run directory (logs, pids),
so these tests never see or touch a developer's `make up` stack, nor another test run's.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest
from aiormq.exceptions import ChannelNotFoundEntity

from shop_common.db.provision import DEFAULT_ADMIN_DSN
from shop_dev.runstate import RunState, running_command
from tests.support.processes import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[3]
PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", DEFAULT_ADMIN_DSN)
AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
PG_HOST = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]


@dataclass
class DevStack:
    """Settings for one throwaway stack, as a developer would export them before `make up`."""

    name: str
    run_dir: Path
    env: dict[str, str]
    catalog_url: str
    orders_url: str
    vhost: str
    roles: tuple[str, str]
    outputs: list[str] = field(default_factory=list)

    def make(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", "-C", str(REPO), *args],
            env=self.env,
            stdin=subprocess.DEVNULL,  # as in CI: nobody to answer a question
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def tokens(self) -> dict[str, str]:
        text = (self.run_dir / "tokens.sh").read_text()
        return dict(re.findall(r"^export (\w+)=(\S+)$", text, re.MULTILINE))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


async def _admin(sql: str, database: str = "postgres") -> None:
    conn = await asyncpg.connect(f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{database}")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    suffix = uuid.uuid4().hex[:10]
    name, vhost = f"shop_dev_t_{suffix}", f"shop_dev_t_{suffix}"
    roles = (f"catalog_dev_t_{suffix}", f"orders_dev_t_{suffix}")
    run_dir = tmp_path_factory.mktemp("run")
    ports = {
        key: free_port()
        for key in ("catalog", "catalog_w", "catalog_m", "orders", "orders_w", "orders_m")
    }
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CATALOG_", "ORDERS_", "MAKE", "MFLAGS", "SHOP_DEV_"))
        or k.endswith("_JWT_SECRET")
    }
    env = {
        **inherited,
        "SHOP_DEV_RUN_DIR": str(run_dir),
        "PROVISION_DATABASE_URL": PG_ADMIN_DSN,
        "CATALOG_DATABASE_URL": f"postgresql+asyncpg://{roles[0]}@{PG_HOST}/{name}",
        "ORDERS_DATABASE_URL": f"postgresql+asyncpg://{roles[1]}@{PG_HOST}/{name}",
        "CATALOG_AMQP_URL": f"{AMQP_BASE}/{vhost}",
        "ORDERS_AMQP_URL": f"{AMQP_BASE}/{vhost}",
        "CATALOG_PORT": str(ports["catalog"]),
        "CATALOG_WORKER_PORT": str(ports["catalog_w"]),
        "CATALOG_METRICS_PORT": str(ports["catalog_m"]),
        "ORDERS_PORT": str(ports["orders"]),
        "ORDERS_WORKER_PORT": str(ports["orders_w"]),
        "ORDERS_METRICS_PORT": str(ports["orders_m"]),
    }
    _rabbitmqctl("add_vhost", vhost)
    stack = DevStack(
        name=name,
        run_dir=run_dir,
        env=env,
        catalog_url=f"http://127.0.0.1:{ports['catalog']}",
        orders_url=f"http://127.0.0.1:{ports['orders']}",
        vhost=vhost,
        roles=roles,
    )
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield stack
    finally:
        stack.make("down", timeout=90)  # whatever a failed test left running
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        for role in roles:
            asyncio.run(_admin(f'DROP ROLE IF EXISTS "{role}"'))
        _rabbitmqctl("delete_vhost", vhost)


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _place_order(stack: DevStack) -> str:
    tokens = stack.tokens()
    products = httpx.get(f"{stack.catalog_url}/v1/products?limit=1", timeout=10).json()
    product = products["items"][0]["id"]
    response = httpx.post(
        f"{stack.orders_url}/v1/orders",
        headers={
            "Authorization": f"Bearer {tokens['CUSTOMER_TOKEN']}",
            "Idempotency-Key": str(uuid.uuid4()),
        },
        json={"lines": [{"product_id": product, "quantity": 1}]},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id


def test_make_up_streams_the_saga_and_make_down_stops_it(dev_stack: DevStack) -> None:
    popen = subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(REPO), "up"],
        env=dev_stack.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # like `make up &`: our Ctrl-C never reaches it
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(popen.stdout or []), daemon=True)
    reader.start()
    output = lambda: "".join(lines)  # noqa: E731
    try:
        _wait_for(lambda: "ready in" in output() or popen.poll() is not None, 150, "ready")
        assert popen.poll() is None, output()
        for step in ("1/6 install", "2/6 provision", "3/6 migrate", "4/6 seed", "5/6 start"):
            assert f"[make up] {step}" in output()
        assert "6/6 ready: waiting for 200 from" in output()
        # The queues exist before the workers start: the seed's events are routed at once.
        assert "NO_ROUTE" not in (dev_stack.run_dir / "catalog-worker.log").read_text()

        order_id = _place_order(dev_stack)

        # The workers' lines for this order reach the console as they happen: Catalog
        # reserves the stock, Orders confirms.
        _wait_for(
            lambda: f"handled catalog.stock.reserved.v1 {order_id}" in output(),
            30,
            "the saga on the console",
        )
        console = output()
        assert re.search(rf"catalog-worker +INFO +.*orders\.order\.placed\.v1 {order_id}", console)
        assert re.search(r"orders-api +INFO +.*\"POST /v1/orders HTTP/1.1\" 201  req=", console)
        assert "\x1b[" not in console  # not a terminal: no colour
        state = RunState.load(dev_stack.run_dir)
        assert state is not None
        assert state.supervisor is not None
        assert len(state.alive()) == 5

        down = dev_stack.make("down")

        assert down.returncode == 0, down.stdout + down.stderr
        assert "[make down] stopped make up, catalog-worker" in down.stdout
        assert popen.wait(timeout=60) == 0
        reader.join(timeout=10)
        assert "[make up] stopped all processes" in output()
        assert not any(running_command(p.pid) for p in state.processes)
        assert RunState.load(dev_stack.run_dir) is None
    finally:
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGTERM)
            popen.wait(timeout=60)


async def _exists(url: str, kind: str, name: str) -> bool:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        if kind == "queue":
            await channel.declare_queue(name, passive=True)
        else:
            await channel.declare_exchange(name, passive=True)
        return True
    except ChannelNotFoundEntity:
        return False
    finally:
        await connection.close()


async def _postgres_objects(stack: DevStack) -> tuple[bool, list[str]]:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        database = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", stack.name)
        roles = await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", list(stack.roles)
        )
        return bool(database), sorted(r["rolname"] for r in roles)
    finally:
        await conn.close()


def test_detached_up_then_down_then_reset_drops_what_it_created(dev_stack: DevStack) -> None:
    up = dev_stack.make("up", "DETACH=1")

    assert up.returncode == 0, up.stdout + up.stderr
    assert "left running: `make logs` follows it, `make down` stops it" in up.stdout
    state = RunState.load(dev_stack.run_dir)
    assert state is not None
    assert state.supervisor is None
    assert [p.name for p in state.alive()] == [
        "catalog-worker",
        "orders-worker",
        "catalog-api",
        "orders-api",
    ]
    again = dev_stack.make("up", "DETACH=1")
    assert again.returncode != 0
    assert "a stack is already running" in again.stderr
    refused = dev_stack.make("reset", "YES=1")
    assert refused.returncode != 0
    assert "`make down` first" in refused.stderr

    # `make logs` shows the processes' last lines, readable, and keeps following.
    logs = subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(REPO), "logs", "LINES=5"],
        env=dev_stack.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        followed: list[str] = []
        threading.Thread(target=lambda: followed.extend(logs.stdout or []), daemon=True).start()
        order_id = _place_order(dev_stack)
        _wait_for(
            lambda: f"handled catalog.stock.reserved.v1 {order_id}" in "".join(followed),
            30,
            "make logs to follow the saga",
        )
        assert any(re.match(r"\d\d:\d\d:\d\d\.\d{3} catalog-api +INFO ", x) for x in followed)
    finally:
        os.killpg(logs.pid, signal.SIGTERM)
        logs.wait(timeout=30)

    down = dev_stack.make("down")

    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(running_command(p.pid) for p in state.processes)
    assert "nothing to stop" in dev_stack.make("down").stdout

    unanswered = dev_stack.make("reset")  # no stdin: it cannot ask, so it drops nothing
    assert unanswered.returncode != 0
    assert "make reset YES=1" in unanswered.stderr
    assert asyncio.run(_postgres_objects(dev_stack)) == (True, sorted(dev_stack.roles))

    reset = dev_stack.make("reset", "YES=1")

    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert f"dropped schema {dev_stack.name}.catalog" in reset.stdout
    assert f"dropped database {dev_stack.name}" in reset.stdout
    assert asyncio.run(_postgres_objects(dev_stack)) == (False, [])
    url = dev_stack.env["CATALOG_AMQP_URL"]
    for kind, name in [
        ("queue", "catalog.events"),
        ("queue", "orders.events.parking"),
        ("queue", "orders.events.retry.1000ms"),
        ("exchange", "shop.events"),
        ("exchange", "catalog.dlx"),
    ]:
        assert not asyncio.run(_exists(url, kind, name)), f"{kind} {name} is still there"
    assert "nothing to reset" in dev_stack.make("reset", "YES=1").stdout
