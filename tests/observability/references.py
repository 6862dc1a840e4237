"""Which metric names the dashboards and the rules read, parsed from their PromQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import promql_parser

from tests.observability.rules import DASHBOARDS_DIR, rule_groups

# Series Prometheus makes itself for every target, not exported by any process.
SYNTHESIZED = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (a selector without a name selects none)."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, expression) of every query of every dashboard panel."""
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def rule_queries() -> Iterator[tuple[str, str]]:
    for group in rule_groups():
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule['record']}", rule["expr"]


def recorded() -> set[str]:
    rules = [rule for group in rule_groups() for rule in group["rules"]]
    return {rule["record"] for rule in rules if "record" in rule}


def referenced() -> dict[str, list[str]]:
    """Metric name -> where it is read, for every name a process must export: not the
    recording rules' own series, not what Prometheus makes itself."""
    found: dict[str, list[str]] = {}
    for where, expr in [*dashboard_queries(), *rule_queries()]:
        for name in metric_names(expr) - recorded() - SYNTHESIZED:
            found.setdefault(name, []).append(where)
    return found
