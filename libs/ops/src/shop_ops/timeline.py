"""One order's saga as a timeline: every step both services recorded, and what it waits for.

Pure: it takes what `records` read from each service and builds the steps (written,
published, received, for each event about the order), in time order with the gap to the
step before, and finds the first thing that has not happened yet. Times come from two
clocks: a step written by a service process (an outbox row's `created_at`) uses that
process's, the others (`published_at`, `received_at`, the rows' timestamps) the database's;
with synchronised clocks the skew is far below the gaps that matter here.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shop_common.events import EventType
from shop_ops.records import EventRecord, ServiceRecords
from shop_ops.settings import Service

# What the writing of each event means for the order (the step's name).
_WRITTEN: dict[str, str] = {
    EventType.ORDER_PLACED_V1: "placed",
    EventType.ORDER_CONFIRMED_V1: "confirmed",
    EventType.ORDER_REJECTED_V1: "rejected",
    EventType.ORDER_CANCELLED_V1: "cancelled",
    EventType.STOCK_RESERVED_V1: "reserved",
    EventType.STOCK_REJECTED_V1: "reservation rejected",
    EventType.STOCK_RELEASED_V1: "released",
}
_DECISIONS = {EventType.STOCK_RESERVED_V1, EventType.STOCK_REJECTED_V1}
# Events a consumer only acknowledges (`shop_common.messaging.acknowledge`, ADR 0011): it
# validates and acks them without an inbox record, so their receipt leaves no trace and
# nobody waits for it. Kept equal to the services' HANDLERS by a test.
UNRECORDED = frozenset({EventType.ORDER_CONFIRMED_V1, EventType.ORDER_REJECTED_V1})


class SagaState(enum.StrEnum):
    COMPLETE = "complete"  # every event delivered, nothing left to do
    IN_PROGRESS = "in-progress"  # waiting, for less than the stuck threshold
    STUCK = "stuck"
    NOT_FOUND = "not-found"


class StepKind(enum.StrEnum):
    WRITTEN = "written"
    PUBLISHED = "published"
    RECEIVED = "received"


@dataclass(frozen=True)
class Step:
    at: datetime
    service: Service  # where it happened
    kind: StepKind
    name: str  # "placed", "published", "received", "reserved", ...
    event_type: str
    event_id: uuid.UUID
    gap: timedelta | None = None  # since the step before


@dataclass(frozen=True)
class Waiting:
    """The first thing that has not happened: who must do what, since when, where to look."""

    service: Service
    action: str
    since: datetime
    waited: timedelta
    hint: str
    event_type: str | None = None
    event_id: uuid.UUID | None = None
    parked: bool = False


@dataclass(frozen=True)
class Timeline:
    order_id: uuid.UUID
    state: SagaState
    order: ServiceRecords
    reservation: ServiceRecords
    steps: tuple[Step, ...]
    waiting: Waiting | None
    notes: tuple[str, ...] = ()

    @property
    def duration(self) -> timedelta | None:
        """From the first step to the last one recorded."""
        return self.steps[-1].at - self.steps[0].at if self.steps else None

    def with_parked(self, reason: str | None, parked_at: str | None) -> Timeline:
        """The same timeline, knowing the event it waits for is in a parking queue."""
        if self.waiting is None:
            return self
        queue = f"{self.waiting.service}.events.parking"
        hint = (
            f"parked in {queue} since {parked_at or '?'}: {reason or 'no reason recorded'}. "
            f"Fix the cause, then: shop-ops parked replay --service {self.waiting.service} "
            f"{self.waiting.event_id}"
        )
        return replace(self, waiting=replace(self.waiting, hint=hint, parked=True))


def build_timeline(
    order_id: uuid.UUID,
    orders: ServiceRecords,
    catalog: ServiceRecords,
    received: Mapping[Service, Mapping[uuid.UUID, datetime]],
    *,
    stuck_after: timedelta,
) -> Timeline:
    """`received[s]` maps the other service's event ids to when `s` recorded them."""
    records = {Service.ORDERS: orders, Service.CATALOG: catalog}
    if orders.state is None and catalog.state is None and not orders.events:
        return Timeline(order_id, SagaState.NOT_FOUND, orders, catalog, (), None)
    steps = _steps(records, received)
    now = max(orders.checked_at, catalog.checked_at)
    waits = _undelivered(records, received) + _undecided(records, received)
    waiting = None
    if waits:
        service, action, since, hint, event = min(waits, key=lambda wait: wait[2])
        waiting = Waiting(
            service=service,
            action=action,
            since=since,
            waited=max(now - since, timedelta(0)),
            hint=hint,
            event_type=None if event is None else event.type,
            event_id=None if event is None else event.id,
        )
    if waiting is None:
        state = SagaState.COMPLETE
    else:
        state = SagaState.STUCK if waiting.waited > stuck_after else SagaState.IN_PROGRESS
    notes: tuple[str, ...] = ()
    if orders.state is not None and not orders.events:
        notes = (
            "No outbox rows about this order: published rows are deleted after "
            "<SERVICE>_OUTBOX_RETENTION_DAYS (7 by default), inbox receipts after "
            "<SERVICE>_INBOX_RETENTION_DAYS (30).",
        )
    return Timeline(order_id, state, orders, catalog, steps, waiting, notes)


