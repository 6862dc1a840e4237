"""Settings shared by every service process; each service subclasses with its env prefix."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    """What every API and worker process needs. Built once at startup and passed in."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    worker_port: int = Field(ge=0, le=65535)
    database_url: str
    db_schema: str
    # An API holds at most pool + overflow connections and keeps those it opened.
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # An API's plain asyncpg pool for its hot statements (`shop_common.db.DriverPool`), beside
    # the engine's pool; 0: none.
    db_driver_pool_size: int = Field(default=10, ge=0, le=200)
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
    log_level: str = "INFO"
    # One log line per request costs more CPU than the request itself on a fast read; the RED
    # metrics count every request anyway. On for `make up`, off unless asked for elsewhere.
    access_log: bool = False
    # Swagger UI at /docs, from assets shipped with shop_common (works offline). On in dev;
    # production sets <SERVICE>_DOCS_ENABLED=false. /openapi.json is served either way.
    docs_enabled: bool = True

    @model_validator(mode="after")
    def _auth_is_configured(self) -> ServiceSettings:
        if self.jwks_url is None and self.jwt_secret is None:
            raise ValueError(
                "set <SERVICE>_JWT_SECRET (dev, HS256) or <SERVICE>_JWKS_URL (production)"
            )
        if self.jwks_url is None and len(self.jwt_secret.get_secret_value()) < 32:  # type: ignore[union-attr]
            raise ValueError("<SERVICE>_JWT_SECRET must be at least 32 characters (HS256)")
        return self

    @property
    def effective_jwt_algorithms(self) -> tuple[str, ...]:
        if self.jwt_algorithms:
            return self.jwt_algorithms
        return ("RS256", "ES256") if self.jwks_url else ("HS256",)
