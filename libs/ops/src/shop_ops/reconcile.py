"""`reconcile`: run each service's reconciliation once, on demand.

The seam: one function per service that takes its `Target` and returns what it found and
repaired. Reconciliation itself (finding drift a service can repair from its own data, and
repairing it through its normal idempotent events, ADR 0012) belongs to the services: this
calls their `run_once` with their own settings, read from their own environment, as their
workers do.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from shop_catalog.reconcile import run_once as reconcile_catalog
from shop_catalog.settings import CatalogSettings
from shop_common.worker import ReconcileReport as ServiceReport
from shop_ops.settings import Service, Target
from shop_orders.reconcile import run_once as reconcile_orders
from shop_orders.settings import OrdersSettings


@dataclass(frozen=True)
class ReconcileReport:
    service: Service
    available: bool
    # What the check found and what it repaired, by kind of drift.
    found: Mapping[str, int] = field(default_factory=dict)
    repaired: Mapping[str, int] = field(default_factory=dict)
    detail: str | None = None


Reconciler = Callable[[Target], Awaitable[ReconcileReport]]


# The services' settings insist on a way to verify bearer tokens, which reconciliation never
# does; where the operator's environment has none, a placeholder satisfies that check.
_NO_TOKENS_VERIFIED = SecretStr("shop-ops verifies no token; this only fills the field")


def _service_settings(target: Target) -> dict[str, Any]:
    prefix = f"{target.service.value.upper()}_"
    values: dict[str, Any] = {"database_url": target.database_url}
    if not {f"{prefix}JWT_SECRET", f"{prefix}JWKS_URL"} & os.environ.keys():
        values["jwt_secret"] = _NO_TOKENS_VERIFIED
    return values


def _report(service: Service, report: ServiceReport) -> ReconcileReport:
    return ReconcileReport(
        service,
        available=True,
        found={finding.kind: finding.found for finding in report.findings},
        repaired={finding.kind: finding.repaired for finding in report.findings},
    )


async def _catalog(target: Target) -> ReconcileReport:
    settings = CatalogSettings(**_service_settings(target))
    return _report(Service.CATALOG, await reconcile_catalog(settings))


async def _orders(target: Target) -> ReconcileReport:
    settings = OrdersSettings(**_service_settings(target))
    return _report(Service.ORDERS, await reconcile_orders(settings))


RECONCILERS: Mapping[Service, Reconciler] = {Service.CATALOG: _catalog, Service.ORDERS: _orders}


async def reconcile(
    targets: Mapping[Service, Target],
    services: list[Service],
    reconcilers: Mapping[Service, Reconciler] = RECONCILERS,
) -> list[ReconcileReport]:
    return [await reconcilers[service](targets[service]) for service in services]
