"""The client configuration validates what would make the policy unsafe."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shop_common.http import ResilientHttpClientConfig


def test_defaults_bound_every_call() -> None:
    config = ResilientHttpClientConfig(target="catalog", base_url="http://127.0.0.1:8001")
    assert config.deadline == 3.0
    assert config.max_attempts == 3
    assert config.retry_statuses == {502, 503, 504}
    assert config.idempotent_methods == {"GET", "HEAD", "OPTIONS"}
    assert (config.breaker_fail_max, config.breaker_reset_timeout) == (5, 10.0)
    timeout = config.timeout()
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (0.5, 1.0, 1.0, 0.5)


def test_methods_are_normalised() -> None:
    config = ResilientHttpClientConfig(
        target="catalog", base_url="http://x", idempotent_methods=frozenset({"get", "put"})
    )
    assert config.idempotent_methods == {"GET", "PUT"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "catalog:8001"},
        {"base_url": "ftp://catalog"},
        {"target": ""},
        {"retry_statuses": frozenset({404})},
        {"max_attempts": 0},
        {"deadline": 0},
        {"backoff_base": 1.0, "backoff_max": 0.5},
        {"unknown_field": 1},
    ],
)
def test_rejects_unsafe_settings(overrides: dict[str, object]) -> None:
    settings: dict[str, object] = {"target": "catalog", "base_url": "http://x", **overrides}
    with pytest.raises(ValidationError):
        ResilientHttpClientConfig.model_validate(settings)
