"""Argo CD: one Application per overlay, automated and self-healing, inside its project."""

from __future__ import annotations

import copy

import pytest

from tests.deploy.manifests import ARGOCD, K8S_DIR, KUSTOMIZATIONS, NAMESPACES, Manifest, find

pytestmark = pytest.mark.deploy

IN_CLUSTER = "https://kubernetes.default.svc"
CASCADE = "resources-finalizer.argocd.argoproj.io"
# Kinds that are not namespaced, as far as the overlays use them.
CLUSTER_SCOPED = {"Namespace"}


def application_problems(objs: list[Manifest], overlay: str) -> list[str]:
    (app,) = [o for o in objs if o["kind"] == "Application"]
    project = find(objs, "AppProject", app["spec"]["project"])["spec"]
    spec = app["spec"]
    problems = []
    source = spec["source"]
    path = (K8S_DIR.parent / source["path"]).resolve()
    if path != KUSTOMIZATIONS[overlay].resolve():
        problems.append(f"deploys {source['path']}, not the {overlay} overlay")
    if source["repoURL"] not in project.get("sourceRepos", []):
        problems.append(f"{source['repoURL']} is not a source of project {spec['project']}")
    destination = spec["destination"]
    if destination != {"server": IN_CLUSTER, "namespace": NAMESPACES[overlay]}:
        problems.append(f"destination {destination}: want {NAMESPACES[overlay]} in its own cluster")
    if destination not in project.get("destinations", []):
        problems.append(f"destination {destination} is not allowed by the project")
    automated = spec.get("syncPolicy", {}).get("automated", {})
    if not (automated.get("prune") and automated.get("selfHeal")):
        problems.append("sync is not automated with prune and self-heal")
    if overlay.startswith("prod"):
        if automated.get("allowEmpty"):
            problems.append("an empty render would delete production")
        if CASCADE in app["metadata"].get("finalizers", []):
            problems.append("deleting the Application would delete production")
    return problems


@pytest.mark.parametrize("bootstrap", ARGOCD)
def test_application_deploys_its_overlay(
    bootstrap: str, rendered: dict[str, list[Manifest]]
) -> None:
    problems = application_problems(rendered[bootstrap], ARGOCD[bootstrap])
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("bootstrap", ARGOCD)
def test_project_allows_what_the_overlay_creates_cluster_wide(
    bootstrap: str, rendered: dict[str, list[Manifest]]
) -> None:
    project = find(rendered[bootstrap], "AppProject", "shop")["spec"]
    allowed = {(r["group"], r["kind"]) for r in project["clusterResourceWhitelist"]}
    assert allowed == {("", "Namespace")}
    overlay = rendered[ARGOCD[bootstrap]]
    assert {o["kind"] for o in overlay if "namespace" not in o["metadata"]} <= CLUSTER_SCOPED


def test_every_deployable_overlay_has_an_application() -> None:
    assert set(ARGOCD.values()) == {"dev", "prod", "prod-dr"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["source"].update(path="k8s/overlays/prod-keda"), "not the prod overlay"),
        (lambda s: s["syncPolicy"]["automated"].update(selfHeal=False), "self-heal"),
        (lambda s: s["syncPolicy"]["automated"].update(allowEmpty=True), "empty render"),
        (lambda s: s["destination"].update(namespace="default"), "destination"),
        (lambda s: s["source"].update(repoURL="https://example.org/fork.git"), "not a source"),
    ],
    ids=["other overlay", "no self-heal", "allow empty", "other namespace", "other repo"],
)
def test_application_rule_detects(
    change: object, expected: str, rendered: dict[str, list[Manifest]]
) -> None:
    objs = copy.deepcopy(rendered["argocd-prod"])
    change(find(objs, "Application", "shop-prod")["spec"])  # type: ignore[operator]
    assert any(expected in p for p in application_problems(objs, "prod"))
