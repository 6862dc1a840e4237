"""The dashboards' and rules' PromQL parses, and the names they read are found in it
(tests/e2e/test_metrics_exported.py checks those names against the running processes)."""

from __future__ import annotations

import pytest

from tests.observability.references import (
    dashboard_queries,
    metric_names,
    recorded,
    referenced,
    rule_queries,
)


def test_names_are_found_in_selectors_not_in_labels_or_functions() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{status=~"x|y"}[5m])))'
        " > on(slo) group_left() (1 - b:recorded:ratio) and ignoring(le) c_total offset 5m"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b:recorded:ratio", "c_total"}


@pytest.mark.parametrize(("where", "expr"), list(dashboard_queries()))
def test_every_panel_query_parses_and_reads_a_metric(where: str, expr: str) -> None:
    assert metric_names(expr), f"{where}: {expr} reads no metric"


@pytest.mark.parametrize(("where", "expr"), list(rule_queries()))
def test_every_rule_parses(where: str, expr: str) -> None:
    metric_names(expr)  # a parse error raises


def test_what_is_read_is_named_for_the_e2e_check() -> None:
    names = referenced()
    assert "shop_outbox_lag_seconds" in names
    assert "http_requests_total" in names
    assert not names.keys() & recorded()
    assert "up" not in names
