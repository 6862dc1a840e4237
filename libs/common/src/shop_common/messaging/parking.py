"""Copies of failed messages for the retry and parking queues, and the operator's tools on
parking: list, replay and purge, each in one pass that never loses a message.

A pass takes the messages that were parked when it began (`basic.get`, manual ack, in
batches whose copies are confirmed together) and does one of three things with each:

- keep it: publish a copy to the tail of the parking queue (confirmed), then ack the
  original. Listing is this, for every message, so after a pass the queue holds the same
  messages in the same order. Returning the original instead (`nack` with requeue) would
  count a delivery: quorum queues on RabbitMQ 4.0 to 4.2 count every return and discard a
  message past their default delivery limit (20) when, like ours, the parking queue has no
  dead-letter target, so twenty looks would drop a parked event;
- replay it: publish a copy, retries reset, to the service's own queue through its
  dead-letter exchange, mandatory and confirmed, then ack the original. A copy the broker
  returns (nothing bound: the queue or its binding is missing), refuses (nack) or does not
  confirm in time is not replayed: the message is kept (as above) and the result says why;
- purge it: ack the original, nothing else.

If a copy cannot be kept either, the original goes back unacked (the broker keeps it) and
the pass stops there, saying why: it never acks a message that is not safely elsewhere.
A second copy of an event the pass already dealt with is dropped, so one copy of each
event stays parked: the same event parked twice, or a message whose ack the broker lost
(a quorum queue can drop acks that reach it as their channel closes,
rabbitmq/rabbitmq-server#10327; the pass makes that rare, see `_pass`, and the next pass
cleans it up). One operator at a time: two passes at once see each other's copies
(nothing is lost, but a list may miss or repeat a message).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aio_pika
import aiormq
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, HeadersType
from aio_pika.exceptions import DeliveryError, PublishError

from shop_common.messaging.topology import ConsumerTopology

RETRIES_HEADER = "x-shop-retries"
LAST_ERROR_HEADER = "x-shop-last-error"
PARKED_REASON_HEADER = "x-shop-parked-reason"
PARKED_AT_HEADER = "x-shop-parked-at"
ORIGINAL_ROUTING_KEY_HEADER = "x-shop-original-routing-key"
# How many times an operator replayed this event (it survives a new parking, for the record).
REPLAYS_HEADER = "x-shop-replays"
# Broker-owned headers that must not ride on a copy we publish ourselves.
_BROKER_HEADERS = ("x-death", "x-delivery-count", "x-first-death-", "x-last-death-")
_PARKING_HEADERS = (RETRIES_HEADER, LAST_ERROR_HEADER, PARKED_REASON_HEADER, PARKED_AT_HEADER)
_CE_ID, _CE_TYPE, _CE_SOURCE, _CE_SUBJECT = "ce-id", "ce-type", "ce-source", "ce-subject"

DEFAULT_PASS_LIMIT = 10_000
DEFAULT_TIMEOUT = 10.0


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


@dataclass(frozen=True, kw_only=True)
class ParkedMessage:
    """What an operator needs to know about one parked message (headers made JSON-safe)."""

    # The event id (AMQP message_id or ce-id); for a message without one, a digest of its
    # body ("sha256:..."), stable for as long as the message is parked.
    id: str
    type: str | None
    source: str | None
    subject: str | None
    routing_key: str
    reason: str | None
    parked_at: str | None
    retries: int
    replays: int
    last_error: str | None
    content_type: str | None
    headers: Mapping[str, Any]
    body: bytes = field(repr=False)

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> ParkedMessage:
        headers = message.headers
        death = _first_death(headers)
        return cls(
            id=_message_id(message),
            type=_text(headers.get(_CE_TYPE)) or message.type,
            source=_text(headers.get(_CE_SOURCE)),
            subject=_text(headers.get(_CE_SUBJECT)),
            routing_key=_original_routing_key(message, death),
            reason=_text(headers.get(PARKED_REASON_HEADER)) or _death_reason(death),
            parked_at=_text(headers.get(PARKED_AT_HEADER)) or _death_time(death),
            retries=_count(headers.get(RETRIES_HEADER)),
            replays=_count(headers.get(REPLAYS_HEADER)),
            last_error=_text(headers.get(LAST_ERROR_HEADER)),
            content_type=message.content_type,
            headers={name: _plain(value) for name, value in headers.items()},
            body=message.body,
        )


class ParkedOutcome(enum.StrEnum):
    """What a pass did with one message. Only `replayed` and `purged` left the queue."""

    KEPT = "kept"
    WOULD_REPLAY = "would-replay"
    REPLAYED = "replayed"
    PURGED = "purged"
    UNROUTABLE = "unroutable"  # the broker returned the replay: still parked
    NACKED = "nacked"  # the broker refused the replay: still parked
    UNCONFIRMED = "unconfirmed"  # no confirm in time: still parked (a copy may be in the queue)

    @property
    def still_parked(self) -> bool:
        return self not in {ParkedOutcome.REPLAYED, ParkedOutcome.PURGED}

    @property
    def failed(self) -> bool:
        return self in {ParkedOutcome.UNROUTABLE, ParkedOutcome.NACKED, ParkedOutcome.UNCONFIRMED}


@dataclass(frozen=True)
class ParkedResult:
    message: ParkedMessage
    outcome: ParkedOutcome
    detail: str | None = None


@dataclass(frozen=True)
class ParkingReport:
    """One pass over a parking queue: what it found and what it did."""

    queue: str
    # Messages in the queue when the pass began; the pass looked at min(depth, limit).
    depth: int
    results: tuple[ParkedResult, ...]
    # Ids asked for that the pass did not find.
    missing: tuple[str, ...] = ()
    # Why the pass stopped early (a copy could not be kept), or None.
    aborted: str | None = None
    # Second copies of an event the pass had already dealt with, dropped (see `_pass`).
    duplicates: int = 0

    def count(self, outcome: ParkedOutcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def failed(self) -> tuple[ParkedResult, ...]:
        return tuple(result for result in self.results if result.outcome.failed)

    @property
    def ok(self) -> bool:
        return self.aborted is None and not self.failed and not self.missing


class _Action(enum.Enum):
    SKIP = enum.auto()  # keep, not reported (not selected)
    KEEP = enum.auto()
    DRY_RUN = enum.auto()
    REPLAY = enum.auto()
    PURGE = enum.auto()
    DROP = enum.auto()  # a second copy of an event this pass already dealt with


async def list_parked(
    amqp_url: str,
    topology: ConsumerTopology,
    *,
    limit: int = DEFAULT_PASS_LIMIT,
    broker_timeout: float = DEFAULT_TIMEOUT,
) -> ParkingReport:
    """Every parked message (up to `limit`), oldest first; the queue is left as it was."""
    return await _pass(
        amqp_url, topology, lambda _: _Action.KEEP, limit=limit, broker_timeout=broker_timeout
    )


async def replay_parked(
    amqp_url: str,
    topology: ConsumerTopology,
    *,
    ids: Collection[str] | None = None,
    dry_run: bool = False,
    limit: int = DEFAULT_PASS_LIMIT,
    broker_timeout: float = DEFAULT_TIMEOUT,
) -> ParkingReport:
    """Move parked messages (`ids`, or all when None) back to the service's queue.

    For operators, once the cause is fixed. Retries start again from zero; the inbox makes
    a replay of an already handled event harmless. A replay the broker does not confirm as
    routed leaves the message parked, reported as `unroutable`, `nacked` or `unconfirmed`.
    """
    action = _Action.DRY_RUN if dry_run else _Action.REPLAY
    return await _selected_pass(
        amqp_url, topology, ids, action, limit=limit, broker_timeout=broker_timeout
    )


async def purge_parked(
    amqp_url: str,
    topology: ConsumerTopology,
    ids: Collection[str],
    *,
    limit: int = DEFAULT_PASS_LIMIT,
    broker_timeout: float = DEFAULT_TIMEOUT,
) -> ParkingReport:
    """Delete the parked messages with these ids, for good (an event nobody should apply)."""
    if not ids:
        raise ValueError("name the messages to purge")
    return await _selected_pass(
        amqp_url, topology, ids, _Action.PURGE, limit=limit, broker_timeout=broker_timeout
    )


async def _selected_pass(
    amqp_url: str,
    topology: ConsumerTopology,
    ids: Collection[str] | None,
    action: _Action,
    *,
    limit: int,
    broker_timeout: float,
) -> ParkingReport:
    wanted = None if ids is None else frozenset(ids)
    report = await _pass(
        amqp_url,
        topology,
        lambda m: action if wanted is None or m.id in wanted else _Action.SKIP,
        limit=limit,
        broker_timeout=broker_timeout,
    )
    if wanted is None:
        return report
    found = {result.message.id for result in report.results}
    missing = tuple(sorted(wanted - found))
    return ParkingReport(
        report.queue, report.depth, report.results, missing, report.aborted, report.duplicates
    )


async def _pass(
    amqp_url: str,
    topology: ConsumerTopology,
    decide: Callable[[ParkedMessage], _Action],
    *,
    limit: int,
    broker_timeout: float,
) -> ParkingReport:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    connection = await aio_pika.connect(amqp_url, timeout=broker_timeout)
    try:
        # Two channels: one takes and settles the parked messages, the other publishes the
        # copies. A quorum queue's client in the broker counts a channel's unapplied
        # commands and, past 32, holds back its acks until the queue catches up; acks held
        # back when the channel closes are dropped and those messages come back
        # (rabbitmq/rabbitmq-server#10327). Publishing the copies elsewhere, and settling a
        # whole batch with one ack, keeps the reader far below that.
        reader = await connection.channel(publisher_confirms=False)
        writer = await connection.channel(publisher_confirms=True, on_return_raises=True)
        # Passive: a pass never creates topology (a missing one is the worker's to declare),
        # and a missing exchange or queue raises here, before anything was touched.
        dlx = await writer.get_exchange(topology.dead_letter_exchange)
        parking = await reader.declare_queue(topology.parking_queue, passive=True)
        depth = parking.declaration_result.message_count or 0
        results: list[ParkedResult] = []
        aborted: str | None = None
        seen: set[str] = set()
        duplicates = 0
        # Only the messages there when the pass began: kept copies go behind them.
        remaining = min(depth, limit)
        try:
            while remaining > 0 and aborted is None:
                batch: list[AbstractIncomingMessage] = []
                while len(batch) < min(_BATCH, remaining):
                    message = await parking.get(fail=False, timeout=broker_timeout)
                    if message is None:
                        break
                    batch.append(message)
                if not batch:
                    break
                remaining -= len(batch)
                settled = await _settle(batch, decide, seen, dlx, topology, broker_timeout)
                results += settled.results
                duplicates += settled.duplicates
                aborted = settled.aborted
            # Give the queue its last acks before closing the channel: a round trip, then a
            # pause far longer than a healthy broker needs. Should an ack still be lost, its
            # message comes back beside its copy, and the next pass drops the second one.
            await reader.declare_queue(topology.parking_queue, passive=True)
            await asyncio.sleep(_SETTLE_PAUSE)
        except (aiormq.exceptions.AMQPError, ConnectionError, TimeoutError) as exc:
            # Messages in hand were not acked: the broker gives them back.
            aborted = f"the broker connection failed mid-pass: {exc!r}"
    finally:
        await connection.close()
    return ParkingReport(topology.parking_queue, depth, tuple(results), (), aborted, duplicates)


_SETTLE_PAUSE = 0.5
# What an action leaves, unless a replay settles it: a dropped duplicate is acked, no copy.
_UNLESS_REPLAYED = {
    _Action.PURGE: ParkedOutcome.PURGED,
    _Action.DROP: ParkedOutcome.PURGED,
    _Action.DRY_RUN: ParkedOutcome.WOULD_REPLAY,
}
# Messages taken per round: their copies are confirmed together (one publish at a time
# waiting for its confirm made a pass ~20 times slower), then the originals are settled.
_BATCH = 100


@dataclass(frozen=True)
class _Settled:
    results: list[ParkedResult]
    duplicates: int
    aborted: str | None


async def _settle(
    batch: list[AbstractIncomingMessage],
    decide: Callable[[ParkedMessage], _Action],
    seen: set[str],
    dlx: AbstractExchange,
    topology: ConsumerTopology,
    broker_timeout: float,
) -> _Settled:
    """Replay, keep or purge each message of a batch; ack an original only once its copy
    (if it needs one) is confirmed. A second copy of an event already dealt with in this
    pass (the same event parked twice, or a message whose ack the broker lost) is dropped:
    one copy of it stays, or was replayed, or was purged as asked."""
    parked = [ParkedMessage.of(message) for message in batch]
    actions: list[_Action] = []
    for p in parked:
        actions.append(_Action.DROP if p.id in seen else decide(p))
        seen.add(p.id)
    outcomes: list[tuple[ParkedOutcome, str | None]] = [
        (_UNLESS_REPLAYED.get(action, ParkedOutcome.KEPT), None) for action in actions
    ]
    replays = [i for i, action in enumerate(actions) if action is _Action.REPLAY]
    replayed = await asyncio.gather(
        *(
            _publish(dlx, _replay_copy(batch[i], parked[i]), topology.queue, broker_timeout)
            for i in replays
        )
    )
    for i, failure in zip(replays, replayed, strict=True):
        outcomes[i] = (ParkedOutcome.REPLAYED, None) if failure is None else failure
    # Copies keep the batch's order at the tail of the parking queue.
    keep = [
        i
        for i, (outcome, _) in enumerate(outcomes)
        if outcome not in (ParkedOutcome.REPLAYED, ParkedOutcome.PURGED)
    ]
    kept = await asyncio.gather(
        *(
            _publish(dlx, _parked_copy(batch[i], parked[i]), topology.parking_queue, broker_timeout)
            for i in keep
        )
    )
    lost_copies = {i: failure for i, failure in zip(keep, kept, strict=True) if failure}
    aborted: str | None = None
    if not lost_copies:
        await batch[-1].ack(multiple=True)  # the whole batch (earlier ones are settled)
    else:
        for i, message in enumerate(batch):
            if i in lost_copies:  # not safely elsewhere: back to the broker, unacked
                await message.nack(requeue=True)
                aborted = (
                    f"could not keep {parked[i].id} parked ({lost_copies[i][1]}); "
                    "it was returned unacked"
                )
            else:
                await message.ack()
    results = [
        ParkedResult(parked[i], *outcomes[i])
        for i in range(len(batch))
        if i not in lost_copies and actions[i] not in (_Action.SKIP, _Action.DROP)
    ]
    duplicates = sum(1 for action in actions if action is _Action.DROP)
    return _Settled(results, duplicates, aborted)


async def _publish(
    exchange: AbstractExchange, message: Message, routing_key: str, broker_timeout: float
) -> tuple[ParkedOutcome, str] | None:
    """None once the broker confirmed it routed the message; else why not."""
    try:
        confirmation = await exchange.publish(
            message, routing_key, mandatory=True, timeout=broker_timeout
        )
    except PublishError as exc:  # Basic.Return: no queue bound for this routing key
        return ParkedOutcome.UNROUTABLE, f"returned by the broker: {exc}"
    except DeliveryError as exc:  # Basic.Nack
        return ParkedOutcome.NACKED, f"refused by the broker: {exc}"
    except TimeoutError:
        return ParkedOutcome.UNCONFIRMED, f"not confirmed within {broker_timeout:g} s"
    if not isinstance(confirmation, aiormq.spec.Basic.Ack):
        return ParkedOutcome.NACKED, f"not acknowledged: {confirmation!r}"
    return None


def _replay_copy(message: AbstractIncomingMessage, parked: ParkedMessage) -> Message:
    """The message for the service's queue: retries reset, the replay counted."""
    extra: HeadersType = {REPLAYS_HEADER: parked.replays + 1}
    return _with_id(copy_message(message, extra, drop=_PARKING_HEADERS), parked)


