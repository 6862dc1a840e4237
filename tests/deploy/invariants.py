"""Rules every rendered overlay must keep; each returns the list of its violations.

The functions take rendered objects (dicts) and never raise on a violation, so the
tests can show them all at once and can prove each rule fails on a broken input.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Iterable
from urllib.parse import urlsplit

from tests.deploy.manifests import (
    Manifest,
    all_containers,
    is_shop_app,
    of_kind,
    pod_labels,
    pod_spec,
    pod_templates,
    qualified_name,
)

LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
APP_COMPONENTS = ("api", "worker")


def _labels(obj: Manifest) -> dict[str, str]:
    return dict(obj["metadata"].get("labels", {}))


def app_deployments(objs: Iterable[Manifest]) -> list[Manifest]:
    """The services' API and worker Deployments."""
    return [
        obj
        for obj in objs
        if obj["kind"] == "Deployment"
        and is_shop_app(obj)
        and _labels(obj).get("app.kubernetes.io/component") in APP_COMPONENTS
    ]


# ------------------------------------------------------------------ probes and resources


def probe_problems(objs: list[Manifest]) -> list[str]:
    problems = []
    for obj, spec in pod_templates(objs):
        if obj["kind"] not in LONG_RUNNING_KINDS:
            continue
        for container in spec.get("containers", []):
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in container:
                    problems.append(f"{qualified_name(obj)}/{container['name']}: no {probe}")
    return problems


def resource_problems(objs: list[Manifest]) -> list[str]:
    problems = []
    for obj, spec in pod_templates(objs):
        for container in all_containers(spec):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(kind, {}):
                        problems.append(
                            f"{qualified_name(obj)}/{container['name']}: no {kind}.{resource}"
                        )
    return problems


# ------------------------------------------------------------------ security context


