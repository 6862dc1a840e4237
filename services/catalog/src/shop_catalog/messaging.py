"""Catalog's outbox and inbox tables (in the `catalog` schema) and its event writer."""

from __future__ import annotations

from shop_catalog.db import Base
from shop_common.messaging import Outbox, inbox_table, outbox_table

OUTBOX = outbox_table(Base.metadata)
INBOX = inbox_table(Base.metadata)
outbox = Outbox(OUTBOX, service="catalog")
