"""Catalog's settings: environment variables prefixed CATALOG_."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shop_common.settings import ServiceSettings

SCHEMA = "catalog"


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore", frozen=True)

    port: int = 8001
    worker_port: int = 9101
    metrics_port: int = 9201
    database_url: str = "postgresql+asyncpg://catalog_svc@127.0.0.1:5432/shop"
    db_schema: str = SCHEMA

    # How often the worker checks stock counters against the reservations (ADR 0012).
    reconcile_interval_seconds: float = Field(default=600.0, gt=0)
