"""Settings shared by every service process; each service subclasses with its env prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PROBE_CONNECTIONS", "RELAY_CONNECTIONS", "Process", "ServiceSettings"]

# Readiness probes use a connection of their own in every process (never a pooled one).
PROBE_CONNECTIONS = 1
# A worker's relay holds two pooled connections: its LISTEN and its publishing pass.
RELAY_CONNECTIONS = 2
Process = Literal["api", "worker"]


class ServiceSettings(BaseSettings):
    """What every API and worker process needs. Built once at startup and passed in."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    worker_port: int = Field(ge=0, le=65535)
    # The API's Prometheus endpoint: a listener of its own, never the public port (0: any
    # free port, as tests use).
    metrics_port: int = Field(ge=0, le=65535)
    database_url: str
    db_schema: str
    # Database connections (docs/adr/0013-http-edge.md, "Connection budget"): an API holds at
    # most pool + overflow + driver pool, and keeps those it opened; a worker at most its own
    # pool + overflow (consumer deliveries, the relay's LISTEN and publishing connections,
    # housekeeping). Each process adds one connection of its own for readiness probes.
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # An API's plain asyncpg pool for its hot statements (`shop_common.db.DriverPool`), beside
    # the engine's pool; 0: none.
    db_driver_pool_size: int = Field(default=10, ge=0, le=200)
    worker_db_pool_size: int = Field(default=13, ge=1, le=200)
    worker_db_max_overflow: int = Field(default=5, ge=0, le=200)
    # Deliveries a worker's consumer holds at once; each one needs a pooled connection.
    worker_prefetch: int = Field(default=10, ge=1, le=1000)
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    exchange: str = "shop.events"
    # Published outbox rows are kept for inspection; inbox records must outlive duplicates.
    outbox_retention_days: int = Field(default=7, ge=1)
    inbox_retention_days: int = Field(default=30, ge=1)

    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "shop-dev-issuer"
    jwt_audience: str = "shop"
    jwks_url: str | None = None
    jwt_algorithms: tuple[str, ...] = ()
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Load shedding: requests one API process works on at once. Beyond it a request is
    # answered 503 with Retry-After before any work (probes are never shed). By Little's law
    # the queueing delay it allows is about max_in_flight / throughput.
    max_in_flight: int = Field(default=64, ge=1, le=10_000)
    shed_retry_after_seconds: int = Field(default=1, ge=1, le=300)
    # Where clients reach this API from outside (e.g. https://shop.example.com): `Location`
    # headers are built from it. Unset: they are relative (`/v1/orders/...`), never taken
    # from the request's Host header.
    public_base_url: AnyHttpUrl | None = None
    # Browser origins allowed to call the API (CORS); none by default (no CORS headers).
    cors_allow_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    # One log line per request costs more CPU than the request itself on a fast read; the RED
    # metrics count every request anyway. On for `make up`, off unless asked for elsewhere.
    access_log: bool = False
    # Swagger UI at /docs (assets shipped with shop_common, works offline) and the OpenAPI
    # document at /openapi.json. Both on in dev; production turns /docs off.
    docs_enabled: bool = True
    openapi_enabled: bool = True

    @model_validator(mode="after")
    def _auth_is_configured(self) -> ServiceSettings:
        if self.jwks_url is None and self.jwt_secret is None:
            raise ValueError(
                "set <SERVICE>_JWT_SECRET (dev, HS256) or <SERVICE>_JWKS_URL (production)"
            )
        if self.jwks_url is None and len(self.jwt_secret.get_secret_value()) < 32:  # type: ignore[union-attr]
            raise ValueError("<SERVICE>_JWT_SECRET must be at least 32 characters (HS256)")
        return self

    @model_validator(mode="after")
    def _worker_pool_holds_its_deliveries(self) -> ServiceSettings:
        # Every delivery in hand and the relay's two connections at once, or handlers queue
        # for the pool (and a pool timeout would look like a failing message).
        needed = self.worker_prefetch + RELAY_CONNECTIONS
        if self.worker_db_pool_size + self.worker_db_max_overflow < needed:
            raise ValueError(
                f"<SERVICE>_WORKER_DB_POOL_SIZE + <SERVICE>_WORKER_DB_MAX_OVERFLOW must be at "
                f"least <SERVICE>_WORKER_PREFETCH + {RELAY_CONNECTIONS} ({needed})"
            )
        return self

    @model_validator(mode="after")
    def _docs_need_the_document(self) -> ServiceSettings:
        if self.docs_enabled and not self.openapi_enabled:
            raise ValueError(
                "<SERVICE>_DOCS_ENABLED needs <SERVICE>_OPENAPI_ENABLED (/docs reads the document)"
            )
        return self

    def db_connection_ceiling(self, process: Process) -> int:
        """The most database connections one `process` of this service opens (the budget)."""
        if process == "api":
            pooled = self.db_pool_size + self.db_max_overflow + self.db_driver_pool_size
        else:
            pooled = self.worker_db_pool_size + self.worker_db_max_overflow
        return pooled + PROBE_CONNECTIONS

    @property
    def effective_jwt_algorithms(self) -> tuple[str, ...]:
        if self.jwt_algorithms:
            return self.jwt_algorithms
        return ("RS256", "ES256") if self.jwks_url else ("HS256",)
