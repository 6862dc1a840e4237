"""The system under test: the four service processes and the baseline, on free loopback ports.

Only the console scripts, the settings' environment variables and the HTTP contract are
used, so the bench survives changes inside the services.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
import httpx

from bench.infra import Infra
from bench.processes import Service, free_port
from shop_common.auth import issue_dev_token

BIN = Path(sys.executable).parent
BASELINE = Path(__file__).with_name("baseline.py")
LOGS = Path(__file__).resolve().parent.parent / ".run" / "bench"  # one file per process
# The services' queues (README); both must be empty before a phase starts.
QUEUES = ("catalog.events", "orders.events")
OUTBOXES = ("catalog.outbox", "orders.outbox")
AMPLE_STOCK = 1_000_000


@dataclass
class Stack:
    infra: Infra
    jwt_secret: str
    services: dict[str, Service] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    product_ids: list[str] = field(default_factory=list)

    @property
    def ours(self) -> list[Service]:
        return [s for name, s in self.services.items() if name != "baseline"]

    def token(self, subject: str, role: str = "customer") -> str:
        return issue_dev_token(subject=subject, roles=[role], secret=self.jwt_secret)

    def stop(self) -> None:
        """APIs first (no new work), then workers, then the baseline."""
        order = ["orders-api", "catalog-api", "orders-worker", "catalog-worker", "baseline"]
        for name in order:
            if name in self.services:
                self.services[name].stop()


def _clean_environ() -> dict[str, str]:
    # A developer's own CATALOG_*/ORDERS_* (or the Makefile's JWT secret) must not leak in.
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("CATALOG_", "ORDERS_", "BENCH_"))
    }


def build(infra: Infra) -> Stack:
    stack = Stack(infra=infra, jwt_secret=secrets.token_hex(32))
    ports = {
        name: free_port()
        for name in ("catalog", "catalog_w", "catalog_m", "orders", "orders_w", "orders_m", "base")
    }
    stack.urls = {
        "catalog": f"http://127.0.0.1:{ports['catalog']}",
        "orders": f"http://127.0.0.1:{ports['orders']}",
        "baseline": f"http://127.0.0.1:{ports['base']}",
    }
    base_env = _clean_environ()
    envs: dict[str, dict[str, str]] = {}
    for service, prefix in (("catalog", "CATALOG_"), ("orders", "ORDERS_")):
        envs[service] = {
            **base_env,
            f"{prefix}DATABASE_URL": infra.database_urls[service],
            f"{prefix}AMQP_URL": infra.amqp_url,
            f"{prefix}JWT_SECRET": stack.jwt_secret,
            f"{prefix}PORT": str(ports[service]),
            f"{prefix}WORKER_PORT": str(ports[f"{service}_w"]),
            # The contract's separate metrics port (9201/9202 by default) must not collide
            # with a dev stack either; ignored by versions that do not have it yet.
            f"{prefix}METRICS_PORT": str(ports[f"{service}_m"]),
        }
    envs["orders"]["ORDERS_CATALOG_URL"] = stack.urls["catalog"]
    for service in ("catalog", "orders"):
        worker_ready = f"http://127.0.0.1:{ports[service + '_w']}/readyz"
        stack.services[f"{service}-worker"] = Service(
            f"{service}-worker",
            [str(BIN / f"{service}-worker")],
            envs[service],
            worker_ready,
            LOGS / f"{service}-worker.log",
        )
    for service in ("catalog", "orders"):
        stack.services[f"{service}-api"] = Service(
            f"{service}-api",
            [str(BIN / f"{service}-api")],
            envs[service],
            f"{stack.urls[service]}/readyz",
            LOGS / f"{service}-api.log",
        )
    catalog_role_dsn = infra.database_urls["catalog"].replace("+asyncpg", "")
    stack.services["baseline"] = Service(
        "baseline",
        [sys.executable, str(BASELINE)],
        {
            **base_env,
            "BENCH_BASELINE_DSN": catalog_role_dsn,
            "BENCH_BASELINE_PORT": str(ports["base"]),
        },
        f"{stack.urls['baseline']}/livez",
        LOGS / "baseline.log",
    )
    return stack


async def start(stack: Stack) -> None:
    # Workers first: they declare the queues and bindings, so the APIs' events are routable.
    groups = [["catalog-worker", "orders-worker"], ["catalog-api", "orders-api", "baseline"]]
    for group in groups:
        for name in group:
            stack.services[name].start()
        await asyncio.gather(*(stack.services[name].wait_ready() for name in group))


async def _create(client: httpx.AsyncClient, body: dict[str, object], admin: dict[str, str]) -> str:
    """POST one product; retry what a busy shared server may answer (seeding is not measured)."""
    for attempt in range(6):
        response = await client.post("/v1/products", json=body, headers=admin)
        if response.status_code == 201:
            created: str = response.json()["id"]
            return created
        if response.status_code == 409 and attempt:  # an earlier try did commit after all
            found = await client.get("/v1/products", params={"q": body["sku"]})
            return str(found.json()["items"][0]["id"])
        if response.status_code < 500:
            break
        await asyncio.sleep(0.5 * 2**attempt)
    raise RuntimeError(f"seeding failed: {response.status_code} {response.text[:500]}")


async def seed(stack: Stack, count: int, concurrency: int = 8) -> list[str]:
    """`count` products with ample stock, created through the API (so events fill replicas)."""
    admin = {"Authorization": f"Bearer {stack.token('bench-admin', 'admin')}"}
    run = uuid.uuid4().hex[:6]
    ids: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def creator(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = {
                "sku": f"BENCH-{run}-{n:05d}",
                "name": f"Bench {('mug', 'tee', 'lamp', 'bottle', 'notebook')[n % 5]} {n:05d}",
                "description": "Seeded by make bench.",
                "price_cents": 500 + n % 5000,
                "currency": "EUR",
                "stock_available": AMPLE_STOCK,
            }
            ids.append(await _create(client, body, admin))

    async with httpx.AsyncClient(base_url=stack.urls["catalog"], timeout=30) as client:
        await asyncio.gather(*(creator(client) for _ in range(concurrency)))
    stack.product_ids = ids
    return ids


async def check_equivalent(stack: Stack) -> None:
    """Ours and the baseline answer the same product (status, ETag, fields), or no bench."""
    product_id = stack.product_ids[0]
    async with httpx.AsyncClient(timeout=10) as client:
        ours = await client.get(f"{stack.urls['catalog']}/v1/products/{product_id}")
        base = await client.get(f"{stack.urls['baseline']}/v1/products/{product_id}")
    problems = []
    if ours.status_code != 200 or base.status_code != 200:
        problems.append(f"status ours {ours.status_code}, baseline {base.status_code}")
    elif ours.headers.get("etag") != base.headers.get("etag"):
        problems.append(
            f"ETag ours {ours.headers.get('etag')}, baseline {base.headers.get('etag')}"
        )
    else:
        a, b = ours.json(), base.json()
        if a.keys() != b.keys() or a["id"] != b["id"] or a["version"] != b["version"]:
            problems.append(f"bodies differ:\n  ours     {a}\n  baseline {b}")
    if problems:
        raise RuntimeError("ours and the baseline do not serve the same product: " + problems[0])


async def queue_depths(amqp_url: str, queues: tuple[str, ...] = QUEUES) -> dict[str, int]:
    """Ready messages per queue (passive declare: no rabbitmqctl, which costs a CPU-second)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        depths: dict[str, int] = {}
        for name in queues:
            queue = await channel.get_queue(name, ensure=True)
            declared = await queue.declare()
            depths[name] = declared.message_count or 0
        return depths
    finally:
        await connection.close()


async def unsent(conn: asyncpg.Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in OUTBOXES:
        counts[table] = await conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE published_at IS NULL"  # noqa: S608 - constant
        )
    return counts


async def quiesce(stack: Stack, within: float = 120.0) -> None:
    """Wait until no event is waiting anywhere: outboxes sent, queues empty (twice in a row)."""
    deadline = time.monotonic() + within
    conn = await asyncpg.connect(stack.infra.admin_url)
    try:
        calm = 0
        while calm < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"system did not settle in {within:.0f}s: outboxes {await unsent(conn)}, "
                    f"queues {await queue_depths(stack.infra.amqp_url)}"
                )
            busy = any((await unsent(conn)).values()) or any(
                (await queue_depths(stack.infra.amqp_url)).values()
            )
            calm = 0 if busy else calm + 1
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
