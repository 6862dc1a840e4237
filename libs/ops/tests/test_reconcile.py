"""`reconcile` calls one function per service; until a service ships one, it says so."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from shop_ops.cli import app
from shop_ops.reconcile import ReconcileReport, reconcile
from shop_ops.settings import Service, Target, load_targets


async def test_each_chosen_service_runs_its_own_reconciler_once() -> None:
    calls: list[Target] = []

    def fake(service: Service):
        async def run(target: Target) -> ReconcileReport:
            calls.append(target)
            return ReconcileReport(service, True, {"cancel_unacknowledged": 2}, {"resent": 2})

        return run

    targets = load_targets()
    reports = await reconcile(
        targets, [Service.ORDERS], {service: fake(service) for service in Service}
    )

    assert calls == [targets[Service.ORDERS]]
    assert reports == [
        ReconcileReport(Service.ORDERS, True, {"cancel_unacknowledged": 2}, {"resent": 2})
    ]


def test_without_a_reconciler_the_command_says_so_and_fails() -> None:
    result = CliRunner().invoke(app, ["reconcile", "--json"])

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [(s["service"], s["available"]) for s in document["services"]] == [
        ("catalog", False),
        ("orders", False),
    ]
    assert "no reconciliation in this build" in document["services"][0]["detail"]
