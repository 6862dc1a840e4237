"""The database connections a rendered overlay's pods may hold at once, against what its
PostgreSQL allows (docs/adr/0013-http-edge.md, "Connection budget").

Each service Deployment counts its autoscaler's maximum (HPA `maxReplicas` or KEDA
`maxReplicaCount`) plus the pods a rolling update adds on top (`maxSurge`, rounded up as
Kubernetes does). Each pod counts what its processes' settings allow them to open
(`ServiceSettings.db_connection_ceiling`): an API's pool + overflow + driver pool, a worker's
pool + overflow (the relay's LISTEN and publishing connections come out of it), and one
connection each for readiness probes. The sum must stay under `max_connections` minus
`RESERVE`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from shop_common.settings import ServiceSettings
from tests.deploy.invariants import app_deployments
from tests.deploy.manifests import Manifest, of_kind, pod_spec

# Connections that are not the services' pods, kept free for them.
RESERVE = {
    # Only superusers may use these (PostgreSQL's default; a cluster may set its own).
    "superuser_reserved_connections": 3,
    "CloudNativePG instance manager and metrics exporter on the primary": 5,
    "migration Jobs during a rollout (shop-provision, then alembic, per service)": 4,
    "people and tools: psql, shop-ops, pg_dump, an ad-hoc report": 8,
}
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_MAX_SURGE = "25%"  # Kubernetes' default for a RollingUpdate

SettingsOf = Callable[[str, Manifest, Manifest], ServiceSettings]  # (service, pod owner, container)


@dataclass(frozen=True)
class Line:
    deployment: str
    pods: int  # the autoscaler's maximum plus the rollout surge
    per_pod: int

    @property
    def total(self) -> int:
        return self.pods * self.per_pod


@dataclass(frozen=True)
class Budget:
    lines: list[Line]
    max_connections: int
    reserve: int

    @property
    def used(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def available(self) -> int:
        return self.max_connections - self.reserve

    def table(self) -> str:
        rows = [
            f"  {x.deployment:<16} {x.pods:>3} pods x {x.per_pod:>3} = {x.total:>4}"
            for x in self.lines
        ]
        rows.append(
            f"  {'total':<16} {self.used:>25}  of {self.available} "
            f"(max_connections {self.max_connections} - reserve {self.reserve})"
        )
        return "\n".join(rows)


def max_replicas(objs: list[Manifest], deployment: str) -> int:
    for scaler in of_kind(objs, "HorizontalPodAutoscaler", "ScaledObject"):
        if scaler["spec"]["scaleTargetRef"]["name"] == deployment:
            spec = scaler["spec"]
            return int(spec["maxReplicas"] if "maxReplicas" in spec else spec["maxReplicaCount"])
    owner = next(d for d in of_kind(objs, "Deployment") if d["metadata"]["name"] == deployment)
    return int(owner["spec"].get("replicas", 1))


def surge(deployment: Manifest, replicas: int) -> int:
    strategy = deployment["spec"].get("strategy", {})
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0  # Recreate: the old pods are gone before the new ones start
    value = strategy.get("rollingUpdate", {}).get("maxSurge", DEFAULT_MAX_SURGE)
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(replicas * int(value[:-1]) / 100)
    return int(value)


def server_limits(objs: list[Manifest]) -> tuple[int, int] | None:
    """(max_connections, superuser_reserved_connections) of the overlay's PostgreSQL:
    the CloudNativePG Cluster's parameters, or the dev StatefulSet's `-c` arguments."""
    for cluster in of_kind(objs, "Cluster"):
        parameters = cluster["spec"].get("postgresql", {}).get("parameters", {})
        return (
            int(parameters.get("max_connections", POSTGRES_DEFAULT_MAX_CONNECTIONS)),
            int(parameters.get("superuser_reserved_connections", 3)),
        )
    for statefulset in of_kind(objs, "StatefulSet"):
        for container in pod_spec(statefulset)["containers"]:
            if container["image"].startswith("postgres:"):
                args = " ".join(container.get("args", []))
                found = dict(re.findall(r"-c\s+(\w+)=(\d+)", args))
                return (
                    int(found.get("max_connections", POSTGRES_DEFAULT_MAX_CONNECTIONS)),
                    int(found.get("superuser_reserved_connections", 3)),
                )
    return None


def process_of(container: Manifest) -> str | None:
    """`api` or `worker` for the services' entry points, None for anything else."""
    command = container.get("command") or []
    match = re.fullmatch(r"[a-z]+-(api|worker)", command[0]) if command else None
    return match.group(1) if match else None


def budget(objs: list[Manifest], settings_of: SettingsOf) -> Budget:
    limits = server_limits(objs)
    assert limits is not None, "no PostgreSQL in this overlay"
    max_connections, superuser_reserved = limits
    reserve = {**RESERVE, "superuser_reserved_connections": superuser_reserved}
    lines = []
    for deployment in app_deployments(objs):
        name = deployment["metadata"]["name"]
        service = deployment["metadata"]["labels"]["app.kubernetes.io/name"]
        replicas = max_replicas(objs, name)
        per_pod = 0
        for container in pod_spec(deployment)["containers"]:
            process = process_of(container)
            if process is not None:
                settings = settings_of(service, deployment, container)
                per_pod += settings.db_connection_ceiling(process)  # type: ignore[arg-type]
        lines.append(Line(name, replicas + surge(deployment, replicas), per_pod))
    return Budget(sorted(lines, key=lambda x: x.deployment), max_connections, sum(reserve.values()))


def budget_problems(objs: list[Manifest], settings_of: SettingsOf) -> list[str]:
    found = budget(objs, settings_of)
    if found.used <= found.available:
        return []
    return [
        f"{found.used} connections at the maxima, {found.available} available:\n{found.table()}"
    ]
