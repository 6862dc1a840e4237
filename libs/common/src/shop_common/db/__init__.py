"""Database wiring: one async engine and session factory per process."""

from shop_common.db.engine import create_engine, create_sessionmaker, ping
from shop_common.db.metadata import schema_metadata

__all__ = ["create_engine", "create_sessionmaker", "ping", "schema_metadata"]