def _steps(
    records: Mapping[Service, ServiceRecords],
    received: Mapping[Service, Mapping[uuid.UUID, datetime]],
) -> tuple[Step, ...]:
    """Event by event, in the order they were written; each written, published, received.

    Causal, not strictly by the clock: `published` is when the relay recorded the broker's
    confirm, which can come a few milliseconds after the consumer already recorded the
    event (that gap then shows as negative).
    """
    chain: list[tuple[datetime, int, list[Step]]] = []
    order = records[Service.ORDERS].state
    for producer, record in records.items():
        for event in record.events:
            written = event.created_at
            if event.type == EventType.ORDER_PLACED_V1 and order is not None:
                written = min(order.created_at, written)  # the order row is the placing
            name = _WRITTEN.get(event.type, event.type)
            steps = [Step(written, producer, StepKind.WRITTEN, name, event.type, event.id)]
            if event.published_at is not None:
                steps.append(
                    Step(
                        event.published_at,
                        producer,
                        StepKind.PUBLISHED,
                        "published",
                        event.type,
                        event.id,
                    )
                )
            # Received but not recorded as published: the relay died between the broker's
            # confirm and its own update (it will publish it again; the inbox drops that).
            got = received[producer.other].get(event.id)
            if got is not None:
                steps.append(
                    Step(got, producer.other, StepKind.RECEIVED, "received", event.type, event.id)
                )
            chain.append((written, len(chain), steps))
    chain.sort(key=lambda link: (link[0], link[1]))
    ordered: list[Step] = []
    for _, _, steps in chain:
        for step in steps:
            gap = step.at - ordered[-1].at if ordered else None
            ordered.append(replace(step, gap=gap))
    return tuple(ordered)


_Wait = tuple[Service, str, datetime, str, EventRecord | None]


def _undelivered(
    records: Mapping[Service, ServiceRecords],
    received: Mapping[Service, Mapping[uuid.UUID, datetime]],
) -> list[_Wait]:
    waits: list[_Wait] = []
    for producer, record in records.items():
        consumer = producer.other
        got = received[consumer]
        for n, event in enumerate(record.events):
            # A later event of the same type that arrived supersedes this one (a re-send).
            if any(later.type == event.type and later.id in got for later in record.events[n:]):
                continue
            if event.published_at is None:
                error = f"; last error: {event.last_error}" if event.last_error else ""
                hint = (
                    f"{producer}-worker's relay has not published it "
                    f"({event.attempts} attempts{error}). Look: shop-ops outbox status, "
                    f"is {producer}-worker running, is the broker up?"
                )
                waits.append((producer, f"publish {event.type}", event.created_at, hint, event))
            elif event.id not in got and event.type not in UNRECORDED:
                hint = (
                    f"{consumer}-worker has not recorded it. Look: is {consumer}-worker running "
                    f"and ready, is the {consumer}.events queue backed up, is it parked "
                    f"(shop-ops parked list --service {consumer})?"
                )
                waits.append((consumer, f"receive {event.type}", event.published_at, hint, event))
    return waits


def _undecided(
    records: Mapping[Service, ServiceRecords],
    received: Mapping[Service, Mapping[uuid.UUID, datetime]],
) -> list[_Wait]:
    """Everything was delivered, yet a service did not act on it."""
    order = records[Service.ORDERS].state
    reservation = records[Service.CATALOG].state
    orders_events, catalog_events = records[Service.ORDERS].events, records[Service.CATALOG].events
    holds = "no reservation row" if reservation is None else f"reservation {reservation.status}"
    waits: list[_Wait] = []
    if order is None:
        return waits
    if order.status == "PENDING":
        decisions = [e for e in catalog_events if e.type in _DECISIONS]
        placements = [
            e
            for e in orders_events
            if e.type == EventType.ORDER_PLACED_V1 and e.id in received[Service.CATALOG]
        ]
        if placements and not decisions:
            since = received[Service.CATALOG][placements[-1].id]
            hint = (
                f"Catalog recorded the placement but wrote no answer ({holds}): "
                "see catalog-worker's logs."
            )
            waits.append((Service.CATALOG, "reserve or reject the stock", since, hint, None))
        answered = [e for e in decisions if e.id in received[Service.ORDERS]]
        if answered:
            since = received[Service.ORDERS][answered[-1].id]
            hint = (
                "Orders recorded Catalog's answer but the order is still PENDING: "
                "see orders-worker's logs."
            )
            waits.append((Service.ORDERS, "confirm or reject the order", since, hint, None))
    if order.status == "CANCELLED" and reservation is not None and reservation.status == "RESERVED":
        cancels = [
            e
            for e in orders_events
            if e.type == EventType.ORDER_CANCELLED_V1 and e.id in received[Service.CATALOG]
        ]
        if cancels:
            since = received[Service.CATALOG][cancels[-1].id]
            hint = (
                "Catalog recorded the cancel but still holds the stock: see catalog-worker's logs."
            )
            waits.append((Service.CATALOG, "release the reservation", since, hint, None))
    return waits
