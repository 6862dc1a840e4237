"""Topology: idempotent declaration of exchange, queues, retry and parking."""

from __future__ import annotations

import pytest
from aio_pika import Message

from shop_common.messaging import ConsumerTopology, ensure_topology

pytestmark = pytest.mark.integration


async def test_declaring_twice_is_harmless_and_routes_bound_types(kit) -> None:
    topology = kit.topology(retry_delays=(0.5, 2.0), max_retries=3)
    keys = ["orders.order.placed.v1", "orders.order.cancelled.v1"]
    await ensure_topology(kit.amqp_url, topology, keys)
    await ensure_topology(kit.amqp_url, topology, keys)

    names = [topology.queue, topology.parking_queue, topology.retry_queue(0)]
    names += [topology.retry_queue(1), topology.retry_queue(2)]
    assert names[2:] == [
        f"{kit.names}.events.retry.500ms",
        f"{kit.names}.events.retry.2000ms",
        f"{kit.names}.events.retry.2000ms",  # the last delay repeats
    ]
    for name in names:
        await kit.channel.declare_queue(name, passive=True)  # raises if missing

    exchange = await kit.channel.get_exchange(kit.exchange)
    await exchange.publish(Message(b"{}", message_id="a"), routing_key="orders.order.placed.v1")
    main = await kit.channel.get_queue(topology.queue)
    [message] = await kit.drain(main, idle=0.2)
    assert message.message_id == "a"
    with pytest.raises(Exception, match="NO_ROUTE"):
        await exchange.publish(
            Message(b"{}", message_id="b"), routing_key="orders.order.shipped.v1"
        )


def test_topology_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="retry delays"):
        ConsumerTopology(service="s", retry_delays=())
    with pytest.raises(ValueError, match="delivery_limit"):
        ConsumerTopology(service="s", delivery_limit=0)
