"""Every overlay's pods, at their autoscalers' maxima plus a rollout's surge, fit the
database's max_connections minus a reserve (tests/deploy/budget.py says how it is counted).

The per-process numbers come from the services' own settings classes, built from each
container's environment as the kubelet assembles it, so a pool resized in a ConfigMap, a
new pool in the code (counted by `ServiceSettings.db_connection_ceiling`) or a wider
autoscaler is checked here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from shop_common.settings import ServiceSettings
from tests.deploy.budget import SettingsOf, budget, budget_problems
from tests.deploy.environment import build_settings, container_environment
from tests.deploy.manifests import SERVICES, SERVING_OVERLAYS, Manifest, find, of_kind

pytestmark = pytest.mark.deploy

# What the budget counts per process: if a process opens another pool, it needs a setting
# here and a term in ServiceSettings.db_connection_ceiling.
POOL_SETTINGS = (
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "DB_DRIVER_POOL_SIZE",
    "WORKER_PREFETCH",
    "WORKER_DB_POOL_SIZE",
    "WORKER_DB_MAX_OVERFLOW",
)


def settings_from(objs: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> SettingsOf:
    def settings_of(service: str, _owner: Manifest, container: Manifest) -> ServiceSettings:
        return build_settings(service, container_environment(objs, container), monkeypatch)

    return settings_of


@pytest.mark.parametrize("overlay", SERVING_OVERLAYS)
def test_connections_fit_at_the_maxima(
    overlay: str, rendered: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = rendered[overlay]
    found = budget(objs, settings_from(objs, monkeypatch))
    print(f"{overlay}:\n{found.table()}")

    assert {line.deployment for line in found.lines} == {
        f"{s}-{p}" for s in SERVICES for p in ("api", "worker")
    }
    assert all(line.per_pod > 0 for line in found.lines)
    assert found.used <= found.available, found.table()


def _patched(
    objs: list[Manifest], kind: str, name: str, edit: Callable[[Manifest], None]
) -> list[Manifest]:
    broken = copy.deepcopy(objs)
    edit(find(broken, kind, name))
    return broken


BREAKAGES: dict[str, tuple[str, str, Callable[[Manifest], None]]] = {
    "a wider API autoscaler": (
        "HorizontalPodAutoscaler",
        "catalog-api",
        lambda o: o["spec"].update(maxReplicas=40),
    ),
    "a wider KEDA maximum": (
        "ScaledObject",
        "orders-worker",
        lambda o: o["spec"].update(maxReplicaCount=30),
    ),
    "a bigger driver pool": (
        "ConfigMap",
        "catalog-config",
        lambda o: o["data"].update(CATALOG_DB_DRIVER_POOL_SIZE="10"),
    ),
    "a bigger worker pool": (
        "ConfigMap",
        "orders-config",
        lambda o: o["data"].update(ORDERS_WORKER_DB_POOL_SIZE="30"),
    ),
    "a larger rollout surge": (
        "Deployment",
        "catalog-api",
        lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxSurge="100%"),
    ),
    "fewer server connections": (
        "Cluster",
        "shop-db",
        lambda o: o["spec"]["postgresql"]["parameters"].update(max_connections="500"),
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_budget_detects(
    breakage: str, rendered: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = rendered["prod-keda"]
    kind, name, edit = BREAKAGES[breakage]
    broken = _patched(objs, kind, name, edit)

    assert budget_problems(objs, settings_from(objs, monkeypatch)) == []
    assert budget_problems(broken, settings_from(broken, monkeypatch)) != []


def test_the_dev_database_counts_its_own_max_connections(
    rendered: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = rendered["dev"]

    def shrink(statefulset: Manifest) -> None:
        statefulset["spec"]["template"]["spec"]["containers"][0]["args"] = [
            "-c",
            "max_connections=50",
        ]

    assert budget(objs, settings_from(objs, monkeypatch)).max_connections == 100
    broken = _patched(objs, "StatefulSet", "shop-db", shrink)
    assert budget_problems(broken, settings_from(broken, monkeypatch)) != []


@pytest.mark.parametrize("overlay", SERVING_OVERLAYS)
def test_every_pool_is_sized_in_the_manifests(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    """The budget never rests on the code's defaults, which are for a laptop."""
    for service in SERVICES:
        config = find(rendered[overlay], "ConfigMap", f"{service}-config")["data"]
        missing = [n for n in POOL_SETTINGS if f"{service.upper()}_{n}" not in config]
        assert not missing, f"{overlay} {service}-config does not set {missing}"


def test_no_pooler_is_needed(rendered: dict[str, list[Manifest]]) -> None:
    """The pools fit the server (ADR 0013). A PgBouncer Pooler would change what this budget
    counts (and the relay's LISTEN and prepared statements need a session pool)."""
    for overlay in SERVING_OVERLAYS:
        assert of_kind(rendered[overlay], "Pooler") == []
