"""Event messaging shared by the services: envelope, outbox, relay, inbox consumer, topology.

See docs/events.md for the whole story. A service declares its outbox and inbox tables in
its own schema (its migrations create them) and one `Outbox` that writes its events:

>>> from sqlalchemy import MetaData
>>> metadata = MetaData(schema="orders")  # the service's own, in its migrations too
>>> OUTBOX, INBOX = outbox_table(metadata), inbox_table(metadata)
>>> outbox = Outbox(OUTBOX, service="orders")
>>> outbox.source, outbox.channel
('/orders', 'orders_outbox')

A state change enqueues its event inside its own transaction (the caller's session), so
the event exists if and only if the change commits:

>>> import uuid
>>> from shop_common.events import EventType, OrderCancelledV1
>>> async def cancel(session, order_id: uuid.UUID) -> None:
...     async with session.begin():
...         ...  # the state change
...         event = OrderCancelledV1(order_id=order_id)
...         await outbox.enqueue(session, EventType.ORDER_CANCELLED_V1, event, subject=order_id)

On the wire an event is a CloudEvents message (binary mode), read back strictly:

>>> from datetime import UTC, datetime
>>> order_id = uuid.UUID(int=7)
>>> envelope = Envelope(id=uuid.UUID(int=1), source="/orders", type="orders.order.cancelled.v1",
...                     subject=str(order_id), time=datetime(2026, 1, 1, tzinfo=UTC),
...                     data={"order_id": str(order_id), "reason": None})
>>> message = to_message(envelope)
>>> message.headers["ce-type"], message.content_type
('orders.order.cancelled.v1', 'application/json')
>>> from_message(message) == envelope
True

A worker runs the relay (outbox to broker) and the consumer (broker to handlers, each in
one transaction with its inbox record). Nothing connects before `run`, and
`shop_common.worker.run_service_worker` builds and runs exactly these:

>>> from shop_common.db import create_engine, create_sessionmaker
>>> engine = create_engine("postgresql+asyncpg://orders_svc@127.0.0.1:5432/shop",
...                        schema="orders", application_name="orders-worker")
>>> amqp_url = "amqp://guest:guest@127.0.0.1:5672/"
>>> async def on_stock_reserved(session, envelope, event) -> None: ...
>>> relay = OutboxRelay(engine=engine, table=OUTBOX, amqp_url=amqp_url)
>>> consumer = EventConsumer(amqp_url=amqp_url, sessionmaker=create_sessionmaker(engine),
...                          inbox=INBOX, topology=ConsumerTopology(service="orders"),
...                          handlers={EventType.STOCK_RESERVED_V1: on_stock_reserved})
>>> consumer.topology.queue, consumer.topology.parking_queue
('orders.events', 'orders.events.parking')
"""

from shop_common.messaging.backoff import Backoff
from shop_common.messaging.consumer import EventConsumer, Handler, Outcome, acknowledge
from shop_common.messaging.envelope import (
    Envelope,
    from_message,
    parse_envelope,
    producer_source,
    to_message,
)
from shop_common.messaging.errors import (
    BrokerUnavailableError,
    EnvelopeError,
    MessagingError,
    PermanentError,
)
from shop_common.messaging.failures import Failure
from shop_common.messaging.inbox import delete_received, inbox_table, record_new, record_once
from shop_common.messaging.outbox import Outbox, delete_published, notify_channel, outbox_table
from shop_common.messaging.parking import (
    ParkedMessage,
    ParkedOutcome,
    ParkedResult,
    ParkingReport,
    list_parked,
    purge_parked,
    replay_parked,
)
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
    "Failure",
    "Handler",
    "MessagingError",
    "Outbox",
    "OutboxRelay",
    "Outcome",
    "ParkedMessage",
    "ParkedOutcome",
    "ParkedResult",
    "ParkingReport",
    "PermanentError",
    "RetentionSweeper",
    "acknowledge",
    "declare_consumer_topology",
    "declare_events_exchange",
    "delete_published",
    "delete_received",
    "ensure_topology",
    "from_message",
    "inbox_table",
    "list_parked",
    "notify_channel",
    "outbox_table",
    "parse_envelope",
    "producer_source",
    "purge_parked",
    "record_new",
    "record_once",
    "replay_parked",
    "to_message",
]
