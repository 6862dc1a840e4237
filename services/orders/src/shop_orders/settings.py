"""Orders' settings: environment variables prefixed ORDERS_."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shop_common.http import ResilientHttpClientConfig
from shop_common.messaging import ConsumerTopology
from shop_common.settings import ServiceSettings

SCHEMA = "orders"


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", frozen=True)

    port: int = 8002
    worker_port: int = 9102
    metrics_port: int = 9202
    database_url: str = "postgresql+asyncpg://orders_svc@127.0.0.1:5432/shop"
    db_schema: str = SCHEMA

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
    unavailable_retry_after_seconds: int = Field(default=5, ge=1)

    # The saga (ADR 0012). A request to Catalog (a placement, or a cancel whose release was
    # never reported) that left the outbox this long ago without an answer is sent again;
    # the wait doubles after each copy, up to the maximum.
    saga_resend_after_seconds: int = Field(default=300, ge=1)
    saga_resend_max_seconds: int = Field(default=3600, ge=1)
    # A PENDING order is cancelled only after Catalog has been seen answering orders placed
    # after it for this long (never during an outage, when Catalog answers nobody).
    pending_deadline_seconds: int = Field(default=2 * 3600, ge=1)
    saga_sweep_interval_seconds: float = Field(default=60.0, gt=0)
    reconcile_interval_seconds: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _saga_timings_agree(self) -> OrdersSettings:
        """Refuse to start with timings that would cancel orders an answer is still on its
        way to, or that could never re-send within the deadline."""
        ladder = retry_ladder_seconds(ConsumerTopology(service=SCHEMA, exchange=self.exchange))
        least_deadline = 2 * ladder + self.saga_resend_after_seconds
        sweep, after = self.saga_sweep_interval_seconds, self.saga_resend_after_seconds
        most, deadline = self.saga_resend_max_seconds, self.pending_deadline_seconds
        problems = []
        if sweep > after:
            problems.append(
                f"ORDERS_SAGA_SWEEP_INTERVAL_SECONDS ({sweep:g}) must not exceed"
                f" ORDERS_SAGA_RESEND_AFTER_SECONDS ({after}): re-sends would come late"
            )
        if after > most:
            problems.append(
                f"ORDERS_SAGA_RESEND_AFTER_SECONDS ({after}) must not exceed"
                f" ORDERS_SAGA_RESEND_MAX_SECONDS ({most})"
            )
        if most > deadline:
            problems.append(
                f"ORDERS_SAGA_RESEND_MAX_SECONDS ({most}) must not exceed"
                f" ORDERS_PENDING_DEADLINE_SECONDS ({deadline}): an order would be given up on"
                " before it was asked again"
            )
        if deadline < least_deadline:
            problems.append(
                f"ORDERS_PENDING_DEADLINE_SECONDS ({deadline}) must be at least"
                f" {least_deadline:g}: twice the consumers' retry ladder ({ladder:g} s: Catalog"
                " retrying the placement, then Orders retrying the answer) plus"
                " ORDERS_SAGA_RESEND_AFTER_SECONDS, or an answer still being retried is given up on"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

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


def retry_ladder_seconds(topology: ConsumerTopology) -> float:
    """How long a consumer keeps retrying a failing message before it parks it."""
    return sum(topology.retry_delay_ms(n) for n in range(topology.max_retries)) / 1000
