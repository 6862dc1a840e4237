"""Catalog's reconciliation (ADR 0012): stock counters checked against the reservations.

`stock_reserved` of a product must equal the units its RESERVED reservations hold. Reserved
stock no reservation holds can never be released, so it is given back to available stock
(repaired); reservations holding more than the counter says are reported only, since the
counter cannot be raised without taking stock that may already be promised elsewhere.

The worker runs `reconcile` every `CATALOG_RECONCILE_INTERVAL_SECONDS`; an operator runs it
on demand with `run_once(settings)` (what `shop-ops reconcile` calls) or the
`catalog-reconcile` command, which prints the report as JSON.
"""

from shop_catalog.reconcile.service import main, reconcile, run_once

__all__ = ["main", "reconcile", "run_once"]
