"""The operator's passes over a parking queue: list, replay, purge, against the real broker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import aio_pika
import aiormq
import pytest
from aio_pika import ExchangeType, Message
from aiormq.abc import DeliveredMessage
from pamqp import commands as spec
from pamqp.header import ContentHeader

from shop_common.events import EventType, OrderCancelledV1
from shop_common.messaging import (
    ConsumerTopology,
    Envelope,
    ParkedMessage,
    ParkedOutcome,
    declare_consumer_topology,
    list_parked,
    purge_parked,
    replay_parked,
    to_message,
)

pytestmark = pytest.mark.integration

CANCELLED = str(EventType.ORDER_CANCELLED_V1)


def event(event_id: uuid.UUID | None = None) -> Envelope:
    order_id = uuid.uuid4()
    return Envelope(
        id=event_id or uuid.uuid4(),
        source="/orders",
        type=CANCELLED,
        subject=str(order_id),
        time=datetime.now(UTC),
        data=OrderCancelledV1(order_id=order_id, reason="test").to_event_data(),
    )


async def topology_with_parked(kit, count: int, **options) -> tuple[ConsumerTopology, list[str]]:
    """A declared topology with `count` messages parked the way the consumer parks them."""
    topology = kit.topology(**options)
    await declare_consumer_topology(kit.channel, topology, [CANCELLED])
    ids = [str(uuid.uuid4()) for _ in range(count)]
    await park(kit, topology, *(parked_message(i) for i in ids))
    return topology, ids


def parked_message(event_id: str) -> Message:
    message = to_message(event(uuid.UUID(event_id)))
    message.headers.update(
        {
            "x-shop-retries": 8,
            "x-shop-last-error": "RuntimeError('db down')",
            "x-shop-parked-reason": "retries spent",
            "x-shop-parked-at": "2026-01-02T03:04:05+00:00",
            "x-shop-original-routing-key": CANCELLED,
        }
    )
    return message


async def park(kit, topology: ConsumerTopology, *messages: Message) -> None:
    dlx = await kit.channel.get_exchange(topology.dead_letter_exchange)
    for message in messages:
        await dlx.publish(message, topology.parking_queue, mandatory=True)


async def contents(kit, queue: str) -> list:
    """Everything in `queue`, oldest first (drained: call it last)."""
    return await kit.drain(await kit.channel.get_queue(queue))


def never_delivered(message) -> bool:
    """Our drain is its first delivery: no earlier look counted one."""
    return message.headers.get("x-delivery-count", 0) == 0 and not message.redelivered


def ids_of(messages) -> list[str]:
    return [m.message_id for m in messages]


async def test_a_replay_that_cannot_route_keeps_every_message_parked_and_says_so(kit) -> None:
    topology, ids = await topology_with_parked(kit, 3)
    await kit.channel.queue_delete(topology.queue)  # the queue (and its binding) is gone

    report = await replay_parked(kit.amqp_url, topology)

    assert report.aborted is None
    assert [r.message.id for r in report.results] == ids
    assert {r.outcome for r in report.results} == {ParkedOutcome.UNROUTABLE}
    assert all("NO_ROUTE" in (r.detail or "") for r in report.results)
    assert not report.ok
    assert len(report.failed) == 3
    kept = await contents(kit, topology.parking_queue)
    assert ids_of(kept) == ids
    # Still parked as they were: why, when and from where, for the next look.
    assert kept[0].headers["x-shop-parked-reason"] == "retries spent"
    assert kept[0].headers["x-shop-original-routing-key"] == CANCELLED
    assert all(never_delivered(m) for m in kept)


async def test_a_refused_replay_keeps_that_message_and_the_pass_goes_on(kit) -> None:
    topology, ids = await topology_with_parked(kit, 3)
    # The service's queue takes one more message and refuses (nacks) the rest.
    await kit.channel.queue_delete(topology.queue)
    full = await kit.channel.declare_queue(
        topology.queue, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    dlx = await kit.channel.declare_exchange(
        topology.dead_letter_exchange, ExchangeType.DIRECT, durable=True
    )
    await full.bind(dlx, topology.queue)

    report = await replay_parked(kit.amqp_url, topology)

    outcomes = [(r.message.id, r.outcome) for r in report.results]
    assert outcomes == [
        (ids[0], ParkedOutcome.REPLAYED),
        (ids[1], ParkedOutcome.NACKED),
        (ids[2], ParkedOutcome.NACKED),
    ]
    assert report.count(ParkedOutcome.REPLAYED) == 1
    assert ids_of(await contents(kit, topology.queue)) == ids[:1]
    assert ids_of(await contents(kit, topology.parking_queue)) == ids[1:]


async def test_a_replayed_message_starts_its_retries_again(kit) -> None:
    topology, ids = await topology_with_parked(kit, 3)

    report = await replay_parked(kit.amqp_url, topology, ids=[ids[1], "no-such-id"])

    assert [(r.message.id, r.outcome) for r in report.results] == [(ids[1], ParkedOutcome.REPLAYED)]
    assert report.missing == ("no-such-id",)
    (replayed,) = await contents(kit, topology.queue)
    assert replayed.message_id == ids[1]
    assert replayed.routing_key == topology.queue
    for header in ("x-shop-retries", "x-shop-last-error", "x-shop-parked-reason"):
        assert header not in replayed.headers
    assert replayed.headers["x-shop-replays"] == 1
    assert replayed.headers["x-shop-original-routing-key"] == CANCELLED
    assert ids_of(await contents(kit, topology.parking_queue)) == [ids[0], ids[2]]


async def test_listing_leaves_the_queue_as_it_was_and_counts_no_delivery(kit) -> None:
    """Returning a message would count a delivery; RabbitMQ 4.0-4.2 drop it after 20."""
    topology, ids = await topology_with_parked(kit, 3)

    for _ in range(3):
        report = await list_parked(kit.amqp_url, topology)
        assert report.depth == 3
        assert [r.message.id for r in report.results] == ids
        assert {r.outcome for r in report.results} == {ParkedOutcome.KEPT}
    first = report.results[0].message
    assert (first.type, first.subject, first.routing_key) == (CANCELLED, first.subject, CANCELLED)
    assert (first.reason, first.retries, first.last_error) == (
        "retries spent",
        8,
        "RuntimeError('db down')",
    )

    kept = await contents(kit, topology.parking_queue)
    assert ids_of(kept) == ids
    assert all(never_delivered(m) for m in kept)


async def test_a_long_pass_leaves_each_message_exactly_once(kit) -> None:
    """Acks sent just before the channel closes can be lost by a quorum queue (rabbitmq-server
    #10327): the last batch would stay parked beside its copies, and a purge not happen."""
    topology = kit.topology()
    await declare_consumer_topology(kit.channel, topology, [CANCELLED])
    ids = [str(uuid.uuid4()) for _ in range(250)]
    await park(kit, topology, *(parked_message(i) for i in ids))

    for _ in range(2):
        report = await list_parked(kit.amqp_url, topology)
        assert report.depth == 250
        assert [r.message.id for r in report.results] == ids
    purged = await purge_parked(kit.amqp_url, topology, ids[-50:])
    assert purged.count(ParkedOutcome.PURGED) == 50

    assert ids_of(await contents(kit, topology.parking_queue)) == ids[:-50]


async def test_a_second_copy_of_an_event_is_dropped_by_the_next_pass(kit) -> None:
    """The same event parked twice (or returned beside its copy): one copy stays."""
    topology, ids = await topology_with_parked(kit, 2)
    await park(kit, topology, parked_message(ids[0]))

    report = await list_parked(kit.amqp_url, topology)

    assert report.depth == 3
    assert [r.message.id for r in report.results] == ids
    assert report.duplicates == 1
    assert ids_of(await contents(kit, topology.parking_queue)) == ids


async def test_a_limited_list_looks_at_the_oldest_only(kit) -> None:
    topology, ids = await topology_with_parked(kit, 3)

    report = await list_parked(kit.amqp_url, topology, limit=2)

    assert report.depth == 3
    assert [r.message.id for r in report.results] == ids[:2]
    assert sorted(ids_of(await contents(kit, topology.parking_queue))) == sorted(ids)


async def test_a_dry_run_moves_nothing(kit) -> None:
    topology, ids = await topology_with_parked(kit, 2)

    report = await replay_parked(kit.amqp_url, topology, dry_run=True)

    assert {r.outcome for r in report.results} == {ParkedOutcome.WOULD_REPLAY}
    assert await contents(kit, topology.queue) == []
    assert ids_of(await contents(kit, topology.parking_queue)) == ids


async def test_purge_deletes_only_the_named_messages(kit) -> None:
    topology, ids = await topology_with_parked(kit, 3)

    report = await purge_parked(kit.amqp_url, topology, [ids[0], ids[2]])

    assert [(r.message.id, r.outcome) for r in report.results] == [
        (ids[0], ParkedOutcome.PURGED),
        (ids[2], ParkedOutcome.PURGED),
    ]
    assert report.ok
    assert ids_of(await contents(kit, topology.parking_queue)) == [ids[1]]
    assert await contents(kit, topology.queue) == []


async def test_a_message_the_broker_parked_keeps_its_reason_and_routing_key(kit) -> None:
    """Past the delivery limit the broker dead-letters it; the x-death record says why."""
    topology = kit.topology(delivery_limit=1)
    main = await declare_consumer_topology(kit.channel, topology, [CANCELLED])
    envelope = event()
    exchange = await kit.channel.get_exchange(kit.exchange)
    await exchange.publish(to_message(envelope), CANCELLED, mandatory=True)
    for _ in range(2):  # a consumer that dies with the message twice
        message = await main.get(timeout=5)
        await message.nack(requeue=True)
    await kit.wait_until(
        lambda: _depth(kit, topology.parking_queue, 1), what="the broker to park it"
    )

    for _ in range(2):  # the second look sees the copy the first one kept
        (result,) = (await list_parked(kit.amqp_url, topology)).results
        parked = result.message
        assert parked.id == str(envelope.id)
        assert parked.routing_key == CANCELLED
        assert parked.reason is not None
        assert parked.reason.endswith(f"from {topology.queue}: delivery_limit")
        assert parked.parked_at is not None

    report = await replay_parked(kit.amqp_url, topology)
    assert report.count(ParkedOutcome.REPLAYED) == 1
    assert ids_of(await contents(kit, topology.queue)) == [str(envelope.id)]


async def test_a_pass_over_a_missing_topology_fails_and_declares_nothing(kit) -> None:
    topology = kit.topology()

    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await replay_parked(kit.amqp_url, topology)

    connection = await aio_pika.connect(kit.amqp_url)
    try:
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await (await connection.channel()).get_exchange(topology.dead_letter_exchange)
    finally:
        await connection.close()


async def _depth(kit, queue: str, expected: int) -> bool:
    declared = await kit.channel.declare_queue(queue, passive=True)
    return declared.declaration_result.message_count == expected


def incoming(body: bytes, **properties) -> aio_pika.IncomingMessage:
    """A message as `basic.get` hands it over, for the pure parts."""
    delivered = DeliveredMessage(
        delivery=spec.Basic.GetOk(delivery_tag=1, routing_key="s.events.parking"),
        header=ContentHeader(properties=spec.Basic.Properties(**properties)),
        body=body,
        channel=None,  # type: ignore[arg-type]
    )
    return aio_pika.IncomingMessage(delivered, no_ack=True)


def test_a_message_without_an_id_is_named_by_its_body() -> None:
    first = ParkedMessage.of(incoming(b"{not json"))
    assert first.id.startswith("sha256:")
    assert ParkedMessage.of(incoming(b"{not json")).id == first.id
    assert ParkedMessage.of(incoming(b"{not json", headers={"ce-id": "e1"})).id == "e1"


def test_broker_headers_are_read_and_made_json_safe() -> None:
    death = {
        "queue": "s.events",
        "reason": "delivery_limit",
        "count": 1,
        # AMQP timestamps carry no zone (they are UTC)
        "time": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).replace(tzinfo=None),
        "routing-keys": [b"orders.order.cancelled.v1"],
    }
    parked = ParkedMessage.of(incoming(b"{}", message_id="m1", headers={"x-death": [death]}))
    assert parked.routing_key == "orders.order.cancelled.v1"
    assert parked.reason == "dead-lettered by the broker from s.events: delivery_limit"
    assert parked.parked_at == "2026-01-02T03:04:05+00:00"
    assert json.loads(json.dumps(parked.headers))["x-death"][0]["time"] == "2026-01-02T03:04:05"
