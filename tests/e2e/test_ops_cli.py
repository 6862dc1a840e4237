"""shop-ops against the running stack: real orders' timelines, the outbox, parked messages.

The CLI runs in a thread (its own event loop), configured only by the services' own
environment variables, exactly as an operator's shell would be.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from click.testing import Result
from typer.testing import CliRunner

from shop_common.db import create_engine
from shop_common.messaging import OutboxRelay
from shop_ops.cli import app
from shop_orders.messaging import OUTBOX
from tests.support import ServiceDb
from tests.support.e2e import Shop, eventually

pytestmark = pytest.mark.e2e

CONFIRMED_CHAIN = [
    ("orders", "placed", "orders.order.placed.v1"),
    ("orders", "published", "orders.order.placed.v1"),
    ("catalog", "received", "orders.order.placed.v1"),
    ("catalog", "reserved", "catalog.stock.reserved.v1"),
    ("catalog", "published", "catalog.stock.reserved.v1"),
    ("orders", "received", "catalog.stock.reserved.v1"),
    ("orders", "confirmed", "orders.order.confirmed.v1"),
    ("orders", "published", "orders.order.confirmed.v1"),
    ("catalog", "received", "orders.order.confirmed.v1"),
]


@pytest.fixture(scope="module")
def env(provision_service: Callable[[str], ServiceDb], amqp_url: str) -> dict[str, str]:
    """What an operator exports: each service's own database URL (its role) and broker."""
    return {
        "CATALOG_DATABASE_URL": provision_service("catalog").url,
        "ORDERS_DATABASE_URL": provision_service("orders").url,
        "CATALOG_AMQP_URL": amqp_url,
        "ORDERS_AMQP_URL": amqp_url,
        "COLUMNS": "220",  # tables as wide as a terminal would draw them
    }


async def ops(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), input=stdin, env=env)


async def ops_json(env: dict[str, str], *args: str, exit_code: int = 0) -> Any:
    result = await ops(env, *args, "--json")
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


async def timeline(env: dict[str, str], order_id: str, *options: str) -> dict[str, Any]:
    document: dict[str, Any] = await ops_json(env, "order", order_id, *options)
    return document


async def complete_timeline(env: dict[str, str], order_id: str) -> dict[str, Any]:
    """The timeline once every event of the order was delivered (the tail is asynchronous)."""
    return await eventually(
        lambda: timeline(env, order_id), lambda t: t["state"] == "complete", within=30
    )


def chain(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["service"], s["step"], s["event_type"]) for s in document["steps"]]


@asynccontextmanager
async def stopped(shop: Shop, process: str) -> AsyncIterator[None]:
    """The process down for the block, up and ready again after it, whatever happens."""
    shop.stack.processes[process].stop()
    try:
        yield
    finally:
        await asyncio.to_thread(shop.stack.processes[process].start, 60)


async def test_the_timeline_of_a_confirmed_order(shop: Shop, env: dict[str, str]) -> None:
    product = await shop.new_product(stock_available=5)
    placed = (await shop.place((product["id"], 2))).json()
    assert (await shop.final(placed["id"]))["status"] == "CONFIRMED"

    document = await complete_timeline(env, placed["id"])

    assert document["order"]["status"] == "CONFIRMED"
    assert document["reservation"]["status"] == "RESERVED"
    assert chain(document) == CONFIRMED_CHAIN
    assert document["waiting"] is None
    assert document["steps"][0]["gap_seconds"] is None
    assert all(isinstance(s["gap_seconds"], float) for s in document["steps"][1:])
    assert document["duration_seconds"] >= 0
    # People get a table of the same steps.
    human = await ops(env, "order", placed["id"])
    assert human.exit_code == 0, human.output
    assert "COMPLETE" in human.stdout
    assert "catalog.stock.reserved.v1" in human.stdout
    assert "order CONFIRMED, reservation RESERVED" in human.stdout


async def test_the_timeline_of_a_rejected_order(shop: Shop, env: dict[str, str]) -> None:
    product = await shop.new_product(stock_available=1)
    placed = (await shop.place((product["id"], 3))).json()
    assert (await shop.final(placed["id"]))["status"] == "REJECTED"

    document = await complete_timeline(env, placed["id"])

    assert document["reservation"]["status"] == "REJECTED"
    assert [
        (s, step) for s, step, _ in chain(document) if step not in ("published", "received")
    ] == [
        ("orders", "placed"),
        ("catalog", "reservation rejected"),
        ("orders", "rejected"),
    ]
    assert len(document["steps"]) == 9


