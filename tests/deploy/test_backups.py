"""Prod keeps its WAL archive, base backups and retention; losing any of them fails here."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.deploy import backups
from tests.deploy.manifests import Manifest, find, of_kind

pytestmark = pytest.mark.deploy

# Every overlay with a CloudNativePG database (prod-dr archives into its own bucket).
DATABASE_OVERLAYS = ("prod", "prod-keda", "prod-dr", "prod-dr-promoted")


@pytest.mark.parametrize("overlay", DATABASE_OVERLAYS)
def test_database_is_backed_up(overlay: str, rendered: dict[str, list[Manifest]]) -> None:
    problems = backups.backup_problems(rendered[overlay])
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("overlay", DATABASE_OVERLAYS)
def test_stateful_objects_are_never_pruned(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    problems = backups.prune_protection_problems(rendered[overlay])
    assert problems == [], "\n".join(problems)


def test_prod_backup_settings(rendered: dict[str, list[Manifest]]) -> None:
    objs = rendered["prod"]
    store = find(objs, "ObjectStore", "shop-db-backup")["spec"]
    assert store["retentionPolicy"] == "30d"
    assert store["configuration"]["destinationPath"].startswith("s3://")
    (scheduled,) = of_kind(objs, "ScheduledBackup")
    spec = scheduled["spec"]
    assert len(spec["schedule"].split()) == 6, "CloudNativePG's cron has a seconds field"
    assert spec["immediate"] is True, "the WAL archive is useless until a first base backup"
    assert spec["target"] == "prefer-standby"


def _drop(kind: str, name: str) -> Callable[[list[Manifest]], list[Manifest]]:
    def edit(objs: list[Manifest]) -> list[Manifest]:
        return [o for o in objs if (o["kind"], o["metadata"]["name"]) != (kind, name)]

    return edit


def _edit(kind: str, name: str, change: Callable[[Manifest], object]) -> Callable:
    def edit(objs: list[Manifest]) -> list[Manifest]:
        change(find(objs, kind, name))
        return objs

    return edit


BREAKAGES: dict[str, Callable[[list[Manifest]], list[Manifest]]] = {
    "no ObjectStore": _drop("ObjectStore", "shop-db-backup"),
    "no ScheduledBackup": _drop("ScheduledBackup", "shop-db-daily"),
    "no WAL archiving": _edit("Cluster", "shop-db", lambda c: c["spec"].pop("plugins")),
    "archiver disabled": _edit(
        "Cluster", "shop-db", lambda c: c["spec"]["plugins"][0].update(isWALArchiver=False)
    ),
    "scheduled backup suspended": _edit(
        "ScheduledBackup", "shop-db-daily", lambda b: b["spec"].update(suspend=True)
    ),
    "scheduled backup of another cluster": _edit(
        "ScheduledBackup", "shop-db-daily", lambda b: b["spec"].update(cluster={"name": "other"})
    ),
    "no retention": _edit(
        "ObjectStore", "shop-db-backup", lambda s: s["spec"].pop("retentionPolicy")
    ),
    "credentials Secret nobody makes": _drop("ExternalSecret", "shop-db-backup-s3"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_backup_rule_detects(breakage: str, rendered: dict[str, list[Manifest]]) -> None:
    assert backups.backup_problems(rendered["prod"]) == []
    broken = BREAKAGES[breakage](copy.deepcopy(rendered["prod"]))
    assert backups.backup_problems(broken) != []


def test_backup_rule_rejects_credentials_in_git(rendered: dict[str, list[Manifest]]) -> None:
    objs = _drop("ExternalSecret", "shop-db-backup-s3")(copy.deepcopy(rendered["prod"]))
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "shop-db-backup-s3", "namespace": "shop"},
            "stringData": {"ACCESS_KEY_ID": "change-me", "ACCESS_SECRET_KEY": "change-me"},
        }
    )
    assert any("in git" in p for p in backups.backup_problems(objs))


def test_prune_rule_detects_an_unprotected_database(rendered: dict[str, list[Manifest]]) -> None:
    objs = copy.deepcopy(rendered["prod"])
    find(objs, "Cluster", "shop-db")["metadata"]["annotations"].pop(backups.SYNC_OPTIONS)
    assert any("Cluster/shop-db" in p for p in backups.prune_protection_problems(objs))
