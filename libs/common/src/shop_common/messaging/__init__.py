"""Event messaging shared by the services: envelope, outbox, relay, inbox consumer, topology.

A service wires it like this (see docs/events.md for the whole story):

    outbox_t = outbox_table(metadata)            # in its migrations too
    inbox_t = inbox_table(metadata)
    outbox = Outbox(outbox_t, service="orders")
    await outbox.enqueue(session, EventType.ORDER_PLACED_V1, payload, subject=order.id)
    relay = OutboxRelay(engine=engine, table=outbox_t, amqp_url=url)
    consumer = EventConsumer(amqp_url=url, sessionmaker=sessions, inbox=inbox_t,
                             topology=ConsumerTopology(service="orders"), handlers={...})
    # run both (and retention) in a worker process: shop_common.worker.run_service_worker
"""

from shop_common.messaging.backoff import Backoff
from shop_common.messaging.consumer import EventConsumer, Handler, Outcome
from shop_common.messaging.envelope import Envelope, from_message, parse_envelope, to_message
from shop_common.messaging.errors import (
    BrokerUnavailableError,
    EnvelopeError,
    MessagingError,
    PermanentError,
)
from shop_common.messaging.inbox import delete_received, inbox_table, record_once
from shop_common.messaging.outbox import Outbox, delete_published, notify_channel, outbox_table
from shop_common.messaging.parking import replay_parked
from shop_common.messaging.relay import OutboxRelay
from shop_common.messaging.retention import RetentionSweeper
from shop_common.messaging.topology import (
    DEFAULT_EXCHANGE,
    ConsumerTopology,
    declare_consumer_topology,
    declare_events_exchange,
    ensure_topology,
)

__all__ = [
    "DEFAULT_EXCHANGE",
    "Backoff",
    "BrokerUnavailableError",
    "ConsumerTopology",
    "Envelope",
    "EnvelopeError",
    "EventConsumer",
    "Handler",
    "MessagingError",
    "Outbox",
    "OutboxRelay",
    "Outcome",
    "PermanentError",
    "RetentionSweeper",
    "declare_consumer_topology",
    "declare_events_exchange",
    "delete_published",
    "delete_received",
    "ensure_topology",
    "from_message",
    "inbox_table",
    "notify_channel",
    "outbox_table",
    "parse_envelope",
    "record_once",
    "replay_parked",
    "to_message",
]
