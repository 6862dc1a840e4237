"""Copies of failed messages for the retry and parking queues, and replay from parking."""

from __future__ import annotations

import aio_pika
from aio_pika import DeliveryMode, ExchangeType, Message
from aio_pika.abc import AbstractIncomingMessage, HeadersType

from shop_common.messaging.topology import ConsumerTopology

RETRIES_HEADER = "x-shop-retries"
LAST_ERROR_HEADER = "x-shop-last-error"
PARKED_REASON_HEADER = "x-shop-parked-reason"
PARKED_AT_HEADER = "x-shop-parked-at"
ORIGINAL_ROUTING_KEY_HEADER = "x-shop-original-routing-key"
# Broker-owned headers that must not ride on a copy we publish ourselves.
_BROKER_HEADERS = ("x-death", "x-delivery-count", "x-first-death-", "x-last-death-")
_PARKING_HEADERS = (RETRIES_HEADER, LAST_ERROR_HEADER, PARKED_REASON_HEADER, PARKED_AT_HEADER)


def copy_message(
    message: AbstractIncomingMessage, extra: HeadersType, *, drop: tuple[str, ...] = ()
) -> Message:
    """The same message, persistent, with our bookkeeping headers, ready to republish."""
    headers: HeadersType = {
        name: value
        for name, value in message.headers.items()
        if not name.startswith(_BROKER_HEADERS) and name not in drop
    }
    headers.setdefault(ORIGINAL_ROUTING_KEY_HEADER, message.routing_key or "")
    headers.update(extra)
    return Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


async def replay_parked(amqp_url: str, topology: ConsumerTopology, *, limit: int = 1000) -> int:
    """Move up to `limit` parked messages back to the service's queue, retries reset.

    For operators, once the cause is fixed. Each copy is confirmed before the parked
    message is acked; the inbox makes a replay of an already handled event harmless.
    """
    connection = await aio_pika.connect(amqp_url)
    moved = 0
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        dlx = await channel.declare_exchange(
            topology.dead_letter_exchange, ExchangeType.DIRECT, durable=True
        )
        parking = await channel.get_queue(topology.parking_queue)
        while moved < limit:
            message = await parking.get(fail=False)
            if message is None:
                break
            await dlx.publish(copy_message(message, {}, drop=_PARKING_HEADERS), topology.queue)
            await message.ack()
            moved += 1
    finally:
        await connection.close()
    return moved
