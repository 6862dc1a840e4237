"""Prometheus helpers the services share: counting what committed, and pool gauges.

A business fact (an order confirmed, a reservation rejected) is counted once its
transaction commits, never when the statement runs: a consumer applies a failing batch
again one message per transaction, and a count taken inside the first transaction would
count it twice. `after_commit` queues the observation on the session and runs it after
the commit; a rollback drops it.

>>> from sqlalchemy.orm import Session
>>> seen = []
>>> session = Session()
>>> after_commit(session, lambda: seen.append("confirmed"))
>>> seen  # nothing counted before the commit
[]
>>> session.commit()
>>> seen
['confirmed']

Connection pools are read when Prometheus scrapes, so the gauges cost nothing between
scrapes: `track_pool("engine", in_use=..., capacity=...)` when a pool opens, the returned
function when it closes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import QueuePool

__all__ = ["PoolGauges", "after_commit", "track_engine", "track_pool"]

log = logging.getLogger(__name__)
_QUEUED = "shop_common.metrics.after_commit"


def after_commit(session: AsyncSession | Session, observe: Callable[[], None]) -> None:
    """Run `observe` once the session's current transaction commits; never if it rolls back.

    Outside a transaction the session would begin one lazily; nothing has been written
    yet to count, so `observe` waits for that transaction's commit as well.
    """
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    sync.info.setdefault(_QUEUED, []).append(observe)


@event.listens_for(Session, "after_commit")
def _observe_committed(session: Session) -> None:
    for observe in session.info.pop(_QUEUED, ()):
        try:
            observe()
        except Exception:  # a metric must never fail the work it counts
            log.exception("a metric observation after commit failed")


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the queue is already empty; after a rollback of the outermost
    # transaction what it queued never happened. (A savepoint's rollback keeps its
    # observations: nothing in the services uses savepoints.)
    if transaction.parent is None:
        session.info.pop(_QUEUED, None)


class PoolGauges(Collector):
    """`shop_db_pool_connections_in_use` and `shop_db_pool_connections_max` by pool name,
    read from the pools at scrape time. Pools of one name are added up (an app built
    twice in one test process); a process has one engine and at most one driver pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[int, tuple[str, Callable[[], int], int]] = {}
        self._next = 0

    def track(self, name: str, *, in_use: Callable[[], int], capacity: int) -> Callable[[], None]:
        """Report a pool under `name` until the returned function is called."""
        with self._lock:
            token, self._next = self._next, self._next + 1
            self._pools[token] = (name, in_use, capacity)

        def untrack() -> None:
            with self._lock:
                self._pools.pop(token, None)

        return untrack

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            pools = list(self._pools.values())
        in_use: dict[str, int] = {}
        capacity: dict[str, int] = {}
        for name, read, size in pools:
            try:
                in_use[name] = in_use.get(name, 0) + read()
            except Exception:  # a pool closing under the scrape: report what can be read
                log.debug("pool %s could not be read", name, exc_info=True)
                continue
            capacity[name] = capacity.get(name, 0) + size
        used = GaugeMetricFamily(
            "shop_db_pool_connections_in_use",
            "Database connections checked out of the process's pool (engine: SQLAlchemy's "
            "units of work; driver: the API's hot statements).",
            labels=["pool"],
        )
        most = GaugeMetricFamily(
            "shop_db_pool_connections_max",
            "Connections the process's pool may hold at most (size plus overflow).",
            labels=["pool"],
        )
        for name in sorted(in_use):
            used.add_metric([name], in_use[name])
            most.add_metric([name], capacity[name])
        yield used
        yield most

    def describe(self) -> list[Any]:
        # Families without samples until a pool is tracked: describe nothing so that
        # registering does not call collect() before any pool exists.
        return []


_GAUGES = PoolGauges()
REGISTRY.register(_GAUGES)


def track_pool(name: str, *, in_use: Callable[[], int], capacity: int) -> Callable[[], None]:
    """Report a connection pool on /metrics until the returned function is called."""
    return _GAUGES.track(name, in_use=in_use, capacity=capacity)


def track_engine(engine: AsyncEngine, *, capacity: int) -> Callable[[], None]:
    """Report a SQLAlchemy engine's pool as `pool="engine"` until the returned function is
    called (the pool is looked up at each scrape: `dispose()` replaces it)."""

    def in_use() -> int:
        pool = engine.pool
        return pool.checkedout() if isinstance(pool, QueuePool) else 0

    return track_pool("engine", in_use=in_use, capacity=capacity)
