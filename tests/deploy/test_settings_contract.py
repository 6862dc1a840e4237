"""The environment the manifests and compose give each process builds valid service settings.

Each container's environment is assembled the way the kubelet does it (envFrom ConfigMap,
then env entries with $(VAR) expansion and secretKeyRef values) and handed to the
service's own pydantic-settings class, so a renamed setting, a wrong port or a malformed
URL in the manifests fails here rather than in a crash-looping pod.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.environment import build_settings, container_environment
from tests.deploy.manifests import SERVICES, Manifest, find, pod_spec, resolved_compose

pytestmark = pytest.mark.deploy

PORTS = {"catalog": (8001, 9101, 9201), "orders": (8002, 9102, 9202)}


def _check(service: str, settings: Any, expect_jwks: bool) -> None:
    assert settings.host == "0.0.0.0"
    assert (settings.port, settings.worker_port, settings.metrics_port) == PORTS[service]
    assert settings.database_url.startswith(f"postgresql+asyncpg://{service}_svc:")
    assert "$(" not in settings.database_url
    assert settings.amqp_url.get_secret_value().startswith("amqp://")
    assert (settings.jwks_url is not None) is expect_jwks
    if service == "orders":
        assert settings.catalog_url == "http://catalog-api:8001"


# prod-dr-promoted: the DR region after failover runs the same configuration as prod.
@pytest.mark.parametrize("overlay", ["dev", "prod", "prod-dr-promoted"])
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("workload", ["api", "worker", "migrate"])
def test_kubernetes_environment_builds_settings(
    workload: str,
    service: str,
    overlay: str,
    rendered: dict[str, list[Manifest]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objs = rendered[overlay]
    kind = "Job" if workload == "migrate" else "Deployment"
    container = pod_spec(find(objs, kind, f"{service}-{workload}"))["containers"][0]
    env = container_environment(objs, container)
    settings = build_settings(service, env, monkeypatch)
    _check(service, settings, expect_jwks=overlay.startswith("prod"))
    if workload == "api":
        # An API never uses the broker (ADR 0013): it gets no broker credentials.
        assert f"{service.upper()}_AMQP_URL" not in env
    if overlay.startswith("prod"):
        # Location from the public URL the Ingress serves; no interactive docs; the spec stays.
        assert str(settings.public_base_url) == "https://shop.example.com/"
        assert (settings.docs_enabled, settings.openapi_enabled) == (False, True)


@pytest.mark.parametrize("service", SERVICES)
def test_provision_environment_is_a_superuser_url(
    service: str, rendered: dict[str, list[Manifest]]
) -> None:
    objs = rendered["dev"]
    (init,) = pod_spec(find(objs, "Job", f"{service}-migrate"))["initContainers"]
    env = container_environment(objs, init)
    assert env["PROVISION_DATABASE_URL"] == (
        "postgresql://postgres:change-me-postgres@shop-db-rw:5432/postgres"
    )
    assert env[f"{service.upper()}_DB_PASSWORD"] == f"change-me-{service}-db"
    assert env["SHOP_DATABASE"] == "shop"


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("process", ["api", "worker", "migrate"])
def test_compose_environment_builds_settings(
    process: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = resolved_compose()["services"][f"{service}-{process}"]["environment"]
    settings = build_settings(service, {k: str(v) for k, v in environment.items()}, monkeypatch)
    _check(service, settings, expect_jwks=False)
    assert settings.database_url.endswith("@postgres:5432/shop")