def _parked_copy(message: AbstractIncomingMessage, parked: ParkedMessage) -> Message:
    """The message for the tail of the parking queue, with what the broker's headers said."""
    kept: HeadersType = {ORIGINAL_ROUTING_KEY_HEADER: parked.routing_key}
    if parked.reason is not None:
        kept[PARKED_REASON_HEADER] = parked.reason
    if parked.parked_at is not None:
        kept[PARKED_AT_HEADER] = parked.parked_at
    return _with_id(copy_message(message, kept), parked)


def _with_id(copy: Message, parked: ParkedMessage) -> Message:
    # A message that came without an id would get a random one from the client library:
    # give it the id the operator saw, so it keeps it.
    copy.message_id = parked.id
    return copy


def _message_id(message: AbstractIncomingMessage) -> str:
    found = message.message_id or _text(message.headers.get(_CE_ID))
    return found or f"sha256:{hashlib.sha256(message.body).hexdigest()[:16]}"


def _first_death(headers: HeadersType) -> Mapping[str, Any] | None:
    """The broker's record of the first dead-lettering (x-death is newest first)."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], Mapping):
        return deaths[-1]
    return None


def _original_routing_key(message: AbstractIncomingMessage, death: Mapping[str, Any] | None) -> str:
    original = _text(message.headers.get(ORIGINAL_ROUTING_KEY_HEADER))
    if original:
        return original
    keys = death.get("routing-keys") if death else None
    if isinstance(keys, list) and keys:
        return _text(keys[0]) or ""
    return message.routing_key or ""


def _death_reason(death: Mapping[str, Any] | None) -> str | None:
    if death is None:
        return None
    reason, queue = _text(death.get("reason")), _text(death.get("queue"))
    return f"dead-lettered by the broker from {queue}: {reason}"


def _death_time(death: Mapping[str, Any] | None) -> str | None:
    when = death.get("time") if death else None
    if isinstance(when, datetime):
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
    return None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None if value is None else str(value)


def _count(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    text = _text(value)
    return max(int(text), 0) if text is not None and text.isdigit() else 0


def _plain(value: object) -> Any:
    """A header value as JSON can carry it (AMQP tables hold bytes, datetimes, decimals)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
