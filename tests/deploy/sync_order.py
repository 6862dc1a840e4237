"""Argo CD sync order: every object comes in a later sync wave than what it needs.

Argo CD applies the waves of a sync in order (lowest first) and starts a wave only when
every object of the previous ones is synced and healthy; Sync hooks (the migration Jobs)
take part in the waves and must complete. Within one wave nothing waits for anything,
so each dependency below must sit in a strictly lower wave:
  - every namespaced object after its Namespace (if the render has it);
  - pods (Deployments, Jobs, StatefulSets) after their ConfigMaps, ServiceAccount and
    Secrets, where a Secret means whatever makes it (Secret, ExternalSecret, operator);
  - the services' migration Jobs after the data tier (database and broker: CloudNativePG
    Cluster, RabbitmqCluster, or dev's StatefulSets and their Services), and each
    service's API and worker after its migration Job;
  - ExternalSecret after its SecretStore, SecretStore after its ServiceAccount,
    ObjectStore after its credentials, Cluster after the ObjectStores it archives to or
    recovers from, ScheduledBackup after its Cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

from tests.deploy.invariants import object_store_secret_refs, secret_producers
from tests.deploy.manifests import (
    Manifest,
    all_containers,
    is_shop_app,
    of_kind,
    pod_templates,
    qualified_name,
)

WAVE = "argocd.argoproj.io/sync-wave"
HOOK = "argocd.argoproj.io/hook"
HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
DATA_TIER_KINDS = ("Cluster", "RabbitmqCluster", "StatefulSet")


def annotations(obj: Manifest) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


def sync_wave(obj: Manifest) -> int:
    return int(annotations(obj).get(WAVE, "0"))


def _component(obj: Manifest) -> str | None:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def _service(obj: Manifest) -> str | None:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/name")


def migration_jobs(objs: list[Manifest]) -> list[Manifest]:
    return [j for j in of_kind(objs, "Job") if is_shop_app(j) and _component(j) == "migrate"]


def app_workloads(objs: list[Manifest]) -> list[Manifest]:
    return [
        d
        for d in of_kind(objs, "Deployment")
        if is_shop_app(d) and _component(d) in ("api", "worker")
    ]


def data_tier(objs: list[Manifest]) -> list[Manifest]:
    """The database and the broker, and (dev) the Services in front of their pods."""
    tier = of_kind(objs, *DATA_TIER_KINDS)
    pod_labels = [s["spec"]["template"]["metadata"]["labels"] for s in of_kind(objs, "StatefulSet")]
    for service in of_kind(objs, "Service"):
        selector = service["spec"].get("selector", {})
        if selector and any(all(lb.get(k) == v for k, v in selector.items()) for lb in pod_labels):
            tier.append(service)
    return tier


def _pod_needs(spec: Manifest) -> Iterator[tuple[str, str]]:
    """(kind, name) of the ConfigMaps, Secrets and ServiceAccount a pod spec reads."""
    if spec.get("serviceAccountName"):
        yield "ServiceAccount", spec["serviceAccountName"]
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
    for container in all_containers(spec):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                yield "ConfigMap", source["configMapRef"]["name"]
            if "secretRef" in source:
                yield "Secret", source["secretRef"]["name"]
        for env in container.get("env", []):
            ref = env.get("valueFrom", {})
            if "secretKeyRef" in ref and not ref["secretKeyRef"].get("optional"):
                yield "Secret", ref["secretKeyRef"]["name"]
            if "configMapKeyRef" in ref:
                yield "ConfigMap", ref["configMapKeyRef"]["name"]


def _plugin_object_stores(cluster: Manifest) -> Iterator[str]:
    spec = cluster["spec"]
    entries = [*spec.get("plugins", [])]
    entries += [e["plugin"] for e in spec.get("externalClusters", []) if "plugin" in e]
    for entry in entries:
        if entry.get("name") == BARMAN_PLUGIN and "barmanObjectName" in entry.get("parameters", {}):
            yield entry["parameters"]["barmanObjectName"]


def dependencies(objs: list[Manifest]) -> Iterator[tuple[Manifest, Manifest, str]]:
    """(object, what it needs, why) for every dependency whose target is rendered."""
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    secrets = secret_producers(objs)

    def resolve(kind: str, name: str) -> Manifest | None:
        if kind == "Secret":
            return secrets[name][0] if name in secrets else None
        return by_name.get((kind, name))

    namespaces = {n["metadata"]["name"]: n for n in of_kind(objs, "Namespace")}
    for obj in objs:
        namespace = namespaces.get(obj["metadata"].get("namespace", ""))
        if namespace is not None:
            yield obj, namespace, "its namespace"
    for obj, spec in pod_templates(objs):
        for kind, name in _pod_needs(spec):
            target = resolve(kind, name)
            if target is not None and target is not obj:
                yield obj, target, f"{kind} {name} it reads"
    tier = data_tier(objs)
    jobs = migration_jobs(objs)
    for job in jobs:
        for needed in tier:
            yield job, needed, "the database and broker it migrates against"
    for deployment in app_workloads(objs):
        for job in jobs:
            if _service(job) == _service(deployment):
                yield deployment, job, "its service's migration"
    for external in of_kind(objs, "ExternalSecret"):
        ref = external["spec"]["secretStoreRef"]
        target = resolve(ref.get("kind", "SecretStore"), ref["name"])
        if target is not None:
            yield external, target, "the store it reads"
    for store in of_kind(objs, "SecretStore"):
        for provider in store["spec"]["provider"].values():
            account = (provider.get("auth") or {}).get("jwt", {}).get("serviceAccountRef")
            target = resolve("ServiceAccount", account["name"]) if account else None
            if target is not None:
                yield store, target, "the identity it authenticates with"
    for object_store in of_kind(objs, "ObjectStore"):
        for name, _ in object_store_secret_refs(object_store):
            target = resolve("Secret", name)
            if target is not None:
                yield object_store, target, f"credentials Secret {name}"
    for cluster in of_kind(objs, "Cluster"):
        for name in _plugin_object_stores(cluster):
            target = resolve("ObjectStore", name)
            if target is not None:
                yield cluster, target, "the object store it archives to or recovers from"
    for backup in of_kind(objs, "ScheduledBackup"):
        target = resolve("Cluster", backup["spec"]["cluster"]["name"])
        if target is not None:
            yield backup, target, "the cluster it backs up"


def sync_order_problems(objs: list[Manifest]) -> list[str]:
    problems = []
    for obj, needed, why in dependencies(objs):
        if sync_wave(needed) >= sync_wave(obj):
            problems.append(
                f"{qualified_name(obj)} (wave {sync_wave(obj)}) needs {why}, "
                f"{qualified_name(needed)}, in an earlier wave (it is in {sync_wave(needed)})"
            )
    for job in migration_jobs(objs):
        notes = annotations(job)
        if notes.get(HOOK) != "Sync":
            # PreSync would run before the waves, so before its ConfigMap and Secrets exist;
            # a plain resource would not be recreated for each release.
            problems.append(f"{qualified_name(job)}: not an Argo CD Sync hook")
        if "BeforeHookCreation" not in notes.get(HOOK_DELETE_POLICY, ""):
            problems.append(f"{qualified_name(job)}: not recreated for each sync")
    services_migrated = {_service(j) for j in migration_jobs(objs)}
    for deployment in app_workloads(objs):
        if HOOK in annotations(deployment):
            problems.append(f"{qualified_name(deployment)}: a hook (never pruned, not tracked)")
        if _service(deployment) not in services_migrated:
            problems.append(f"{qualified_name(deployment)}: rolls out with no migration Job")
    return problems
