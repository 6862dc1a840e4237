"""`reconcile`: run each service's reconciliation once, on demand.

The seam: one function per service that takes its `Target` and returns what it found and
repaired. Reconciliation itself (finding drift a service can repair from its own data, and
repairing it through its normal idempotent events) belongs to the services; until a
service ships its `run_once`, its entry here says so instead of pretending.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from shop_ops.settings import Service, Target


@dataclass(frozen=True)
class ReconcileReport:
    service: Service
    available: bool
    # What the check found and what it repaired, by kind of drift.
    found: Mapping[str, int] = field(default_factory=dict)
    repaired: Mapping[str, int] = field(default_factory=dict)
    detail: str | None = None


Reconciler = Callable[[Target], Awaitable[ReconcileReport]]


def _not_available(service: Service) -> Reconciler:
    async def reconcile(_: Target) -> ReconcileReport:
        return ReconcileReport(
            service,
            available=False,
            detail=f"{service} has no reconciliation in this build yet",
        )

    return reconcile


RECONCILERS: Mapping[Service, Reconciler] = {
    service: _not_available(service) for service in Service
}


async def reconcile(
    targets: Mapping[Service, Target],
    services: list[Service],
    reconcilers: Mapping[Service, Reconciler] = RECONCILERS,
) -> list[ReconcileReport]:
    return [await reconcilers[service](targets[service]) for service in services]
