"""The rules file and its PrometheusRule twin, and where the observability artifacts live.

The rules file (Prometheus's own format) is the source; the PrometheusRule carries the same
groups for the Prometheus Operator. After editing the rules file:

    uv run python -m tests.observability.rules --write
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPONENT = REPO_ROOT / "k8s" / "components" / "observability"
RULES_FILE = COMPONENT / "rules" / "shop.rules.yml"
PROMETHEUS_RULE = COMPONENT / "prometheusrule.yaml"
DASHBOARDS_DIR = COMPONENT / "dashboards"
RULE_TESTS = Path(__file__).resolve().parent / "rules_test.yml"
RUNBOOKS_DIR = REPO_ROOT / "docs" / "runbooks"
RUNBOOK_BASE_URL = "https://git.example.com/shop/shop/-/blob/main/docs/runbooks/"

HEADER = """\
# GENERATED from rules/shop.rules.yml (the source: edit that file, then run
#   uv run python -m tests.observability.rules --write
# ); tests/observability/test_rules.py fails while the two differ.
"""


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return groups


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "shop",
            # Before the workloads: their first rollout is already watched.
            "annotations": {"argocd.argoproj.io/sync-wave": "-2"},
        },
        "spec": {"groups": rule_groups()},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, as the rules file writes them."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    )


_Dumper.add_representer(str, _text)


def rendered_prometheus_rule() -> str:
    return HEADER + yaml.dump(prometheus_rule(), Dumper=_Dumper, sort_keys=False, width=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {PROMETHEUS_RULE.name}")
    if parser.parse_args().write:
        PROMETHEUS_RULE.write_text(rendered_prometheus_rule())
    else:
        print(rendered_prometheus_rule(), end="")


if __name__ == "__main__":
    main()