async def test_the_timeline_of_a_cancelled_order(shop: Shop, env: dict[str, str]) -> None:
    product = await shop.new_product(stock_available=5)
    placed = (await shop.place((product["id"], 1))).json()
    assert (await shop.final(placed["id"]))["status"] == "CONFIRMED"
    assert (await shop.cancel(placed["id"])).status_code == 200

    document = await eventually(
        lambda: timeline(env, placed["id"]),
        lambda t: t["state"] == "complete" and t["reservation"]["status"] == "RELEASED",
        within=30,
    )

    assert document["order"]["status"] == "CANCELLED"
    assert chain(document)[:9] == CONFIRMED_CHAIN
    assert chain(document)[9:] == [
        ("orders", "cancelled", "orders.order.cancelled.v1"),
        ("orders", "published", "orders.order.cancelled.v1"),
        ("catalog", "received", "orders.order.cancelled.v1"),
        ("catalog", "released", "catalog.stock.released.v1"),
        ("catalog", "published", "catalog.stock.released.v1"),
        ("orders", "received", "catalog.stock.released.v1"),
    ]


async def test_a_stuck_order_says_where_and_a_parked_event_replays_from_the_cli(
    shop: Shop, env: dict[str, str], amqp_url: str
) -> None:
    product = await shop.new_product(stock_available=5)
    async with stopped(shop, "catalog-worker"):
        placed = (await shop.place((product["id"], 1))).json()
        published = await eventually(
            lambda: timeline(env, placed["id"], "--stuck-after", "0"),
            lambda t: [s["step"] for s in t["steps"]] == ["placed", "published"],
        )
        # Stuck: Catalog never received the placement (its worker is down).
        assert published["state"] == "stuck"
        waiting = published["waiting"]
        assert (waiting["service"], waiting["action"]) == (
            "catalog",
            "receive orders.order.placed.v1",
        )
        assert waiting["stuck"] is True
        assert waiting["parked"] is False
        assert "catalog-worker" in waiting["hint"]
        human = await ops(env, "order", placed["id"], "--stuck-after", "0")
        assert "STUCK: catalog to receive orders.order.placed.v1" in human.stdout

        # Now as if Catalog's consumer had given up on it: parked, with its reason.
        event_id = waiting["event_id"]
        await park_from_queue(amqp_url, "catalog", event_id, reason="test: a handler bug")
        parked = await timeline(env, placed["id"])
        assert parked["waiting"]["parked"] is True
        assert f"shop-ops parked replay --service catalog {event_id}" in parked["waiting"]["hint"]

        listed = await ops_json(env, "parked", "list", "--service", "catalog")
        (queue,) = listed["queues"]
        mine = [m for m in queue["results"] if m["id"] == event_id]
        assert len(mine) == 1
        assert mine[0]["type"] == "orders.order.placed.v1"
        assert mine[0]["subject"] == placed["id"]
        assert mine[0]["reason"] == "test: a handler bug"
        shown = await ops_json(env, "parked", "show", event_id, "--service", "catalog")
        assert json.loads(shown["body"])["order_id"] == placed["id"]
        assert shown["headers"]["ce-id"] == event_id
        dry = await ops_json(env, "parked", "replay", "--service", "catalog", event_id, "--dry-run")
        assert [(r["id"], r["outcome"]) for r in dry["results"]] == [(event_id, "would-replay")]
    # The worker is back: replay it, and the order completes.
    replayed = await ops_json(env, "parked", "replay", "--service", "catalog", event_id)
    assert [(r["id"], r["outcome"]) for r in replayed["results"]] == [(event_id, "replayed")]
    assert (await shop.final(placed["id"]))["status"] == "CONFIRMED"
    document = await complete_timeline(env, placed["id"])
    assert chain(document) == CONFIRMED_CHAIN
    listed = await ops_json(env, "parked", "list", "--service", "catalog")
    assert event_id not in {m["id"] for m in listed["queues"][0]["results"]}


async def test_purge_asks_first_and_deletes_only_what_it_is_told(
    env: dict[str, str], amqp_url: str
) -> None:
    event_id = str(uuid.uuid4())
    await park_new(amqp_url, "orders", event_id)

    refused = await ops(env, "parked", "purge", "--service", "orders", event_id, stdin="n\n")
    assert refused.exit_code == 1
    assert "for good?" in refused.output
    assert await ids_parked(env, "orders") >= {event_id}

    purged = await ops_json(
        env,
        "parked",
        "purge",
        "--service",
        "orders",
        event_id,
        "no-such-id",
        "--yes",
        exit_code=1,  # one of the two was not there
    )
    assert [(r["id"], r["outcome"]) for r in purged["results"]] == [(event_id, "purged")]
    assert purged["missing"] == ["no-such-id"]
    assert event_id not in await ids_parked(env, "orders")
    gone = await ops(env, "parked", "show", event_id, "--service", "orders")
    assert gone.exit_code == 1
    assert "no message" in gone.stderr


