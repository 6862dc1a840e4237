"""The idempotency-key table, and the claim a request holds on one of its rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shop_orders.db import Base


class IdempotencyKey(Base):
    """One row per (customer, key): claimed while in flight, then the stored response."""

    __tablename__ = "idempotency_keys"

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Which request holds the claim: a takeover gets a new token, so only the current
    # holder can complete or release it.
    claim_token: Mapped[uuid.UUID] = mapped_column(server_default=func.gen_random_uuid())
    # NULL while the first request is in flight; set in the order's own transaction.
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    order_id: Mapped[uuid.UUID | None]
    # The database session (backend pid and its start) of the request holding the claim:
    # while it lives the request may still finish; once it is gone, so is the request.
    claimer_pid: Mapped[int | None] = mapped_column(Integer)
    claimer_started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The lease: a claim older than this is taken over even if its session still lives.
    claimed_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


@dataclass(frozen=True, slots=True)
class Claim:
    """One request's hold on (customer, key); `token` tells it apart from a later takeover."""

    customer_id: str
    key: str
    fingerprint: str
    token: uuid.UUID = field(default_factory=uuid.uuid4)
