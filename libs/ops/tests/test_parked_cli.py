"""`shop-ops parked replay --all` over the real broker: a replay that cannot route stays parked."""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika
import pytest
from typer.testing import CliRunner

from shop_common.messaging import ConsumerTopology, declare_consumer_topology
from shop_ops.cli import app

pytestmark = pytest.mark.integration

TOPOLOGY = ConsumerTopology(service="catalog")


async def test_replay_all_keeps_what_cannot_route_and_moves_it_once_routable(
    own_vhost: str,
) -> None:
    env = {"CATALOG_AMQP_URL": own_vhost}
    connection = await aio_pika.connect(own_vhost)
    try:
        channel = await connection.channel(publisher_confirms=True)
        main = await declare_consumer_topology(channel, TOPOLOGY, ["orders.order.placed.v1"])
        dlx = await channel.get_exchange(TOPOLOGY.dead_letter_exchange)
        ids = [str(uuid.uuid4()) for _ in range(2)]
        for event_id in ids:
            message = aio_pika.Message(b"{}", message_id=event_id, delivery_mode=2)
            await dlx.publish(message, TOPOLOGY.parking_queue, mandatory=True)
        await main.unbind(dlx, TOPOLOGY.queue)  # replays have nowhere to go

        failed = await replay_all(env)
        assert failed.exit_code == 1
        document = json.loads(failed.stdout)
        assert [(r["id"], r["outcome"]) for r in document["results"]] == [
            (event_id, "unroutable") for event_id in ids
        ]
        assert document["ok"] is False
        assert await depth(channel, TOPOLOGY.parking_queue) == 2
        assert await depth(channel, TOPOLOGY.queue) == 0

        await main.bind(dlx, TOPOLOGY.queue)
        moved = await replay_all(env)
        assert moved.exit_code == 0, moved.output
        assert [r["outcome"] for r in json.loads(moved.stdout)["results"]] == ["replayed"] * 2
        assert await depth(channel, TOPOLOGY.parking_queue) == 0
        assert await depth(channel, TOPOLOGY.queue) == 2
    finally:
        await connection.close()


async def test_replay_needs_ids_or_all(own_vhost: str) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["parked", "replay", "--service", "catalog"]
    )
    assert result.exit_code == 2
    assert "--all" in result.output


async def replay_all(env: dict[str, str]):
    args = ["parked", "replay", "--service", "catalog", "--all", "--json"]
    return await asyncio.to_thread(CliRunner().invoke, app, args, env=env)


async def depth(channel, queue: str) -> int:
    declared = await channel.declare_queue(queue, passive=True)
    return declared.declaration_result.message_count or 0
