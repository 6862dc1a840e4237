"""What a reconciliation run found and repaired: one report shape for logs, metrics and the
operator's command, whichever service ran it.

>>> report = ReconcileReport(
...     service="orders",
...     findings=(Finding("release_unacknowledged", found=2, repaired=2),
...               Finding("pending_overdue", found=1, repaired=0)),
... )
>>> report.drift, report.unrepaired
(3, 1)
>>> report.as_dict()["findings"][1]
{'kind': 'pending_overdue', 'found': 1, 'repaired': 0}
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

FINDINGS = Counter(
    "shop_reconcile_findings_total",
    "Drift found by reconciliation, by kind and outcome: repaired (through the normal "
    "idempotent events), or reported (left for a person).",
    ["kind", "outcome"],
)
DRIFT = Gauge(
    "shop_reconcile_drift",
    "Drift the latest reconciliation run found, by kind (0 when all is well).",
    ["kind"],
)
LAST_RUN = Gauge(
    "shop_reconcile_last_run_timestamp_seconds",
    "When reconciliation last finished a run (Unix time): alert when it stops moving.",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """`found` items of one kind of drift, `repaired` of which this run repaired."""

    kind: str
    found: int
    repaired: int = 0


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    service: str
    findings: tuple[Finding, ...]

    @property
    def drift(self) -> int:
        return sum(finding.found for finding in self.findings)

    @property
    def unrepaired(self) -> int:
        return sum(finding.found - finding.repaired for finding in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_report(report: ReconcileReport) -> ReconcileReport:
    """Count the report in the metrics and log it (a warning when anything drifted)."""
    for finding in report.findings:
        DRIFT.labels(finding.kind).set(finding.found)
        if finding.repaired:
            FINDINGS.labels(finding.kind, "repaired").inc(finding.repaired)
        if finding.found > finding.repaired:
            FINDINGS.labels(finding.kind, "reported").inc(finding.found - finding.repaired)
    LAST_RUN.set(time.time())
    level = logging.WARNING if report.drift else logging.INFO
    log.log(
        level,
        "reconciliation of %s: %d found, %d repaired",
        report.service,
        report.drift,
        report.drift - report.unrepaired,
        extra={"reconcile": report.as_dict()},
    )
    return report
