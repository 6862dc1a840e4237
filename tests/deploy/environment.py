"""Each container's environment as the kubelet builds it, and the service settings from it.

envFrom ConfigMaps first, then `env` entries with $(VAR) expansion, configMapKeyRef and
secretKeyRef values (the Secrets prod takes from the secret manager stand in as placeholders).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re

import pytest

from shop_common.settings import ServiceSettings
from tests.deploy.invariants import secret_values
from tests.deploy.manifests import Manifest, of_kind

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
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
        source = entry["valueFrom"]
        if "configMapKeyRef" in source:
            ref, values = source["configMapKeyRef"], config_maps
        else:
            ref, values = source["secretKeyRef"], secrets
        value = values.get(ref["name"], {}).get(ref["key"])
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
