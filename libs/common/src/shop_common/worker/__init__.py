"""A service's worker process: the runner, its probe/metrics endpoint, periodic tasks.

A `Worker` runs components side by side until one `stop` event ends them all (in a real
process SIGTERM or SIGINT sets it); `Periodic` is the loop for housekeeping:

>>> import asyncio
>>> stop, rounds = asyncio.Event(), []
>>> async def sweep() -> None:
...     rounds.append(len(rounds))
...     if len(rounds) == 3:
...         stop.set()
>>> asyncio.run(Worker(Periodic("sweep", sweep, interval=0.01)).run(stop, handle_signals=False))
>>> rounds
[0, 1, 2]

A service's worker entry point is one call. It runs the outbox relay, the consumer of the
other service's events, retention, the probe endpoint on `settings.worker_port` and
`extra`'s components, until SIGTERM/SIGINT (so it needs PostgreSQL and RabbitMQ):

>>> asyncio.run(run_service_worker(service="orders", settings=settings, outbox=OUTBOX,
...     inbox=INBOX, handlers=HANDLERS, extra=housekeeping))  # doctest: +SKIP

A service's reconciliation returns a `ReconcileReport` (`Finding`s of drift by kind, how
many found and repaired); `record_report` puts it in the metrics and the log.
"""

from shop_common.worker.http import WorkerHttp
from shop_common.worker.periodic import Periodic
from shop_common.worker.reconcile import Finding, ReconcileReport, record_report
from shop_common.worker.runner import Component, Worker, run_process
from shop_common.worker.service import ExtraComponents, run_service_worker

__all__ = [
    "Component",
    "ExtraComponents",
    "Finding",
    "Periodic",
    "ReconcileReport",
    "Worker",
    "WorkerHttp",
    "record_report",
    "run_process",
    "run_service_worker",
]
