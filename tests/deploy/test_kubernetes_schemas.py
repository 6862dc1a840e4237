"""Every kustomization builds, and every rendered object matches its schema.

Built-in kinds: kubernetes-validate's strict schemas for KUBERNETES_VERSION (unknown
fields fail). Custom resources: the CRD schemas vendored in schemas/crds. An object of
any other kind fails: nothing is skipped silently.
"""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tests.deploy.crd_schemas import crd_validation_errors, is_custom_resource
from tests.deploy.manifests import (
    KUBERNETES_VERSION,
    RENDERS,
    Manifest,
    find,
    qualified_name,
)

pytestmark = pytest.mark.deploy


def schema_errors(obj: Manifest) -> list[str]:
    if is_custom_resource(obj):
        return crd_validation_errors(obj)
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        return [f"{qualified_name(obj)}: {path}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{qualified_name(obj)}: no schema for {obj['apiVersion']} (vendor its CRD)"]
    return []


@pytest.mark.parametrize("name", RENDERS)
def test_kustomization_builds(name: str, rendered: dict[str, list[Manifest]]) -> None:
    assert rendered[name], f"{name} renders nothing"


@pytest.mark.parametrize("name", RENDERS)
def test_every_object_matches_its_schema(name: str, rendered: dict[str, list[Manifest]]) -> None:
    errors = [error for obj in rendered[name] for error in schema_errors(obj)]
    assert errors == [], "\n".join(errors)


def test_overlays_use_the_expected_custom_resources(rendered: dict[str, list[Manifest]]) -> None:
    kinds = {name: {o["kind"] for o in objs} for name, objs in rendered.items()}
    assert {"Cluster", "RabbitmqCluster"} <= kinds["prod"]
    assert not {"ScaledObject", "TriggerAuthentication"} & kinds["prod"]
    assert {"ScaledObject", "TriggerAuthentication"} <= kinds["prod-keda"]
    assert not {"Cluster", "RabbitmqCluster", "ScaledObject"} & kinds["dev"]
    backups_and_secrets = {"ObjectStore", "ScheduledBackup", "ExternalSecret", "SecretStore"}
    assert backups_and_secrets <= kinds["prod"]
    assert backups_and_secrets <= kinds["prod-dr"]
    assert not backups_and_secrets & kinds["dev"]
    for bootstrap in ("argocd-dev", "argocd-prod", "argocd-prod-dr"):
        assert kinds[bootstrap] == {"Application", "AppProject"}


def test_strict_schema_rejects_an_unknown_field(rendered: dict[str, list[Manifest]]) -> None:
    deployment = copy.deepcopy(find(rendered["base"], "Deployment", "catalog-api"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    assert schema_errors(deployment)


def test_crd_schemas_reject_typos_and_missing_fields(rendered: dict[str, list[Manifest]]) -> None:
    cluster = copy.deepcopy(find(rendered["prod"], "Cluster", "shop-db"))
    cluster["spec"]["instance"] = cluster["spec"].pop("instances")
    assert any("instance" in e for e in schema_errors(cluster))

    rabbit = copy.deepcopy(find(rendered["prod"], "RabbitmqCluster", "shop-mq"))
    rabbit["spec"]["replicas"] = "three"
    assert schema_errors(rabbit)

    scaled = copy.deepcopy(find(rendered["prod-keda"], "ScaledObject", "catalog-worker"))
    del scaled["spec"]["triggers"]
    assert any("triggers" in e for e in schema_errors(scaled))

    auth = copy.deepcopy(find(rendered["prod-keda"], "TriggerAuthentication", "catalog-rabbitmq"))
    auth["spec"]["secretTargetRef"][0].pop("key")
    assert schema_errors(auth)

    replica = copy.deepcopy(find(rendered["prod-dr"], "Cluster", "shop-db"))
    replica["spec"]["replica"]["enable"] = replica["spec"]["replica"].pop("enabled")
    assert any("enable" in e for e in schema_errors(replica))

    store = copy.deepcopy(find(rendered["prod"], "ObjectStore", "shop-db-backup"))
    store["spec"]["configuration"]["wal"]["compression"] = "zip"
    assert schema_errors(store)
    store = copy.deepcopy(find(rendered["prod"], "ObjectStore", "shop-db-backup"))
    store["spec"]["retentionPolicy"] = "30 days"
    assert schema_errors(store)

    scheduled = copy.deepcopy(find(rendered["prod"], "ScheduledBackup", "shop-db-daily"))
    del scheduled["spec"]["schedule"]
    assert any("schedule" in e for e in schema_errors(scheduled))

    external = copy.deepcopy(find(rendered["prod"], "ExternalSecret", "catalog-secrets"))
    external["spec"]["data"][0]["remoteRef"]["propery"] = "x"
    assert any("propery" in e for e in schema_errors(external))

    secret_store = copy.deepcopy(find(rendered["prod"], "SecretStore", "shop-secrets"))
    secret_store["spec"]["provider"]["aws"]["service"] = "SecretManager"
    assert schema_errors(secret_store)

    app = copy.deepcopy(find(rendered["argocd-prod"], "Application", "shop-prod"))
    app["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    assert any("selfheal" in e for e in schema_errors(app))


def test_an_unknown_kind_is_an_error_not_a_skip() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert schema_errors(widget) == ["Widget/w: no schema for example.com/v1 (vendor its CRD)"]
