"""Orders' outbox and inbox tables (in the `orders` schema) and its event writer."""

from __future__ import annotations

from shop_common.messaging import Outbox, inbox_table, outbox_table
from shop_orders.db import Base

OUTBOX = outbox_table(Base.metadata)
INBOX = inbox_table(Base.metadata)
outbox = Outbox(OUTBOX, service="orders")
