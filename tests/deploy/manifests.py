"""Where the deployment artifacts live and how the tests render and read them."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.compose_interpolation import interpolate, read_env_file
from tests.deploy.dockerfiles import render_for_target

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = REPO_ROOT / "k8s"
DEPLOY_TESTS_DIR = Path(__file__).resolve().parent
SCHEMAS_DIR = DEPLOY_TESTS_DIR / "schemas"
FIXTURES_DIR = DEPLOY_TESTS_DIR / "fixtures"

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

SERVICES = ("catalog", "orders")
# One Dockerfile for every image: a service's, where `--build-arg SERVICE=<svc>` names the
# package and `--target <svc>` selects that service's final stage (docker-compose.yml
# passes both), and the operator's (`--target ops`, no argument; ADR 0014).
DOCKERFILE = REPO_ROOT / "services" / "Dockerfile"
OPS_IMAGE = "ops"
IMAGES = (*SERVICES, OPS_IMAGE)


def image_build(image: str) -> dict[str, Any]:
    """How an image is built from DOCKERFILE: the target and the build arguments."""
    if image == OPS_IMAGE:
        return {"target": OPS_IMAGE, "args": {}}
    return {"target": image, "args": {"SERVICE": image}}


def dockerfile_as_built(image: str) -> str:
    """DOCKERFILE as the build of an image sees it: the stages its target needs, with its
    build arguments substituted."""
    build = image_build(image)
    return render_for_target(DOCKERFILE.read_text(), build["target"], build["args"])


# Every kustomization that must build, and the namespace its objects land in.
KUSTOMIZATIONS = {
    "base": K8S_DIR / "base",
    "dev": K8S_DIR / "overlays" / "dev",
    "prod": K8S_DIR / "overlays" / "prod",
    "prod-keda": K8S_DIR / "overlays" / "prod-keda",
    "prod-dr": K8S_DIR / "overlays" / "prod-dr",
    "pitr": K8S_DIR / "examples" / "pitr",
    "ops": K8S_DIR / "examples" / "ops",
    "argocd-dev": K8S_DIR / "argocd" / "dev",
    "argocd-prod": K8S_DIR / "argocd" / "prod",
    "argocd-prod-dr": K8S_DIR / "argocd" / "prod-dr",
}
# overlays/prod-dr after the failover runbook's two edits (failover.py applies them to a
# copy of k8s/), rendered and checked like a real overlay.
PROMOTED_DR = "prod-dr-promoted"
RENDERS = (*KUSTOMIZATIONS, PROMOTED_DR)
OVERLAYS = ("dev", "prod", "prod-keda", "prod-dr", PROMOTED_DR)
# What checkov scans: the overlays, and the example that runs a Pod of the shop's (ops).
CHECKOV_RENDERS = (*OVERLAYS, "ops")
# The overlays that run the services (prod-dr keeps them on standby until failover).
SERVING_OVERLAYS = ("dev", "prod", "prod-keda", PROMOTED_DR)
NAMESPACES = {
    "dev": "shop-dev",
    "prod": "shop",
    "prod-keda": "shop",
    "prod-dr": "shop",
    PROMOTED_DR: "shop",
}
# Argo CD bootstrap kustomizations and the overlay each one's Application deploys.
ARGOCD = {"argocd-dev": "dev", "argocd-prod": "prod", "argocd-prod-dr": "prod-dr"}

# The Kubernetes release whose OpenAPI schemas (shipped by kubernetes-validate) the
# rendered objects must satisfy: the oldest minor the manifests target (sleep preStop
# hooks, matchLabelKeys in topology spread constraints need >= 1.30).
KUBERNETES_VERSION = "1.33.0"

Manifest = dict[str, Any]


def venv_tool(name: str) -> str:
    """A console script installed in the test interpreter's environment (hadolint, checkov...)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run the tests with `uv run --frozen pytest`")
    return found


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is not on PATH; it renders the kustomizations (`kubectl kustomize`)")
    return found


def kustomize_build(path: Path) -> str:
    """`kubectl kustomize <path>`: the rendered multi-document YAML (fails the test on error)."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        pytest.fail(f"kubectl kustomize {shown} failed:\n{result.stderr}")
    return result.stdout


def load_documents(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def qualified_name(obj: Manifest) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def of_kind(objs: list[Manifest], *kinds: str) -> list[Manifest]:
    return [obj for obj in objs if obj["kind"] in kinds]


def find(objs: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected exactly one {kind}/{name}, found {len(matches)}"
    return matches[0]


POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")


def pod_spec(obj: Manifest) -> Manifest:
    if obj["kind"] == "Pod":
        return dict(obj["spec"])
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(obj["spec"]["template"]["spec"])


def pod_labels(obj: Manifest) -> dict[str, str]:
    """The labels of the pods an object runs (a bare Pod's own)."""
    if obj["kind"] == "Pod":
        return dict(obj["metadata"].get("labels", {}))
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {}))
    return dict(obj["spec"]["template"]["metadata"].get("labels", {}))


def pod_templates(objs: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, pod spec) for every object that runs pods (a bare Pod is its own)."""
    for obj in objs:
        if obj["kind"] in (*POD_TEMPLATE_KINDS, "CronJob", "Pod"):
            yield obj, pod_spec(obj)


def all_containers(spec: Manifest) -> list[Manifest]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def is_shop_app(obj: Manifest) -> bool:
    """Objects of the two services themselves (not the dev databases or operators' CRs)."""
    labels = obj["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/name") in SERVICES


@cache
def raw_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def resolved_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose model as `docker compose config` sees it with .env.example copied to .env."""
    variables = read_env_file(ENV_EXAMPLE) if env is None else env
    resolved: dict[str, Any] = interpolate(copy.deepcopy(raw_compose()), variables)
    return resolved
