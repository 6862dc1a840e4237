"""Base class of event payloads: strict when we build them, tolerant when we read them."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class EventPayload(BaseModel):
    """The `data` of a CloudEvent.

    Producing is strict (`extra="forbid"`): a typo in our own code fails loudly. Reading is
    a tolerant reader (`from_event_data` ignores unknown fields, at any depth), so a
    producer may add an optional field to a `.v1` event without breaking consumers that do
    not know it yet. Removing or changing a field is a new version (`.v2`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_event_data(cls, data: Any) -> Self:
        """Validate received data, ignoring fields this version does not know."""
        return cls.model_validate(data, extra="ignore")

    def to_event_data(self) -> dict[str, Any]:
        """JSON-ready dict (UUIDs and datetimes as strings)."""
        return self.model_dump(mode="json")
