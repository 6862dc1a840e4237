"""The order aggregate: its tables, its statuses, and every transition with the event it emits."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop_common.events import (
    EventPayload,
    EventType,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderLineV1,
    OrderPlacedV1,
    OrderRejectedV1,
)
from shop_orders.db import Base, one_of
from shop_orders.errors import OrderNotCancellable

REASON_LENGTH = 200


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


# Where each status may go next. The methods of `Order` below are the only writers of
# `status`; each checks this table and returns the event its transition emits.
NEXT: Mapping[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {
        OrderStatus.PENDING: frozenset(
            {OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.CANCELLED}
        ),
        OrderStatus.CONFIRMED: frozenset({OrderStatus.CANCELLED}),
        OrderStatus.REJECTED: frozenset(),
        OrderStatus.CANCELLED: frozenset(),
    }
)


class PricingSource(enum.StrEnum):
    CATALOG = "catalog"
    REPLICA = "replica"


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An event a transition emits, for the caller to put in the outbox with the change.

    `id` becomes the event's id: the order remembers the id of its latest request to
    Catalog, so the saga's sweeper can tell whether that request has left the outbox.
    """

    type: EventType
    payload: EventPayload
    subject: uuid.UUID
    # Names this copy; two events that say the same thing are equal whatever their ids.
    id: uuid.UUID = field(default_factory=uuid.uuid4, compare=False)


