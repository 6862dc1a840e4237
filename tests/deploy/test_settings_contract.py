"""The environment the manifests and compose give each process builds valid service settings.

Each container's environment is assembled the way the kubelet does it (envFrom ConfigMap,
then env entries with $(VAR) expansion and secretKeyRef values) and handed to the
service's own pydantic-settings class, so a renamed setting, a wrong port or a malformed
URL in the manifests fails here rather than in a crash-looping pod.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from typing import Any

import pytest

from shop_common.settings import ServiceSettings
from tests.deploy.invariants import secret_values
from tests.deploy.manifests import SERVICES, Manifest, find, of_kind, pod_spec, resolved_compose

pytestmark = pytest.mark.deploy

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
PORTS = {"catalog": (8001, 9101), "orders": (8002, 9102)}
# Stand-ins for the Secrets prod expects from the secret manager (same keys as the templates).
EXTERNAL_SECRET_VALUES = {
    "catalog-secrets": {
        "CATALOG_DB_PASSWORD": "change-me",
        "CATALOG_AMQP_URL": "amqp://catalog:change-me@shop-mq:5672/",
    },
    "orders-secrets": {
        "ORDERS_DB_PASSWORD": "change-me",
        "ORDERS_AMQP_URL": "amqp://orders:change-me@shop-mq:5672/",
    },
    "shop-db-superuser": {"username": "postgres", "password": "change-me"},
}


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"shop_{service}.settings")
    classes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ServiceSettings) and cls is not ServiceSettings
    ]
    assert len(classes) == 1, f"expected one settings class in {module.__name__}"
    return classes[0]


def container_environment(objs: list[Manifest], container: Manifest) -> dict[str, str]:
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in of_kind(objs, "ConfigMap")}
    secrets = {o["metadata"]["name"]: dict(secret_values(o)) for o in of_kind(objs, "Secret")}
    secrets = {**EXTERNAL_SECRET_VALUES, **secrets}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        if "value" in entry:

            def expand(match: re.Match[str]) -> str:
                if match.group(0) == "$$":
                    return "$"
                return env.get(match.group(1), match.group(0))

            env[entry["name"]] = _REFERENCE.sub(expand, entry["value"])
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        value = secrets.get(ref["name"], {}).get(ref["key"])
        if value is None:
            assert ref.get("optional"), f"{entry['name']}: {ref} does not resolve"
            continue
        env[entry["name"]] = value
    return env


def build_settings(
    service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> ServiceSettings:
    prefix = f"{service.upper()}_"
    for name in [n for n in os.environ if n.startswith(prefix)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_class(service)()


def _check(service: str, settings: Any, expect_jwks: bool) -> None:
    assert settings.host == "0.0.0.0"
    assert (settings.port, settings.worker_port) == PORTS[service]
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
    settings = build_settings(service, container_environment(objs, container), monkeypatch)
    _check(service, settings, expect_jwks=overlay.startswith("prod"))


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
