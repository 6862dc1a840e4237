"""RabbitMQ topology: the shared events exchange and each consuming service's queues.

Per consuming service `<s>` (every name derives from it, so tests isolate by service name):

    shop.events (topic) --routing keys--> <s>.events (quorum, x-delivery-limit)
    <s>.dlx (direct):  <s>.events.retry.<ms>ms (quorum, TTL) --expires--> <s>.events
                       <s>.events.parking (quorum, no TTL: an operator decides)

The consumer sends a failed message to a retry queue (with a header counting retries)
and, when retries are spent or the failure is permanent, to the parking queue. The broker
itself parks a message redelivered more than `delivery_limit` times (a handler that
crashes the process). Dead-lettering is at-least-once, so nothing is dropped on the way.
Declaring is idempotent; changing an argument of an existing queue is refused by the
broker (PRECONDITION_FAILED), which is why retry queue names carry their delay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import aio_pika
from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

DEFAULT_EXCHANGE = "shop.events"


@dataclass(frozen=True, kw_only=True)
class ConsumerTopology:
    service: str
    exchange: str = DEFAULT_EXCHANGE
    # Retry n (0-based) waits retry_delays[min(n, len - 1)] seconds.
    # Defaults ride out a database restart or a short outage (~25 min in all) before parking.
    retry_delays: tuple[float, ...] = (1.0, 10.0, 60.0, 300.0)
    max_retries: int = 8
    delivery_limit: int = 10

    def __post_init__(self) -> None:
        if not self.service or not self.retry_delays or min(self.retry_delays) <= 0:
            raise ValueError("need a service name and positive retry delays")
        if self.max_retries < 0 or self.delivery_limit < 1:
            raise ValueError("max_retries must be >= 0 and delivery_limit >= 1")

    @property
    def queue(self) -> str:
        return f"{self.service}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.service}.dlx"

    @property
    def parking_queue(self) -> str:
        return f"{self.service}.events.parking"

    def retry_queue(self, retry: int) -> str:
        """The retry queue used for retry number `retry` (0-based)."""
        return _retry_queue_name(self.queue, self.retry_delay_ms(retry))

    def retry_delay_ms(self, retry: int) -> int:
        return round(self.retry_delays[min(retry, len(self.retry_delays) - 1)] * 1000)


def _retry_queue_name(queue: str, delay_ms: int) -> str:
    return f"{queue}.retry.{delay_ms}ms"


# Quorum queues dead-letter at-least-once only with reject-publish overflow.
_AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


async def declare_events_exchange(
    channel: AbstractChannel, name: str = DEFAULT_EXCHANGE
) -> AbstractExchange:
    return await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)


async def declare_consumer_topology(
    channel: AbstractChannel, topology: ConsumerTopology, routing_keys: Iterable[str]
) -> AbstractQueue:
    """Declare (idempotently) everything a consuming service needs; returns its main queue."""
    events = await declare_events_exchange(channel, topology.exchange)
    dlx = await channel.declare_exchange(
        topology.dead_letter_exchange, ExchangeType.DIRECT, durable=True
    )
    parking = await channel.declare_queue(
        topology.parking_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await parking.bind(dlx, topology.parking_queue)
    main = await channel.declare_queue(
        topology.queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": topology.delivery_limit,
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-dead-letter-routing-key": topology.parking_queue,
            **_AT_LEAST_ONCE,
        },
    )
    await main.bind(dlx, topology.queue)
    for delay_ms in sorted({topology.retry_delay_ms(n) for n in range(len(topology.retry_delays))}):
        name = _retry_queue_name(topology.queue, delay_ms)
        retry = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": topology.dead_letter_exchange,
                "x-dead-letter-routing-key": topology.queue,
                **_AT_LEAST_ONCE,
            },
        )
        await retry.bind(dlx, name)
    for key in sorted(set(routing_keys)):
        await main.bind(events, key)
    return main


async def ensure_topology(
    amqp_url: str, topology: ConsumerTopology, routing_keys: Iterable[str]
) -> None:
    """Declare a consuming service's topology once (e.g. from `make up`, before publishing)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        await declare_consumer_topology(await connection.channel(), topology, routing_keys)
    finally:
        await connection.close()
