"""Session fixtures of the deployment checks: rendered kustomizations and one checkov run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.failover import promoted_overlay
from tests.deploy.manifests import (
    CHECKOV_RENDERS,
    DEPLOY_TESTS_DIR,
    DOCKERFILE,
    FIXTURES_DIR,
    IMAGES,
    KUSTOMIZATIONS,
    PROMOTED_DR,
    Manifest,
    dockerfile_as_built,
    kustomize_build,
    load_documents,
    venv_tool,
)

CHECKOV_CONFIG = DEPLOY_TESTS_DIR / "checkov.yaml"
# Bounded: checkov normally needs 15-30 s here (2 cores); the tests that wait for it
# carry a matching pytest timeout (test_checkov.py).
CHECKOV_TIMEOUT_SECONDS = 240


@pytest.fixture(scope="session")
def rendered_text(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """`kubectl kustomize` output of every kustomization (and of prod-dr after failover),
    built once per session."""
    built = {name: kustomize_build(path) for name, path in KUSTOMIZATIONS.items()}
    built[PROMOTED_DR] = kustomize_build(promoted_overlay(tmp_path_factory.mktemp("failover")))
    return built


@pytest.fixture(scope="session")
def rendered(rendered_text: dict[str, str]) -> dict[str, list[Manifest]]:
    return {name: load_documents(text) for name, text in rendered_text.items()}


@dataclass(frozen=True)
class CheckovReport:
    """Failed and skipped checks of one checkov run, keyed by scanned file (e.g. prod.yaml)."""

    failed: dict[str, list[dict[str, Any]]]
    skipped: dict[str, list[dict[str, Any]]]
    scanned: tuple[str, ...]


def _by_file(checks: list[dict[str, Any]], root: Path) -> dict[str, list[dict[str, Any]]]:
    """Checks grouped by scanned file, as a path relative to the scan directory."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        path = Path(check["file_abs_path"]).resolve().relative_to(root.resolve())
        grouped.setdefault(path.as_posix(), []).append(check)
    return grouped


@pytest.fixture(scope="session")
def checkov_report(
    rendered_text: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> CheckovReport:
    """One offline checkov run over every overlay, the ops example, the Dockerfile (as
    written and as built for each image) and two known-bad files.

    checkov takes ~15-25 s to start and scan, so everything is scanned in a single process.
    The known-bad fixtures prove in the same run that the checks are really applied.
    """
    workdir = tmp_path_factory.mktemp("checkov")
    files = []
    for render in CHECKOV_RENDERS:
        target = workdir / f"{render}.yaml"
        target.write_text(rendered_text[render])
        files.append(target)
    # The one Dockerfile as it is, and as each image's build sees it (its stages only,
    # SERVICE substituted), so a check that holds for the file but not for one image fails.
    (workdir / "services").mkdir()
    shutil.copy(DOCKERFILE, workdir / "services" / "Dockerfile")
    files.append(workdir / "services" / "Dockerfile")
    for image in IMAGES:
        target_dir = workdir / image
        target_dir.mkdir()
        (target_dir / "Dockerfile").write_text(dockerfile_as_built(image))
        files.append(target_dir / "Dockerfile")
    bad_dir = workdir / "known-bad"
    bad_dir.mkdir()
    shutil.copy(FIXTURES_DIR / "insecure-deployment.yaml", bad_dir / "insecure-deployment.yaml")
    shutil.copy(FIXTURES_DIR / "insecure.Dockerfile", bad_dir / "Dockerfile")
    files += [bad_dir / "insecure-deployment.yaml", bad_dir / "Dockerfile"]

    command = [venv_tool("checkov"), "--config-file", str(CHECKOV_CONFIG), "--output", "json"]
    for file in files:
        command += ["--file", str(file)]
    env = {
        **os.environ,
        # Offline: no guideline mapping download, no version check, no platform API.
        "BC_SKIP_MAPPING": "TRUE",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
        "LOG_LEVEL": "ERROR",
    }
    env.pop("BC_API_KEY", None)
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_SECONDS,
        cwd=workdir,
        env=env,
        check=False,
    )
    # Exit code 1 just means "some check failed" (the known-bad files always do).
    if result.returncode not in (0, 1) or not result.stdout.strip():
        pytest.fail(f"checkov did not run (exit {result.returncode}):\n{result.stderr[-4000:]}")
    reports = json.loads(result.stdout)
    if isinstance(reports, dict):
        reports = [reports]
    failed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for report in reports:
        if report.get("summary", {}).get("parsing_errors"):
            pytest.fail(f"checkov could not parse some files: {report['summary']}")
        failed += report["results"].get("failed_checks", [])
        skipped += report["results"].get("skipped_checks", [])
    return CheckovReport(
        failed=_by_file(failed, workdir),
        skipped=_by_file(skipped, workdir),
        scanned=tuple(f.relative_to(workdir).as_posix() for f in files),
    )
