"""Orders' settings: environment variables prefixed ORDERS_."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shop_common.http import ResilientHttpClientConfig
from shop_common.settings import ServiceSettings

SCHEMA = "orders"


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", frozen=True)

    port: int = 8002
    worker_port: int = 9102
    database_url: str = "postgresql+asyncpg://orders_svc@127.0.0.1:5432/shop"
    db_schema: str = SCHEMA
    # Orders' reads go through its sessions; it keeps no plain read pool.
    db_driver_pool_size: int = Field(default=0, ge=0, le=200)

    catalog_url: str = "http://127.0.0.1:8001"
    catalog_connect_timeout: float = Field(default=0.5, gt=0)
    catalog_read_timeout: float = Field(default=1.0, gt=0)
    catalog_deadline: float = Field(default=3.0, gt=0)
    catalog_max_attempts: int = Field(default=3, ge=1, le=10)
    catalog_breaker_fail_max: int = Field(default=5, ge=1)
    catalog_breaker_reset_timeout: float = Field(default=10.0, gt=0)

    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # A claim older than this is from a request that died; a retry may take it over.
    idempotency_claim_seconds: int = Field(default=30, ge=5)
    # A PENDING order older than this is cancelled by the worker (its reservation is lost,
    # e.g. the placement event was parked); far above the normal sub-second saga.
    pending_timeout_seconds: int = Field(default=15 * 60, ge=60)
    unavailable_retry_after_seconds: int = Field(default=5, ge=1)

    def catalog_client_config(self) -> ResilientHttpClientConfig:
        return ResilientHttpClientConfig(
            target="catalog",
            base_url=self.catalog_url,
            connect_timeout=self.catalog_connect_timeout,
            read_timeout=self.catalog_read_timeout,
            deadline=self.catalog_deadline,
            max_attempts=self.catalog_max_attempts,
            breaker_fail_max=self.catalog_breaker_fail_max,
            breaker_reset_timeout=self.catalog_breaker_reset_timeout,
        )
