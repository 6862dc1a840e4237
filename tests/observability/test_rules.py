"""The alerting and recording rules: they parse, every alert has a promtool unit test that
sees it fire and stay quiet, a runbook page, and the PrometheusRule carries the same rules.

promtool comes with Debian's `prometheus` package (.ci/run installs it); without it these
tests are skipped locally and fail in CI (`CI=true`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.observability.rules import (
    PROMETHEUS_RULE,
    RULE_TESTS,
    RULES_FILE,
    RUNBOOK_BASE_URL,
    RUNBOOKS_DIR,
    alerting_rules,
    rendered_prometheus_rule,
)

SEVERITIES = {"page", "ticket"}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must check the rules, not skip them")
        pytest.skip(reason)
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_every_expression_parses() -> None:
    result = run_promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_unit_tests() -> None:
    result = run_promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_can_fail(tmp_path: Any) -> None:
    """A rule file whose outbox alert never fires fails the same unit tests."""
    broken = RULES_FILE.read_text().replace(
        "max by (outbox) (shop_outbox_lag_seconds) > 60",
        "max by (outbox) (shop_outbox_lag_seconds) > 600",
    )
    assert broken != RULES_FILE.read_text()
    rules = tmp_path / "shop.rules.yml"
    rules.write_text(broken)
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = [str(rules)]
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(yaml.safe_dump(tests))
    result = run_promtool("test", "rules", str(test_file))
    assert result.returncode != 0
    assert "ShopOutboxLagHigh" in result.stdout + result.stderr


def _cases() -> list[dict[str, Any]]:
    return [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


@pytest.mark.parametrize("alert", [rule["alert"] for rule in alerting_rules()])
def test_every_alert_is_seen_firing_and_quiet(alert: str) -> None:
    cases = [case for case in _cases() if case["alertname"] == alert]
    assert any(case.get("exp_alerts") for case in cases), f"no test sees {alert} fire"
    assert any(not case.get("exp_alerts") for case in cases), f"no test sees {alert} quiet"


def test_unit_tests_name_only_real_alerts() -> None:
    alerts = {rule["alert"] for rule in alerting_rules()}
    assert {case["alertname"] for case in _cases()} <= alerts


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_severity_a_summary_and_a_runbook_page(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"]
    assert annotations["description"]
    url: str = annotations["runbook_url"]
    assert url.startswith(RUNBOOK_BASE_URL), url
    page = RUNBOOKS_DIR / url.removeprefix(RUNBOOK_BASE_URL)
    assert page.is_file(), f"{rule['alert']}: no runbook at {page}"
    assert rule["alert"] in page.read_text(), f"{page.name} does not name {rule['alert']}"


def test_every_runbook_page_belongs_to_an_alert() -> None:
    linked = {
        rule["annotations"]["runbook_url"].removeprefix(RUNBOOK_BASE_URL)
        for rule in alerting_rules()
    }
    pages = {page.name for page in RUNBOOKS_DIR.glob("*.md") if page.name != "README.md"}
    assert pages == linked


def test_the_prometheus_rule_carries_the_rules_file() -> None:
    assert PROMETHEUS_RULE.read_text() == rendered_prometheus_rule(), (
        f"{PROMETHEUS_RULE.name} is stale: run `uv run python -m tests.observability.rules --write`"
    )
