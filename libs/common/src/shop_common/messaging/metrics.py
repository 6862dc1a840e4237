"""Prometheus metrics of the relay and the consumers (default registry, so /metrics has them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PUBLISHED = Counter(
    "shop_outbox_published_total",
    "Outbox events confirmed by the broker and marked sent.",
    ["outbox"],
)
OUTBOX_FAILURES = Counter(
    "shop_outbox_publish_failures_total",
    "Outbox publish attempts that failed; reason is unroutable, nacked or broker_error.",
    ["outbox", "reason"],
)
OUTBOX_PENDING = Gauge(
    "shop_outbox_pending",
    "Outbox rows not yet published.",
    ["outbox"],
)
OUTBOX_LAG = Gauge(
    "shop_outbox_lag_seconds",
    "Age of the oldest unpublished outbox row (0 when none).",
    ["outbox"],
)
EVENTS_CONSUMED = Counter(
    "shop_events_consumed_total",
    "Deliveries by outcome: handled, duplicate, retried or parked.",
    ["queue", "type", "outcome"],
)
CONSUMER_SESSIONS = Counter(
    "shop_consumer_sessions_total",
    "Broker sessions a consumer has opened (more than one means it reconnected).",
    ["queue"],
)
CONSUMER_BATCH_SIZE = Histogram(
    "shop_consumer_batch_size",
    "Deliveries applied together in one transaction.",
    ["queue"],
    buckets=(1, 2, 5, 10, 20, 50, 100),
)
CONSUMER_PAUSED = Gauge(
    "shop_consumer_paused",
    "1 while the consumer waits for its database (unsubscribed, not ready), else 0.",
    ["queue"],
)
CONSUMER_INFRASTRUCTURE_FAILURES = Counter(
    "shop_consumer_infrastructure_failures_total",
    "Handler failures of the service's own database, never counted as a message's retries; "
    "kind is contention, connection or unavailable.",
    ["queue", "kind"],
)
PARKED_MESSAGES = Gauge(
    "shop_parked_messages",
    "Messages in a consumer's parking queue, as its worker last looked (every 15 s).",
    ["queue"],
)
CONSUMER_HANDLE_DURATION = Histogram(
    "shop_consumer_handle_duration_seconds",
    "Time to apply a transaction of deliveries: the inbox, the handlers and the commit.",
    ["queue"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
RELAY_PUBLISH_DURATION = Histogram(
    "shop_relay_publish_duration_seconds",
    "Time to publish a batch of outbox rows until the broker confirmed them all.",
    ["outbox"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
