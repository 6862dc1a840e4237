"""The reservation table: one row per order Catalog has heard of."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shop_catalog.db import Base


class ReservationStatus(enum.StrEnum):
    NEW = "NEW"  # row exists to serialise the order's events; nothing decided yet
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"
    CANCELLED = "CANCELLED"  # cancelled before any reservation: nothing may be reserved


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('NEW', 'RESERVED', 'REJECTED', 'RELEASED', 'CANCELLED')",
            name="status_known",
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    # [{"product_id": "...", "quantity": n}] as reserved, so release gives back exactly that.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
