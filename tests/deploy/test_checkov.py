"""checkov (offline) finds nothing in the rendered overlays and the Dockerfile.

The single checkov run (see conftest.checkov_report) also scans two known-bad files, so
a checkov that silently stopped checking would fail here too. Skips are allowed only with
a written reason: in checkov.yaml (a comment above the id) or on the resource itself.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.conftest import CHECKOV_CONFIG, CheckovReport
from tests.deploy.manifests import CHECKOV_RENDERS, IMAGES

# The first test here waits for the session's checkov run (see conftest.checkov_report).
pytestmark = [pytest.mark.deploy, pytest.mark.timeout(300)]

# The Dockerfile as written, then as each service's image build sees it.
SCANNED = [
    *(f"{render}.yaml" for render in CHECKOV_RENDERS),
    "services/Dockerfile",
    *(f"{image}/Dockerfile" for image in IMAGES),
]


def _describe(checks: list[dict[str, object]]) -> str:
    return "\n".join(f"{c['check_id']} {c['check_name']} - {c['resource']}" for c in checks)


@pytest.mark.parametrize("scanned", SCANNED)
def test_no_failed_checks(scanned: str, checkov_report: CheckovReport) -> None:
    assert scanned in checkov_report.scanned
    failed = checkov_report.failed.get(scanned, [])
    assert failed == [], _describe(failed)


def test_checkov_fails_known_bad_files(checkov_report: CheckovReport) -> None:
    k8s = {
        c["check_id"] for c in checkov_report.failed.get("known-bad/insecure-deployment.yaml", [])
    }
    assert {"CKV_K8S_16", "CKV_K8S_8", "CKV_K8S_13", "CKV_K8S_22"} <= k8s  # privileged, probes...
    docker = {c["check_id"] for c in checkov_report.failed.get("known-bad/Dockerfile", [])}
    assert {"CKV_DOCKER_3", "CKV_DOCKER_7"} <= docker  # no USER, :latest base


def test_resource_level_skips_carry_a_reason(checkov_report: CheckovReport) -> None:
    skipped = [c for checks in checkov_report.skipped.values() for c in checks]
    assert skipped, "expected the documented skips (dev databases' uid, Dockerfile HEALTHCHECK)"
    for check in skipped:
        reason = str(check.get("check_result", {}).get("suppress_comment") or "")
        assert len(reason.split()) >= 4, f"{check['check_id']} on {check['resource']}: no reason"


def test_config_skips_carry_a_reason() -> None:
    config = yaml.safe_load(CHECKOV_CONFIG.read_text())
    lines = CHECKOV_CONFIG.read_text().splitlines()
    for check_id in config["skip-check"]:
        index = next(i for i, line in enumerate(lines) if re.fullmatch(rf"\s*- {check_id}", line))
        start = index
        while start > 0 and lines[start - 1].strip().startswith("#"):
            start -= 1
        comment = [line.strip() for line in lines[start:index]]
        assert comment, f"{check_id} is skipped without a comment right above it"
        assert comment[0].startswith(f"# {check_id} "), f"{check_id}: the comment must name it"
        assert len(" ".join(comment).split()) >= 12, f"{check_id}: say why, not just what"


def test_checkov_runs_offline_with_the_checked_in_config() -> None:
    config = yaml.safe_load(CHECKOV_CONFIG.read_text())
    assert config["skip-download"] is True
    assert set(config["framework"]) == {"kubernetes", "dockerfile"}
