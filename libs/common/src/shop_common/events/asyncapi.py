"""The AsyncAPI 3 document of `shop.events`, generated from the event registry.

One channel per event type (its routing key on the topic exchange), one message per type
(CloudEvents binary mode: `ce-*` headers, JSON data whose schema is the payload model's),
a `send` operation for the service that owns the type and a `receive` operation for each
service that consumes it. docs/asyncapi.yaml is this document, checked in; a test fails
when the two differ (docs/events.md says how to regenerate it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic.json_schema import models_json_schema

from shop_common.events.registry import PAYLOAD_MODELS
from shop_common.tracing import TRACEPARENT_HEADER, TRACESTATE_HEADER

EXCHANGE = "shop.events"
_AMQP_BINDING_VERSION = "0.3.0"


def asyncapi_document(consumers: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """The document; `consumers` maps a service name to the event types it handles."""
    models = sorted(set(PAYLOAD_MODELS.values()), key=lambda m: m.__name__)
    refs, definitions = models_json_schema(
        [(model, "serialization") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for key, model in sorted(PAYLOAD_MODELS.items()):
        event_type = str(key)  # plain strings: the document is data, not our enums
        owner = event_type.split(".", 1)[0]
        channels[event_type] = {
            "address": event_type,
            "title": event_type,
            "messages": {event_type: {"$ref": f"#/components/messages/{event_type}"}},
            "bindings": {"amqp": _channel_binding()},
        }
        messages[event_type] = {
            "name": event_type,
            "title": model.__name__,
            "summary": (model.__doc__ or model.__name__).strip().splitlines()[0],
            "contentType": "application/json",
            "headers": _cloudevents_headers(event_type, owner),
            "payload": refs[(model, "serialization")],
        }
        operations[f"{owner}.publishes.{event_type}"] = _operation("send", owner, event_type)
        for service, handled in sorted(consumers.items()):
            if event_type in {str(t) for t in handled}:
                operations[f"{service}.consumes.{event_type}"] = _operation(
                    "receive", service, event_type
                )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Shop domain events",
            "version": "1.0.0",
            "description": (
                "Every event Catalog and Orders publish on the topic exchange "
                f"`{EXCHANGE}`, in CloudEvents' AMQP binary mode, persistent, mandatory and "
                "confirmed. Payloads are JSON; a consumer ignores fields it does not know, "
                "so a `.v1` may gain optional fields; anything else is a new version. "
                "Generated from shop_common.events (docs/events.md)."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The dev broker; production's is set by each deployment.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": definitions.get("$defs", {})},
    }


def _channel_binding() -> dict[str, Any]:
    return {
        "is": "routingKey",
        "exchange": {"name": EXCHANGE, "type": "topic", "durable": True, "autoDelete": False},
        "bindingVersion": _AMQP_BINDING_VERSION,
    }


def _operation(action: str, service: str, event_type: str) -> dict[str, Any]:
    sends = action == "send"
    operation: dict[str, Any] = {
        "action": action,
        "title": f"{service} {'publishes' if sends else 'consumes'} {event_type}",
        "channel": {"$ref": f"#/channels/{event_type}"},
        "messages": [{"$ref": f"#/channels/{event_type}/messages/{event_type}"}],
        "tags": [{"name": service}],
    }
    if sends:  # persistent and mandatory (an unroutable event stays in the outbox)
        operation["bindings"] = {
            "amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": _AMQP_BINDING_VERSION}
        }
    else:  # the consumer acks after its transaction commits
        operation["bindings"] = {"amqp": {"ack": True, "bindingVersion": _AMQP_BINDING_VERSION}}
    return operation


def _cloudevents_headers(event_type: str, owner: str) -> dict[str, Any]:
    """The CloudEvents attributes as AMQP headers (`shop_common.messaging.envelope`)."""
    text = {"type": "string", "minLength": 1}
    return {
        "type": "object",
        "required": ["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject", "ce-time"],
        "properties": {
            "ce-specversion": {"const": "1.0"},
            "ce-id": {"type": "string", "format": "uuid", "description": "Same on redelivery"},
            "ce-source": {"const": f"/{owner}", "description": "The service that owns the type"},
            "ce-type": {"const": event_type},
            "ce-subject": {**text, "description": "The aggregate's id"},
            "ce-time": {"type": "string", "format": "date-time"},
            TRACEPARENT_HEADER: {**text, "description": "W3C trace context, if there is a trace"},
            TRACESTATE_HEADER: text,
        },
    }
