"""The DR region follows the primary's archive, keeps its own, and fails over as documented."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from tests.deploy import backups, sync_order
from tests.deploy.failover import PROMOTION_COMMENTED, STANDBY_LINE, promote
from tests.deploy.manifests import K8S_DIR, Manifest, find, of_kind

pytestmark = pytest.mark.deploy


def archive(objs: list[Manifest], store_name: str) -> tuple[str, str | None]:
    """Where an ObjectStore points: (destinationPath, endpointURL)."""
    configuration = find(objs, "ObjectStore", store_name)["spec"]["configuration"]
    return configuration["destinationPath"], configuration.get("endpointURL")


def recovery_source(objs: list[Manifest], cluster: Manifest) -> tuple[str, str]:
    """(ObjectStore, serverName) a Cluster bootstraps from."""
    source = cluster["spec"]["bootstrap"]["recovery"]["source"]
    (external,) = [e for e in cluster["spec"]["externalClusters"] if e["name"] == source]
    assert external["plugin"]["name"] == sync_order.BARMAN_PLUGIN
    parameters = external["plugin"]["parameters"]
    return parameters["barmanObjectName"], parameters["serverName"]


def dr_problems(primary: list[Manifest], dr: list[Manifest]) -> list[str]:
    """The DR cluster reads exactly the primary's archive and writes only its own."""
    primary_cluster = find(primary, "Cluster", "shop-db")
    primary_archive = archive(primary, backups.wal_archiver(primary_cluster) or "")
    cluster = find(dr, "Cluster", "shop-db")
    problems = []
    store, server = recovery_source(dr, cluster)
    if archive(dr, store) != primary_archive:
        problems.append(f"reads {archive(dr, store)}, the primary archives to {primary_archive}")
    if server != primary_cluster["metadata"]["name"]:
        problems.append(f"reads server {server}, not the primary cluster's folder")
    if (
        cluster["spec"].get("replica", {}).get("source")
        != cluster["spec"]["bootstrap"]["recovery"]["source"]
    ):
        problems.append("follows another source than the one it bootstraps from")
    own = backups.wal_archiver(cluster)
    if own is None or archive(dr, own) == primary_archive:
        problems.append("writes into the primary's archive (two writers corrupt it)")
    if find(dr, "ObjectStore", store)["spec"].get("retentionPolicy"):
        problems.append("prunes the primary's archive from the DR region")
    return problems


@pytest.mark.parametrize("overlay", ["prod-dr", "prod-dr-promoted"])
def test_dr_cluster_follows_the_primary_archive(
    overlay: str, rendered: dict[str, list[Manifest]]
) -> None:
    problems = dr_problems(rendered["prod"], rendered[overlay])
    assert problems == [], "\n".join(problems)


def test_dr_rule_detects_a_wrong_bucket_or_a_shared_archive(
    rendered: dict[str, list[Manifest]],
) -> None:
    wrong_bucket = copy.deepcopy(rendered["prod-dr"])
    find(wrong_bucket, "ObjectStore", "shop-db-primary")["spec"]["configuration"][
        "destinationPath"
    ] = "s3://somewhere-else/"
    assert dr_problems(rendered["prod"], wrong_bucket)

    shared = copy.deepcopy(rendered["prod-dr"])
    find(shared, "ObjectStore", "shop-db-backup")["spec"]["configuration"] = copy.deepcopy(
        find(shared, "ObjectStore", "shop-db-primary")["spec"]["configuration"]
    )
    assert any("two writers" in p for p in dr_problems(rendered["prod"], shared))


def test_standby_is_a_replica_without_services(rendered: dict[str, list[Manifest]]) -> None:
    objs = rendered["prod-dr"]
    cluster = find(objs, "Cluster", "shop-db")["spec"]
    assert cluster["replica"]["enabled"] is True
    assert "initdb" not in cluster["bootstrap"]
    assert not sync_order.app_workloads(objs)
    assert not sync_order.migration_jobs(objs)
    assert not of_kind(objs, "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service")
    # What the services need is already there, so failover only adds the workloads.
    assert {"catalog-config", "orders-config"} <= {
        c["metadata"]["name"] for c in of_kind(objs, "ConfigMap")
    }
    targets = {e["spec"]["target"]["name"] for e in of_kind(objs, "ExternalSecret")}
    assert {"catalog-secrets", "orders-secrets"} <= targets


def test_promoted_region_is_prod_with_a_primary_database(
    rendered: dict[str, list[Manifest]],
) -> None:
    promoted = rendered["prod-dr-promoted"]
    assert find(promoted, "Cluster", "shop-db")["spec"]["replica"]["enabled"] is False

    def shape(objs: list[Manifest]) -> set[tuple[str, str]]:
        return {(o["kind"], o["metadata"]["name"]) for o in objs}

    # The same objects as the primary region, plus the primary's archive (read only).
    extra = {("ObjectStore", "shop-db-primary"), ("ExternalSecret", "shop-db-primary-s3")}
    assert shape(promoted) == shape(rendered["prod"]) | extra
    for name in ("catalog-config", "orders-config"):
        assert find(promoted, "ConfigMap", name) == find(rendered["prod"], "ConfigMap", name)
    dr_store = find(promoted, "SecretStore", "shop-secrets")["spec"]["provider"]["aws"]
    prod_store = find(rendered["prod"], "SecretStore", "shop-secrets")["spec"]["provider"]["aws"]
    assert dr_store["region"] != prod_store["region"], "the DR region reads its own secret manager"


def test_failover_edits_are_the_ones_the_runbook_shows() -> None:
    runbook = (K8S_DIR.parent / "docs" / "operations.md").read_text()
    kustomization = (K8S_DIR / "overlays" / "prod-dr" / "kustomization.yaml").read_text()
    promoted = promote(kustomization)
    assert STANDBY_LINE not in promoted
    assert PROMOTION_COMMENTED not in promoted
    # The runbook shows the uncommented patch and names the line to delete.
    for line in ("path: /spec/replica/enabled", "value: false", STANDBY_LINE.strip()):
        assert line in runbook
    with pytest.raises(ValueError, match="no longer contains"):
        promote(kustomization.replace(STANDBY_LINE, ""))


def test_point_in_time_recovery_example(rendered: dict[str, list[Manifest]]) -> None:
    objs = rendered["pitr"]
    (cluster,) = of_kind(objs, "Cluster")
    prod_cluster = find(rendered["prod"], "Cluster", "shop-db")
    assert cluster["metadata"]["name"] != prod_cluster["metadata"]["name"]
    assert cluster["metadata"]["namespace"] == prod_cluster["metadata"]["namespace"]
    store, server = recovery_source(objs, cluster)
    assert store == backups.wal_archiver(prod_cluster)
    assert server == prod_cluster["metadata"]["name"]
    assert "plugins" not in cluster["spec"], "a restored copy must never archive into shop-db's"
    target = cluster["spec"]["bootstrap"]["recovery"]["recoveryTarget"]["targetTime"]
    assert datetime.fromisoformat(target).tzinfo is not None, "targetTime needs a time zone"
