"""Argo CD applies every overlay in a working order, and breaking that order is caught."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.deploy import sync_order
from tests.deploy.manifests import OVERLAYS, SERVING_OVERLAYS, Manifest, find

pytestmark = pytest.mark.deploy


@pytest.mark.parametrize("overlay", ["base", *OVERLAYS])
def test_sync_order_holds(overlay: str, rendered: dict[str, list[Manifest]]) -> None:
    problems = sync_order.sync_order_problems(rendered[overlay])
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("overlay", SERVING_OVERLAYS)
def test_migrations_complete_before_the_services_roll(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    objs = rendered[overlay]
    jobs = sync_order.migration_jobs(objs)
    workloads = sync_order.app_workloads(objs)
    assert len(jobs) == 2
    assert len(workloads) == 4
    tier = sync_order.data_tier(objs)
    assert {o["kind"] for o in tier} & {"Cluster", "StatefulSet"}, "no database in the data tier"
    latest_data = max(sync_order.sync_wave(o) for o in tier)
    first_rollout = min(sync_order.sync_wave(d) for d in workloads)
    for job in jobs:
        assert latest_data < sync_order.sync_wave(job) < first_rollout


def _wave(obj: Manifest, wave: int | None) -> None:
    notes = obj["metadata"].setdefault("annotations", {})
    if wave is None:
        notes.pop(sync_order.WAVE, None)
    else:
        notes[sync_order.WAVE] = str(wave)


Breakage = Callable[[list[Manifest]], None]
BREAKAGES: dict[str, tuple[str, Breakage]] = {
    "migration in the Deployments' wave": (
        "prod",
        lambda objs: _wave(find(objs, "Job", "catalog-migrate"), None),
    ),
    "Deployment before its migration": (
        "prod",
        lambda objs: _wave(find(objs, "Deployment", "orders-worker"), -1),
    ),
    "migration as a PreSync hook": (
        "prod",
        lambda objs: find(objs, "Job", "orders-migrate")["metadata"]["annotations"].update(
            {sync_order.HOOK: "PreSync"}
        ),
    ),
    "migration Job not recreated": (
        "prod",
        lambda objs: find(objs, "Job", "orders-migrate")["metadata"]["annotations"].pop(
            sync_order.HOOK_DELETE_POLICY
        ),
    ),
    "database with the migrations": (
        "prod",
        lambda objs: _wave(find(objs, "Cluster", "shop-db"), -1),
    ),
    "broker after the workers": (
        "prod",
        lambda objs: _wave(find(objs, "RabbitmqCluster", "shop-mq"), 1),
    ),
    "ExternalSecret with its readers": (
        "prod",
        lambda objs: _wave(find(objs, "ExternalSecret", "catalog-secrets"), -1),
    ),
    "SecretStore after its ExternalSecrets": (
        "prod",
        lambda objs: _wave(find(objs, "SecretStore", "shop-secrets"), 0),
    ),
    "ObjectStore with its Cluster": (
        "prod",
        lambda objs: _wave(find(objs, "ObjectStore", "shop-db-backup"), -2),
    ),
    "ScheduledBackup before its Cluster": (
        "prod",
        lambda objs: _wave(find(objs, "ScheduledBackup", "shop-db-daily"), -3),
    ),
    "namespace last": (
        "prod",
        lambda objs: _wave(find(objs, "Namespace", "shop"), 0),
    ),
    # What the dev overlay had before: its database in the default wave, after the Jobs.
    "dev database after the migrations": (
        "dev",
        lambda objs: _wave(find(objs, "StatefulSet", "shop-db"), None),
    ),
    "dev superuser Secret after the migrations": (
        "dev",
        lambda objs: _wave(find(objs, "Secret", "shop-db-superuser"), None),
    ),
    "promoted DR region rolls before migrating": (
        "prod-dr-promoted",
        lambda objs: _wave(find(objs, "Deployment", "catalog-api"), -1),
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_sync_order_rule_detects(breakage: str, rendered: dict[str, list[Manifest]]) -> None:
    overlay, edit = BREAKAGES[breakage]
    assert sync_order.sync_order_problems(rendered[overlay]) == []
    broken = copy.deepcopy(rendered[overlay])
    edit(broken)
    assert sync_order.sync_order_problems(broken) != []


def test_a_service_without_its_migration_job_is_caught(
    rendered: dict[str, list[Manifest]],
) -> None:
    objs = [o for o in rendered["prod"] if o["metadata"]["name"] != "orders-migrate"]
    problems = sync_order.sync_order_problems(objs)
    assert any("orders-api" in p and "no migration" in p for p in problems)