async def test_outbox_status_counts_unsent_and_failing_rows(
    shop: Shop, env: dict[str, str], provision_service: Callable[[str], ServiceDb], amqp_url: str
) -> None:
    product = await shop.new_product(stock_available=5)
    async with stopped(shop, "orders-worker"):
        before = (await ops_json(env, "outbox", "status", "--service", "orders"))["services"][0]
        ids = [(await shop.place((product["id"], 1))).json()["id"] for _ in range(2)]
        # A relay whose exchange has no queue bound: every publish comes back (NO_ROUTE).
        await publish_once_unroutable(provision_service("orders").url, amqp_url)
        # And one the relay has not tried yet: pending, not failing.
        ids.append((await shop.place((product["id"], 1))).json()["id"])

        status = await ops_json(env, "outbox", "status")
        by_service = {s["service"]: s for s in status["services"]}
        orders = by_service["orders"]
        assert orders["pending"] == before["pending"] + 3
        assert orders["failing"] == before["failing"] + 2
        assert orders["oldest_pending_age_seconds"] > 0
        failing = {row["subject"]: row for row in orders["failing_rows"]}
        assert ids[2] not in failing
        for order_id in ids[:2]:
            assert failing[order_id]["type"] == "orders.order.placed.v1"
            assert failing[order_id]["attempts"] == 1
            assert failing[order_id]["last_error"].startswith("unroutable")
        assert by_service["catalog"]["pending"] == 0
        human = await ops(env, "outbox", "status", "--service", "orders")
        assert "Failing rows" in human.stdout
        assert "unroutable" in human.stdout
    # Its worker back, the rows go out and the orders complete.
    for order_id in ids:
        assert (await shop.final(order_id))["status"] == "CONFIRMED"
    settled = await eventually(
        lambda: ops_json(env, "outbox", "status", "--service", "orders"),
        lambda s: s["services"][0]["pending"] == 0,
    )
    assert settled["services"][0]["failing"] == 0
    assert settled["services"][0]["oldest_pending_age_seconds"] is None


async def test_every_command_has_help(env: dict[str, str]) -> None:
    for command in (
        [],
        ["outbox"],
        ["outbox", "status"],
        ["parked"],
        ["parked", "list"],
        ["parked", "show"],
        ["parked", "replay"],
        ["parked", "purge"],
        ["order"],
        ["reconcile"],
    ):
        result = await ops(env, *command, "--help")
        assert result.exit_code == 0, (command, result.output)
        assert "Usage: shop-ops" in result.stdout


# ------------------------------------------------------------------ helpers


async def publish_once_unroutable(database_url: str, amqp_url: str) -> None:
    """One relay pass to an exchange nothing is bound to: every publish comes back."""
    exchange = f"ops-test.unbound.{uuid.uuid4().hex[:8]}"
    engine = create_engine(database_url, schema="orders", application_name="ops-test")
    relay = OutboxRelay(engine=engine, table=OUTBOX, amqp_url=amqp_url, exchange=exchange)
    try:
        await relay.publish_pending_once()
    finally:
        await relay.close()
        await engine.dispose()
        connection = await aio_pika.connect(amqp_url)
        try:
            await (await connection.channel()).exchange_delete(exchange)
        finally:
            await connection.close()


async def park_from_queue(amqp_url: str, service: str, event_id: str, *, reason: str) -> None:
    """Do what the consumer does when it gives up: copy to parking, then ack."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue(f"{service}.events", passive=True)
        message = await eventually(lambda: queue.get(fail=False), lambda m: m is not None)
        assert message.message_id == event_id
        headers = {
            **message.headers,
            "x-shop-parked-reason": reason,
            "x-shop-parked-at": datetime.now(UTC).isoformat(),
            "x-shop-original-routing-key": message.routing_key,
        }
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            message_id=message.message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        dlx = await channel.get_exchange(f"{service}.dlx")
        await dlx.publish(copy, f"{service}.events.parking", mandatory=True)
        await message.ack()
    finally:
        await connection.close()


async def park_new(amqp_url: str, service: str, event_id: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        dlx = await channel.get_exchange(f"{service}.dlx")
        message = aio_pika.Message(
            b'{"junk": true}',
            message_id=event_id,
            headers={"x-shop-parked-reason": "test"},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await dlx.publish(message, f"{service}.events.parking", mandatory=True)
    finally:
        await connection.close()


async def ids_parked(env: dict[str, str], service: str) -> set[str]:
    listed = await ops_json(env, "parked", "list", "--service", service)
    return {m["id"] for m in listed["queues"][0]["results"]}


async def test_reconcile_runs_each_services_own_reconciliation(
    shop: Shop, env: dict[str, str]
) -> None:
    # An operator's shell need not carry the APIs' token settings.
    without_tokens = {**env, "CATALOG_JWT_SECRET": None, "ORDERS_JWT_SECRET": None}
    document = await ops_json(without_tokens, "reconcile")  # type: ignore[arg-type]
    services = {s["service"]: s for s in document["services"]}
    assert services["orders"]["available"]
    assert services["catalog"]["available"]
    assert set(services["orders"]["found"]) == {"release_unacknowledged", "pending_overdue"}
    assert set(services["catalog"]["found"]) == {"stock_reserved_mismatch"}
    assert services["catalog"]["found"] == services["catalog"]["repaired"]
