"""`reconcile` calls one function per service and reports what each found and repaired."""

from __future__ import annotations

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


async def test_a_service_report_becomes_found_and_repaired_by_kind() -> None:
    from shop_common.worker import Finding
    from shop_common.worker import ReconcileReport as ServiceReport
    from shop_ops.reconcile import _report

    report = _report(
        Service.ORDERS,
        ServiceReport("orders", (Finding("lost", found=3, repaired=2), Finding("late", found=1))),
    )
    assert report == ReconcileReport(
        Service.ORDERS, True, {"lost": 3, "late": 1}, {"lost": 2, "late": 0}
    )
