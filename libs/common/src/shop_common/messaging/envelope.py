"""CloudEvents 1.0 envelope over the RabbitMQ protocol binding, binary content mode.

Attributes travel as `ce-*` headers, `datacontenttype` is the AMQP `content_type`, the
body is the JSON `data`. The W3C `traceparent`/`tracestate` travel as plain headers. We do
not depend on the CloudEvents SDK at runtime; the tests prove the SDK reads what we write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractMessage, HeadersType
from aiormq import spec

from shop_common.messaging.errors import EnvelopeError
from shop_common.tracing import TRACEPARENT_HEADER, TRACESTATE_HEADER, valid_traceparent

SPECVERSION: Final = "1.0"
JSON_CONTENT_TYPE: Final = "application/json"
CE_PREFIX: Final = "ce-"

# <producer>.<aggregate>.<what happened>.v<major>, e.g. orders.order.placed.v1
_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*$")
_REQUIRED = ("specversion", "id", "source", "type", "subject", "time")


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One event as it travels: CloudEvents attributes plus its JSON object `data`."""

    id: UUID
    source: str
    type: str
    subject: str
    time: datetime
    data: Mapping[str, Any] = field(hash=False)
    traceparent: str | None = None
    tracestate: str | None = None

    def __post_init__(self) -> None:
        if not self.source.startswith("/") or len(self.source) < 2:
            raise ValueError(f"source must be a path like '/orders', got {self.source!r}")
        if not _TYPE.match(self.type):
            raise ValueError(f"type must look like 'orders.order.placed.v1', got {self.type!r}")
        if not self.subject:
            raise ValueError("subject (the aggregate id) must not be empty")
        if self.time.tzinfo is None:
            raise ValueError("time must be timezone-aware")


def producer_source(event_type: str) -> str:
    """The only `source` an event of this type may come from: `/<first segment>`.

    Types are named `<producer>.<aggregate>.<what happened>.v<n>`, so `catalog.*` comes
    from `/catalog` and `orders.*` from `/orders`; consumers park anything else.
    """
    return "/" + event_type.split(".", 1)[0]


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as the CloudEvents spec and SDK write it."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_message(envelope: Envelope) -> Message:
    """A persistent AMQP message in CloudEvents binary mode (`message_id` = event id)."""
    return Message(
        _body(envelope),
        headers=_headers(envelope),
        content_type=JSON_CONTENT_TYPE,
        delivery_mode=DeliveryMode.PERSISTENT,
        # aiormq matches a Basic.Return to its publish by message_id: mandatory needs it.
        message_id=str(envelope.id),
        timestamp=envelope.time,
        type=envelope.type,
        app_id=envelope.source.removeprefix("/"),
    )


def to_frame(envelope: Envelope) -> tuple[bytes, spec.Basic.Properties]:
    """The same message as `to_message`, as the body and properties aiormq publishes.

    For the relay's hot path: it skips building an aio-pika `Message` per event.
    """
    properties = spec.Basic.Properties(
        content_type=JSON_CONTENT_TYPE,
        delivery_mode=DeliveryMode.PERSISTENT.value,
        priority=0,  # as aio-pika writes it: the same bytes on the wire either way
        headers=_headers(envelope),
        message_id=str(envelope.id),
        timestamp=envelope.time,
        message_type=envelope.type,
        app_id=envelope.source.removeprefix("/"),
    )
    return _body(envelope), properties


def _body(envelope: Envelope) -> bytes:
    return json.dumps(envelope.data, separators=(",", ":"), ensure_ascii=False).encode()


def _headers(envelope: Envelope) -> HeadersType:
    headers: HeadersType = {
        "ce-specversion": SPECVERSION,
        "ce-id": str(envelope.id),
        "ce-source": envelope.source,
        "ce-type": envelope.type,
        "ce-subject": envelope.subject,
        "ce-time": format_time(envelope.time),
    }
    if envelope.traceparent is not None:
        headers[TRACEPARENT_HEADER] = envelope.traceparent
        if envelope.tracestate is not None:
            headers[TRACESTATE_HEADER] = envelope.tracestate
    return headers


def from_message(message: AbstractMessage) -> Envelope:
    """Read a received message strictly; raise `EnvelopeError` saying what is wrong."""
    return parse_envelope(message.headers, message.content_type, message.body)


def parse_envelope(
    headers: Mapping[str, object], content_type: str | None, body: bytes
) -> Envelope:
    attributes = {
        name.lower().removeprefix(CE_PREFIX): _text(name, value)
        for name, value in headers.items()
        if name.lower().startswith(CE_PREFIX)
    }
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise EnvelopeError(f"missing CloudEvents attribute(s): {', '.join(missing)}")
    if attributes["specversion"] != SPECVERSION:
        raise EnvelopeError(f"unsupported specversion {attributes['specversion']!r}")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != JSON_CONTENT_TYPE:
        raise EnvelopeError(f"content type must be {JSON_CONTENT_TYPE}, got {content_type!r}")
    try:
        event_id = UUID(attributes["id"])
    except ValueError:
        raise EnvelopeError(f"id is not a UUID: {attributes['id']!r}") from None
    time = _parse_time(attributes["time"])
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvelopeError(f"data is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EnvelopeError(f"data must be a JSON object, got {type(data).__name__}")
    traceparent = valid_traceparent(_optional_text(headers, TRACEPARENT_HEADER))
    try:
        return Envelope(
            id=event_id,
            source=attributes["source"],
            type=attributes["type"],
            subject=attributes["subject"],
            time=time,
            data=data,
            traceparent=traceparent,
            tracestate=_optional_text(headers, TRACESTATE_HEADER) if traceparent else None,
        )
    except ValueError as exc:
        raise EnvelopeError(str(exc)) from None


def _text(name: str, value: object) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError(f"header {name} is not UTF-8") from None
    if isinstance(value, str):
        return value
    raise EnvelopeError(f"header {name} must be a string, got {type(value).__name__}")


def _optional_text(headers: Mapping[str, object], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else None


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EnvelopeError(f"time is not RFC 3339: {value!r}") from None
    if "T" not in value.upper() or parsed.tzinfo is None:
        raise EnvelopeError(f"time must be RFC 3339 with an offset: {value!r}")
    return parsed
