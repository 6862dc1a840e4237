"""`orders-migrate`: apply Orders' Alembic migrations as the orders service role."""

from __future__ import annotations

from shop_common.db.migrations import upgrade
from shop_orders.settings import OrdersSettings


def main() -> None:
    upgrade("shop_orders", OrdersSettings().database_url)
