"""The reservation table: one row per order Catalog has heard of, and its state changes."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Enum, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shop_catalog.db import Base
from shop_catalog.reservations.lines import RejectedLines, StockLines
from shop_common.events import RejectedLineV1, StockLineV1


class ReservationStatus(enum.StrEnum):
    NEW = "NEW"  # row exists to serialise the order's events; nothing decided yet
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"
    CANCELLED = "CANCELLED"  # cancelled before any reservation: nothing may be reserved


_KNOWN = ", ".join(f"'{status}'" for status in ReservationStatus)


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (CheckConstraint(f"status IN ({_KNOWN})", name="status_known"),)

    order_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    status: Mapped[ReservationStatus] = mapped_column(
        Enum(ReservationStatus, native_enum=False, length=16, create_constraint=False)
    )
    # The lines as reserved, so a release gives back exactly that.
    lines: Mapped[tuple[StockLineV1, ...]] = mapped_column(StockLines, default=())
    # A rejection's verdicts, so a repeated placement is answered the same way (ADR 0012).
    rejected_lines: Mapped[tuple[RejectedLineV1, ...]] = mapped_column(
        RejectedLines, default=(), server_default=text("'[]'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    # Only a NEW reservation is decided, and only a RESERVED one is released; the service
    # checks the status first, so a wrong move here is a bug, not a duplicate event.
    def reserve(self, lines: tuple[StockLineV1, ...]) -> None:
        self._move(ReservationStatus.NEW, ReservationStatus.RESERVED)
        self.lines = lines

    def reject(self, verdicts: tuple[RejectedLineV1, ...]) -> None:
        self._move(ReservationStatus.NEW, ReservationStatus.REJECTED)
        self.rejected_lines = verdicts

    def forbid(self) -> None:
        """Leave a tombstone: the order was cancelled before its placement arrived."""
        self._move(ReservationStatus.NEW, ReservationStatus.CANCELLED)

    def release(self) -> tuple[StockLineV1, ...]:
        """Mark the reservation given back; returns the lines to give back."""
        self._move(ReservationStatus.RESERVED, ReservationStatus.RELEASED)
        return self.lines

    def _move(self, expected: ReservationStatus, new: ReservationStatus) -> None:
        if self.status is not expected:
            raise ValueError(
                f"reservation {self.order_id} is {self.status}: only a {expected} one "
                f"can become {new}"
            )
        self.status = new