@dataclass(frozen=True, slots=True)
class PricedLine:
    """A line with what it records of its product at placement (pricing makes these)."""

    product_id: uuid.UUID
    sku: str
    name: str
    unit_price_cents: int
    quantity: int


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        one_of("status", OrderStatus, name="status_known"),
        one_of("pricing_source", PricingSource, name="pricing_source_known"),
        CheckConstraint("total_cents >= 0", name="total_non_negative"),
        Index("ix_orders_customer_created", "customer_id", "created_at", "id"),
        Index("ix_orders_created_at_id", "created_at", "id"),
        # The saga's periodic queries (ADR 0012) read only these few rows, in due order.
        Index(
            "ix_orders_pending_due",
            "next_check_at",
            postgresql_where=text(f"status = '{OrderStatus.PENDING}'"),
        ),
        Index(
            "ix_orders_release_unacknowledged",
            "next_check_at",
            postgresql_where=text(
                f"status = '{OrderStatus.CANCELLED}' AND stock_reserved_at IS NOT NULL"
                " AND stock_released_at IS NULL"
            ),
        ),
    )
    # The INSERT returns the server-set timestamps: no SELECT after it to read them back.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING)
    status_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    pricing_source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The saga's bookkeeping (ADR 0012), never shown to customers: the latest request sent
    # to Catalog (the placement while PENDING, the cancel once CANCELLED) and how many
    # copies of it went out; when the sweeper or the reconciler looks at the order next;
    # since when Catalog has been seen answering orders placed after this one; and what
    # Catalog reported doing with the stock.
    catalog_request_id: Mapped[uuid.UUID | None]
    catalog_request_sends: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    next_check_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    catalog_answering_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stock_reserved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stock_released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lines: Mapped[list[OrderLine]] = relationship(
        lazy="selectin", order_by="OrderLine.line_no", cascade="all, delete-orphan"
    )

    @classmethod
    def place(
        cls,
        customer_id: str,
        lines: Sequence[PricedLine],
        *,
        currency: str,
        pricing_source: PricingSource,
    ) -> tuple[Order, OrderEvent]:
        """A new PENDING order; its event asks Catalog to reserve every line (or none)."""
        order = cls(
            id=uuid.uuid4(),
            customer_id=customer_id,
            status=OrderStatus.PENDING,
            total_cents=sum(line.unit_price_cents * line.quantity for line in lines),
            currency=currency,
            pricing_source=pricing_source,
            lines=[
                OrderLine(
                    line_no=n,
                    product_id=line.product_id,
                    sku=line.sku,
                    name=line.name,
                    unit_price_cents=line.unit_price_cents,
                    quantity=line.quantity,
                )
                for n, line in enumerate(lines, start=1)
            ],
        )
        return order, order._request(order._placement())

    def resend_placement(self) -> OrderEvent | None:
        """Ask Catalog again (ADR 0012): a new copy of the placement, with an id of its own so
        Catalog's inbox does not drop it. Catalog answers it idempotently. Only while PENDING.
        """
        if self.status != OrderStatus.PENDING:
            return None
        return self._request(self._placement(), sends=self.catalog_request_sends + 1)

    def resend_cancel(self) -> OrderEvent | None:
        """Ask Catalog again to release what it reported reserved (reconciliation)."""
        if self.status != OrderStatus.CANCELLED:
            return None
        cancelled = OrderCancelledV1(order_id=self.id, reason=self.status_reason)
        return self._request(
            self._event(EventType.ORDER_CANCELLED_V1, cancelled),
            sends=self.catalog_request_sends + 1,
        )

    def record_stock_reserved(self) -> None:
        """Record that Catalog reported the stock reserved, whatever the status: an order
        cancelled before the answer came still has stock to get back."""
        if self.stock_reserved_at is None:
            self.stock_reserved_at = func.now()

    def record_stock_released(self) -> None:
        """Record that Catalog reported the reservation released (reconciliation stops)."""
        if self.stock_released_at is None:
            self.stock_released_at = func.now()

    def confirm(self) -> OrderEvent | None:
        """Catalog reserved the stock: PENDING -> CONFIRMED.

        From any other status a no-op: an order cancelled meanwhile stays CANCELLED, and
        Catalog releases the reservation when the cancel reaches it. Either way the order
        remembers that Catalog holds its stock, so the release can be chased (ADR 0012).
        """
        self.record_stock_reserved()
        if not self._may_become(OrderStatus.CONFIRMED):
            return None
        self._become(OrderStatus.CONFIRMED, reason=None)
        return self._event(EventType.ORDER_CONFIRMED_V1, OrderConfirmedV1(order_id=self.id))

    def reject(self, reason: str) -> OrderEvent | None:
        """Catalog could not reserve the stock: PENDING -> REJECTED; otherwise a no-op."""
        if not self._may_become(OrderStatus.REJECTED):
            return None
        self._become(OrderStatus.REJECTED, reason=reason)
        return self._event(
            EventType.ORDER_REJECTED_V1,
            OrderRejectedV1(order_id=self.id, reason=self.status_reason),
        )

    def cancel(self, reason: str) -> OrderEvent | None:
        """PENDING or CONFIRMED -> CANCELLED; cancelling again is a no-op.

        Raises `OrderNotCancellable` (409) for a REJECTED order: unlike a late event, a
        cancel is somebody's request, and it cannot be granted.
        """
        if self.status == OrderStatus.CANCELLED:
            return None
        if not self._may_become(OrderStatus.CANCELLED):
            raise OrderNotCancellable(f"A {self.status} order cannot be cancelled.")
        if self.status == OrderStatus.CONFIRMED:
            self.record_stock_reserved()  # also true of orders confirmed before it was recorded
        self._become(OrderStatus.CANCELLED, reason=reason)
        cancelled = OrderCancelledV1(order_id=self.id, reason=self.status_reason)
        return self._request(self._event(EventType.ORDER_CANCELLED_V1, cancelled))

    def _may_become(self, status: OrderStatus) -> bool:
        return status in NEXT[OrderStatus(self.status)]

    def _become(self, status: OrderStatus, *, reason: str | None) -> None:
        self.status = status
        self.status_reason = None if reason is None else reason[:REASON_LENGTH]
        self.updated_at = func.now()

    def _event(self, event_type: EventType, payload: EventPayload) -> OrderEvent:
        return OrderEvent(type=event_type, payload=payload, subject=self.id)

    def _placement(self) -> OrderEvent:
        placed = OrderPlacedV1(
            order_id=self.id,
            customer_id=self.customer_id,
            lines=tuple(
                OrderLineV1(product_id=line.product_id, quantity=line.quantity)
                for line in self.lines
            ),
        )
        return self._event(EventType.ORDER_PLACED_V1, placed)

    def _request(self, event: OrderEvent, *, sends: int = 1) -> OrderEvent:
        """`event` is now the request Orders waits on Catalog to answer; the saga's sweeper
        (or the reconciler) looks at the order again from now on."""
        self.catalog_request_id = event.id
        self.catalog_request_sends = sends
        self.next_check_at = func.now()
        return event


class OrderLine(Base):
    """A line as it was at placement: sku, name and price are snapshots, not references."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="price_non_negative"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[uuid.UUID]
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
