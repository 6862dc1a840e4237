"""Database wiring: one async engine and session factory per process, keyset pagination.

Two entry-point modules stay out of this package's namespace, so that API and worker
processes never import Alembic or superuser code: `shop_common.db.migrations` (a service's
`migrate` command and `env.py`) and `shop_common.db.provision` (`shop-provision`).
"""

from shop_common.db.driver import DriverPool
from shop_common.db.engine import create_engine, create_sessionmaker, ping
from shop_common.db.errors import (
    DatabaseUnavailable,
    is_connection_error,
    is_transient_error,
    sqlstate,
)
from shop_common.db.metadata import schema_metadata
from shop_common.db.pagination import (
    Keyset,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
    page_of_rows,
)

__all__ = [
    "DatabaseUnavailable",
    "DriverPool",
    "Keyset",
    "Page",
    "create_engine",
    "create_sessionmaker",
    "decode_cursor",
    "encode_cursor",
    "is_connection_error",
    "is_transient_error",
    "page_of",
    "page_of_rows",
    "ping",
    "schema_metadata",
    "sqlstate",
]