def security_context_problems(objs: list[Manifest]) -> list[str]:
    """Restricted profile, stated explicitly on every container (init containers too)."""
    problems = []
    for obj, spec in pod_templates(objs):
        where = qualified_name(obj)
        pod_sc = spec.get("securityContext", {})
        for host_field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host_field):
                problems.append(f"{where}: {host_field} is set")
        for container in all_containers(spec):
            sc = container.get("securityContext", {})
            name = f"{where}/{container['name']}"
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: readOnlyRootFilesystem is not true")
            if sc.get("privileged"):
                problems.append(f"{name}: privileged")
            capabilities = sc.get("capabilities", {})
            if "ALL" not in capabilities.get("drop", []):
                problems.append(f"{name}: capabilities do not drop ALL")
            if capabilities.get("add"):
                problems.append(f"{name}: adds capabilities {capabilities['add']}")
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                problems.append(f"{name}: runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                problems.append(f"{name}: runs as uid 0")
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    return problems


def service_account_problems(objs: list[Manifest]) -> list[str]:
    """The services never call the Kubernetes API: no token anywhere, no service links."""
    problems = [
        f"{qualified_name(sa)}: automountServiceAccountToken is not false"
        for sa in of_kind(objs, "ServiceAccount")
        if sa.get("automountServiceAccountToken") is not False
    ]
    for obj, spec in pod_templates(objs):
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{qualified_name(obj)}: pod mounts a service account token")
        if spec.get("enableServiceLinks") is not False:
            # A Service named catalog-worker would inject CATALOG_WORKER_PORT=tcp://...
            problems.append(f"{qualified_name(obj)}: enableServiceLinks is not false")
    return problems


def topology_spread_problems(objs: list[Manifest]) -> list[str]:
    problems = []
    for obj in app_deployments(objs):
        constraints = pod_spec(obj).get("topologySpreadConstraints", [])
        keys = {c["topologyKey"] for c in constraints}
        for wanted in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
            if wanted not in keys:
                problems.append(f"{qualified_name(obj)}: no topology spread over {wanted}")
        pod_labels = obj["spec"]["template"]["metadata"]["labels"]
        for constraint in constraints:
            selector = constraint.get("labelSelector", {}).get("matchLabels", {})
            if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
                problems.append(f"{qualified_name(obj)}: spread selector misses its own pods")
    return problems


# ------------------------------------------------------------------ autoscaling


def autoscaler_targets(objs: list[Manifest]) -> Counter[str]:
    """How many autoscalers (HPA or KEDA ScaledObject) target each Deployment name."""
    targets: Counter[str] = Counter()
    for obj in of_kind(objs, "HorizontalPodAutoscaler", "ScaledObject"):
        ref = obj["spec"]["scaleTargetRef"]
        if ref.get("kind", "Deployment") == "Deployment":
            targets[ref["name"]] += 1
    return targets


def autoscaler_problems(objs: list[Manifest]) -> list[str]:
    """Every API and worker Deployment has exactly one autoscaler, and only those do."""
    targets = autoscaler_targets(objs)
    deployments = {d["metadata"]["name"] for d in of_kind(objs, "Deployment")}
    problems = [
        f"Deployment/{d['metadata']['name']}: targeted by "
        f"{targets[d['metadata']['name']]} autoscalers, want exactly 1"
        for d in app_deployments(objs)
        if targets[d["metadata"]["name"]] != 1
    ]
    problems += [
        f"an autoscaler targets Deployment/{name}, which is not rendered"
        for name in targets
        if name not in deployments
    ]
    for hpa in of_kind(objs, "HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        resources = {
            m["resource"]["name"] for m in spec.get("metrics", []) if m["type"] == "Resource"
        }
        if not {"cpu", "memory"} <= resources:
            problems.append(f"{qualified_name(hpa)}: scales on {sorted(resources)}, not cpu+memory")
        window = spec.get("behavior", {}).get("scaleDown", {}).get("stabilizationWindowSeconds")
        if not window:
            problems.append(f"{qualified_name(hpa)}: no scale-down stabilisation window")
        if spec.get("minReplicas", 1) > spec["maxReplicas"]:
            problems.append(f"{qualified_name(hpa)}: minReplicas > maxReplicas")
    for scaled in of_kind(objs, "ScaledObject"):
        if scaled["spec"].get("minReplicaCount", 0) < 1:
            problems.append(
                f"{qualified_name(scaled)}: may scale the worker (and its outbox relay) to zero"
            )
    return problems


def disruption_budget_problems(objs: list[Manifest]) -> list[str]:
    problems = []
    pdbs = of_kind(objs, "PodDisruptionBudget")
    for deployment in app_deployments(objs):
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [
            p
            for p in pdbs
            if all(pod_labels.get(k) == v for k, v in p["spec"]["selector"]["matchLabels"].items())
        ]
        if len(covering) != 1:
            problems.append(f"{qualified_name(deployment)}: covered by {len(covering)} PDBs")
    return problems


# ------------------------------------------------------------------ secrets and images

PLACEHOLDER = re.compile(r"change[-_]me", re.IGNORECASE)
# Keys whose value is an identifier, not a credential.
NON_SECRET_KEYS = frozenset({"username", "user"})


def secret_values(secret: Manifest) -> Iterable[tuple[str, str]]:
    yield from secret.get("stringData", {}).items()
    for key, encoded in secret.get("data", {}).items():
        yield key, base64.b64decode(encoded).decode("utf-8", errors="replace")


def credential_is_placeholder(value: str) -> bool:
    """True for an obvious placeholder: the password of a URL, or the whole value."""
    if "://" in value:
        password = urlsplit(value).password
        return password is None or bool(PLACEHOLDER.search(password))
    return value == "" or bool(PLACEHOLDER.search(value))


def secret_problems(objs: list[Manifest]) -> list[str]:
    return [
        f"{qualified_name(secret)}: key {key} holds a real-looking value"
        for secret in of_kind(objs, "Secret")
        for key, value in secret_values(secret)
        if key not in NON_SECRET_KEYS and not credential_is_placeholder(value)
    ]


def image_references(objs: list[Manifest]) -> list[tuple[str, str]]:
    refs = [
        (f"{qualified_name(obj)}/{c['name']}", c["image"])
        for obj, spec in pod_templates(objs)
        for c in all_containers(spec)
    ]
    for kind, field in (("Cluster", "imageName"), ("RabbitmqCluster", "image")):
        refs += [
            (qualified_name(o), o["spec"][field]) for o in of_kind(objs, kind) if field in o["spec"]
        ]
    return refs


def image_problems(objs: list[Manifest]) -> list[str]:
    problems = []
    for where, image in image_references(objs):
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else None
        if tag is None:
            problems.append(f"{where}: image {image} has no tag (means :latest)")
        elif tag == "latest":
            problems.append(f"{where}: image {image} uses :latest")
    return problems


# ------------------------------------------------------------------ references


def secret_producers(objs: list[Manifest]) -> dict[str, tuple[Manifest, frozenset[str] | None]]:
    """Secret name -> (the rendered object that makes it, its keys or None if not known).

    Besides Secret objects: an ExternalSecret makes its target Secret with the keys it
    lists; CloudNativePG makes `<cluster>-superuser` (username, password) when superuser
    access is enabled; the RabbitMQ operator makes `<cluster>-default-user`.
    """
    producers: dict[str, tuple[Manifest, frozenset[str] | None]] = {}
    for secret in of_kind(objs, "Secret"):
        keys = frozenset(k for k, _ in secret_values(secret))
        producers[secret["metadata"]["name"]] = (secret, keys)
    for external in of_kind(objs, "ExternalSecret"):
        spec = external["spec"]
        name = spec.get("target", {}).get("name", external["metadata"]["name"])
        listed = {entry["secretKey"] for entry in spec.get("data", [])}
        listed |= set(spec.get("target", {}).get("template", {}).get("data", {}))
        # dataFrom brings whatever keys the remote secret has: not known here.
        producers[name] = (external, None if spec.get("dataFrom") else frozenset(listed))
    for cluster in of_kind(objs, "Cluster"):
        if cluster["spec"].get("enableSuperuserAccess"):
            superuser = f"{cluster['metadata']['name']}-superuser"
            producers[superuser] = (cluster, frozenset({"username", "password"}))
    for broker in of_kind(objs, "RabbitmqCluster"):
        producers[f"{broker['metadata']['name']}-default-user"] = (broker, None)
    return producers


def reference_problems(objs: list[Manifest], external_secrets: frozenset[str]) -> list[str]:
    """ConfigMaps, Secrets (and their keys) and ServiceAccounts used by pods all exist.

    A Secret exists when something in the render makes it (secret_producers).
    `external_secrets` are Secrets deliberately created outside this render.
    """
    config_maps = {o["metadata"]["name"]: o for o in of_kind(objs, "ConfigMap")}
    secrets = secret_producers(objs)
    accounts = {o["metadata"]["name"] for o in of_kind(objs, "ServiceAccount")}
    problems: list[str] = []

    def need_secret(where: str, name: str, key: str | None, optional: bool) -> None:
        if name in external_secrets:
            return
        if name not in secrets:
            problems.append(f"{where}: Secret {name} is not rendered")
        elif key is not None and not optional:
            keys = secrets[name][1]
            if keys is not None and key not in keys:
                problems.append(f"{where}: Secret {name} has no key {key}")

    for obj, spec in pod_templates(objs):
        where = qualified_name(obj)
        account = spec.get("serviceAccountName")
        if account and account not in accounts:
            problems.append(f"{where}: ServiceAccount {account} is not rendered")
        for volume in spec.get("volumes", []):
            if "configMap" in volume and volume["configMap"]["name"] not in config_maps:
                problems.append(f"{where}: ConfigMap {volume['configMap']['name']} missing")
            if "secret" in volume:
                need_secret(where, volume["secret"]["secretName"], None, False)
        for container in all_containers(spec):
            for source in container.get("envFrom", []):
                if "configMapRef" in source and source["configMapRef"]["name"] not in config_maps:
                    problems.append(f"{where}: ConfigMap {source['configMapRef']['name']} missing")
                if "secretRef" in source:
                    need_secret(where, source["secretRef"]["name"], None, False)
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    r = ref["secretKeyRef"]
                    need_secret(where, r["name"], r["key"], r.get("optional", False))
                if "configMapKeyRef" in ref and ref["configMapKeyRef"]["name"] not in config_maps:
                    problems.append(f"{where}: ConfigMap {ref['configMapKeyRef']['name']} missing")
    for auth in of_kind(objs, "TriggerAuthentication"):
        for ref in auth["spec"].get("secretTargetRef", []):
            need_secret(qualified_name(auth), ref["name"], ref["key"], False)
    for store in of_kind(objs, "ObjectStore"):
        for name, key in object_store_secret_refs(store):
            need_secret(qualified_name(store), name, key, False)
    return problems


def object_store_secret_refs(store: Manifest) -> list[tuple[str, str]]:
    """(Secret, key) pairs an ObjectStore's configuration reads (its credentials, CA)."""
    refs: list[tuple[str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if set(node) == {"name", "key"}:
                refs.append((node["name"], node["key"]))
                return
            for value in node.values():
                walk(value)

    walk(store["spec"]["configuration"])
    return refs


_VAR_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def env_expansion_problems(objs: list[Manifest]) -> list[str]:
    """Every $(VAR) in an env value names a variable defined before it.

    Kubernetes leaves an unresolvable $(VAR) in place, which would silently produce a
    broken URL; this catches it.
    """
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in of_kind(objs, "ConfigMap")}
    problems = []
    for obj, spec in pod_templates(objs):
        for container in all_containers(spec):
            defined = {
                key
                for source in container.get("envFrom", [])
                if "configMapRef" in source
                for key in config_maps.get(source["configMapRef"]["name"], {})
            }
            for env in container.get("env", []):
                for name in _VAR_REFERENCE.findall(env.get("value", "")):
                    if name not in defined:
                        problems.append(
                            f"{qualified_name(obj)}/{container['name']}: {env['name']} "
                            f"uses $({name}) before it is defined"
                        )
                defined.add(env["name"])
    return problems


def service_port_problems(objs: list[Manifest]) -> list[str]:
    """Each Service selects rendered pods, and its named target ports exist on them."""
    problems = []
    templates = [
        (pod_labels(obj), spec) for obj, spec in pod_templates(objs) if obj["kind"] != "Job"
    ]
    for service in of_kind(objs, "Service"):
        selector = service["spec"].get("selector", {})
        selected = [
            spec
            for labels, spec in templates
            if all(labels.get(k) == v for k, v in selector.items())
        ]
        if not selected:
            problems.append(f"{qualified_name(service)}: selects no rendered pods")
            continue
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for spec in selected:
                ports = [p for c in spec["containers"] for p in c.get("ports", [])]
                names = {p.get("name") for p in ports}
                numbers = {p["containerPort"] for p in ports}
                if target not in names and target not in numbers:
                    problems.append(f"{qualified_name(service)}: target port {target} not exposed")
    return problems


def namespace_problems(objs: list[Manifest], namespace: str) -> list[str]:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    return [
        f"{qualified_name(obj)}: namespace {obj['metadata'].get('namespace')!r}, want {namespace}"
        for obj in objs
        if obj["kind"] not in cluster_scoped and obj["metadata"].get("namespace") != namespace
    ]
