"""Alembic environment for Orders: migrates the `orders` schema only."""

from shop_common.db.migrations import run_env
from shop_orders import messaging  # noqa: F401  (registers the outbox and inbox tables)
from shop_orders.db import Base
from shop_orders.idempotency import models as idempotency_models  # noqa: F401
from shop_orders.orders import models as order_models  # noqa: F401
from shop_orders.replica import models as replica_models  # noqa: F401
from shop_orders.settings import SCHEMA

run_env(Base.metadata, SCHEMA)
