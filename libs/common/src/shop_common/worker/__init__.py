"""A service's worker process: the runner, its probe/metrics endpoint, periodic tasks.

    await run_service_worker(service="orders", settings=settings, outbox=OUTBOX,
                             inbox=INBOX, handlers=HANDLERS, extra=housekeeping)

runs the outbox relay, the consumer of the other service's events, retention and
`extra`'s components side by side until SIGTERM/SIGINT.
"""

from shop_common.worker.http import WorkerHttp
from shop_common.worker.periodic import Periodic
from shop_common.worker.runner import Component, Worker
from shop_common.worker.service import ExtraComponents, run_service_worker

__all__ = [
    "Component",
    "ExtraComponents",
    "Periodic",
    "Worker",
    "WorkerHttp",
    "run_service_worker",
]
