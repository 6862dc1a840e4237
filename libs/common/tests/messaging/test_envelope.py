"""The envelope is CloudEvents 1.0, RabbitMQ binding, binary mode; parsing is strict."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_binary, from_rabbitmq
from cloudevents.core.formats.json import JSONFormat

from shop_common.messaging import Envelope, EnvelopeError, parse_envelope, to_message
from shop_common.tracing import current_traceparent, trace_context

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def make_envelope(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "source": "/orders",
        "type": "orders.order.placed.v1",
        "subject": str(uuid.uuid4()),
        "time": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "data": {"order_id": "x", "lines": [{"quantity": 2}], "note": "ünïcode"},
        "traceparent": TRACEPARENT,
    }
    fields.update(overrides)
    return Envelope(**fields)  # type: ignore[arg-type]


def sdk_message(envelope: Envelope) -> RabbitMQMessage:
    message = to_message(envelope)
    headers = {k: v for k, v in message.headers.items() if isinstance(v, str)}
    return RabbitMQMessage(headers=headers, content_type=message.content_type, body=message.body)


@pytest.mark.parametrize("parse", [from_binary, from_rabbitmq])
def test_the_official_sdk_reads_what_we_write(parse) -> None:
    envelope = make_envelope()
    event = parse(sdk_message(envelope), JSONFormat())
    assert event.get_specversion() == "1.0"
    assert event.get_id() == str(envelope.id)
    assert event.get_source() == "/orders"
    assert event.get_type() == "orders.order.placed.v1"
    assert event.get_subject() == envelope.subject
    assert event.get_time() == envelope.time
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == envelope.data


def test_message_properties() -> None:
    envelope = make_envelope()
    message = to_message(envelope)
    assert message.delivery_mode == 2  # persistent
    assert message.message_id == str(envelope.id)  # aiormq matches returns by it
    assert message.headers["traceparent"] == TRACEPARENT
    assert message.headers["ce-time"] == "2026-01-02T03:04:05.678901Z"


def test_round_trip_keeps_every_attribute() -> None:
    envelope = make_envelope(time=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))))
    message = to_message(envelope)
    parsed = parse_envelope(message.headers, message.content_type, message.body)
    assert parsed == envelope
    assert parsed.data == envelope.data


def test_bytes_headers_are_accepted() -> None:
    message = to_message(make_envelope())
    headers = {k: v.encode() if isinstance(v, str) else v for k, v in message.headers.items()}
    assert parse_envelope(headers, message.content_type, message.body).type.endswith(".v1")


def good() -> tuple[dict[str, object], str | None, bytes]:
    message = to_message(make_envelope())
    return dict(message.headers), message.content_type, message.body


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda h, c, b: h.pop("ce-id"), "missing"),
        (lambda h, c, b: h.pop("ce-subject"), "missing"),
        (lambda h, c, b: h.pop("ce-time"), "missing"),
        (lambda h, c, b: h.update({"ce-id": "not-a-uuid"}), "UUID"),
        (lambda h, c, b: h.update({"ce-specversion": "0.3"}), "specversion"),
        (lambda h, c, b: h.update({"ce-source": "orders"}), "source"),
        (lambda h, c, b: h.update({"ce-type": "OrderPlaced"}), "type"),
        (lambda h, c, b: h.update({"ce-time": "2026-01-02 03:04:05"}), "time"),
        (lambda h, c, b: h.update({"ce-time": "2026-01-02T03:04:05"}), "time"),
        (lambda h, c, b: h.update({"ce-time": "yesterday"}), "time"),
        (lambda h, c, b: h.update({"ce-id": 42}), "string"),
    ],
)
def test_strict_parsing_rejects_bad_attributes(change, error: str) -> None:
    headers, content_type, body = good()
    change(headers, content_type, body)
    with pytest.raises(EnvelopeError, match=error):
        parse_envelope(headers, content_type, body)


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("text/plain", b"{}", "content type"),
        (None, b"{}", "content type"),
        ("application/json", b"{not json", "JSON"),
        ("application/json", b"\xff\xfe", "UTF-8"),
        ("application/json", json.dumps([1, 2]).encode(), "object"),
    ],
)
def test_strict_parsing_rejects_bad_data(content_type, body: bytes, error: str) -> None:
    headers, _, _ = good()
    with pytest.raises(EnvelopeError, match=error):
        parse_envelope(headers, content_type, body)


def test_content_type_parameters_are_allowed() -> None:
    headers, _, body = good()
    assert parse_envelope(headers, "application/json; charset=utf-8", body)


def test_invalid_traceparent_is_dropped_not_fatal() -> None:
    headers, content_type, body = good()
    headers["traceparent"] = "00-garbage"
    assert parse_envelope(headers, content_type, body).traceparent is None
    headers.pop("traceparent")
    assert parse_envelope(headers, content_type, body).traceparent is None


def test_trace_context_is_scoped() -> None:
    assert current_traceparent() is None
    with trace_context(TRACEPARENT):
        assert current_traceparent() == TRACEPARENT
        with trace_context("junk"):
            assert current_traceparent() is None
    assert current_traceparent() is None


def test_envelope_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        make_envelope(time=datetime(2026, 1, 1))  # noqa: DTZ001
