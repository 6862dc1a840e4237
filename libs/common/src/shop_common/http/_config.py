"""Settings of one resilient HTTP client: timeouts, retries, deadline, breaker, pool."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ResilientHttpClientConfig(BaseModel):
    """One upstream target. The defaults and their reasons are in docs/adr/0005."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(min_length=1, description="Breaker name and metrics label, e.g. catalog")
    base_url: str

    connect_timeout: float = Field(default=0.5, gt=0)
    read_timeout: float = Field(default=1.0, gt=0)
    write_timeout: float = Field(default=1.0, gt=0)
    pool_timeout: float = Field(default=0.5, gt=0)
    deadline: float = Field(default=3.0, gt=0, description="Whole call, retries and waits included")

    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_base: float = Field(default=0.1, ge=0, description="First retry waits about this")
    backoff_max: float = Field(default=1.0, ge=0)
    backoff_jitter: float = Field(default=0.1, ge=0, description="Uniform random extra wait")
    retry_statuses: frozenset[int] = frozenset({502, 503, 504})
    idempotent_methods: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS"})

    breaker_fail_max: int = Field(default=5, ge=1, description="Consecutive failed attempts")
    breaker_reset_timeout: float = Field(default=10.0, gt=0, description="Open before a trial")

    max_connections: int = Field(default=100, ge=1)
    max_keepalive_connections: int = Field(default=20, ge=0)
    keepalive_expiry: float = Field(default=5.0, ge=0)
    trust_env: bool = Field(default=False, description="Honour HTTP(S)_PROXY etc. from the env")

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        if httpx.URL(value).scheme not in {"http", "https"}:
            raise ValueError("base_url must be an absolute http:// or https:// URL")
        return value

    @field_validator("idempotent_methods")
    @classmethod
    def _upper_case_methods(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(method.upper() for method in value)

    @field_validator("retry_statuses")
    @classmethod
    def _retry_only_overload_or_gateway_statuses(cls, value: frozenset[int]) -> frozenset[int]:
        # A 4xx says the request is wrong; resending it cannot help. 429 is the exception.
        if any(not (status == 429 or 500 <= status <= 599) for status in value):
            raise ValueError("retry_statuses may hold 429 and 5xx statuses only")
        return value

    @model_validator(mode="after")
    def _backoff_range(self) -> ResilientHttpClientConfig:
        if self.backoff_max < self.backoff_base:
            raise ValueError("backoff_max must be at least backoff_base")
        return self

    def timeout(self) -> httpx.Timeout:
        """httpx timeouts for one attempt, before clipping to the remaining deadline."""
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )

    def limits(self) -> httpx.Limits:
        return httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_keepalive_connections,
            keepalive_expiry=self.keepalive_expiry,
        )
