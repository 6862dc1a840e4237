"""Rules for a database that survives being lost: WAL archive, base backups, retention.

Each function returns its violations (never raises), like invariants.py, so a test can
show them all and prove on a mutated render that each rule really fails.
"""

from __future__ import annotations

from tests.deploy.invariants import object_store_secret_refs, secret_producers
from tests.deploy.manifests import Manifest, of_kind, qualified_name
from tests.deploy.sync_order import BARMAN_PLUGIN, annotations

SYNC_OPTIONS = "argocd.argoproj.io/sync-options"


def wal_archiver(cluster: Manifest) -> str | None:
    """The ObjectStore a Cluster archives its WAL to through the Barman Cloud plugin."""
    for plugin in cluster["spec"].get("plugins", []):
        if (
            plugin.get("name") == BARMAN_PLUGIN
            and plugin.get("isWALArchiver")
            and plugin.get("enabled", True)
        ):
            name: str | None = plugin.get("parameters", {}).get("barmanObjectName")
            return name
    return None


def backup_problems(objs: list[Manifest]) -> list[str]:
    """Every Cluster archives its WAL to a rendered ObjectStore with a retention policy and
    credentials from a Secret that is not in git, and has an active ScheduledBackup."""
    clusters = of_kind(objs, "Cluster")
    if not clusters:
        return ["no CloudNativePG Cluster rendered"]
    stores = {o["metadata"]["name"]: o for o in of_kind(objs, "ObjectStore")}
    producers = secret_producers(objs)
    problems = []
    for cluster in clusters:
        where = qualified_name(cluster)
        if cluster["spec"].get("backup", {}).get("barmanObjectStore"):
            problems.append(f"{where}: in-tree barmanObjectStore (deprecated; use the plugin)")
        store_name = wal_archiver(cluster)
        store = stores.get(store_name or "")
        if store_name is None:
            problems.append(f"{where}: no WAL archiving (Barman Cloud plugin, isWALArchiver)")
        elif store is None:
            problems.append(f"{where}: archives to ObjectStore {store_name}, which is not rendered")
        else:
            problems += _store_problems(store, producers)
        scheduled = [
            b
            for b in of_kind(objs, "ScheduledBackup")
            if b["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
            and b["spec"].get("method") == "plugin"
            and b["spec"].get("pluginConfiguration", {}).get("name") == BARMAN_PLUGIN
            and not b["spec"].get("suspend")
        ]
        if not scheduled:
            problems.append(f"{where}: no active ScheduledBackup through the Barman Cloud plugin")
    return problems


def _store_problems(store: Manifest, producers: dict[str, tuple[Manifest, object]]) -> list[str]:
    where = qualified_name(store)
    problems = []
    configuration = store["spec"]["configuration"]
    if not configuration.get("destinationPath"):
        problems.append(f"{where}: no destinationPath")
    if not store["spec"].get("retentionPolicy"):
        problems.append(f"{where}: no retentionPolicy (the archive would grow forever)")
    refs = object_store_secret_refs(store)
    if not refs and not configuration.get("s3Credentials", {}).get("inheritFromIAMRole"):
        problems.append(f"{where}: no credentials")
    for name, _ in refs:
        producer = producers.get(name)
        if producer is None:
            problems.append(f"{where}: credentials Secret {name} is made by nothing rendered")
        elif producer[0]["kind"] == "Secret":
            problems.append(f"{where}: credentials Secret {name} is in git")
    return problems


def prune_protection_problems(objs: list[Manifest]) -> list[str]:
    """What holds data (namespace, database, its archive, broker) is never pruned or
    deleted by Argo CD, whatever happens to the render."""
    problems = []
    for obj in of_kind(objs, "Namespace", "Cluster", "ObjectStore", "RabbitmqCluster"):
        options = {o.strip() for o in annotations(obj).get(SYNC_OPTIONS, "").split(",")}
        for wanted in ("Prune=false", "Delete=false"):
            if wanted not in options:
                problems.append(f"{qualified_name(obj)}: no {wanted} sync option")
    return problems
