"""`shop-ops`: the operator CLI. Each command connects as the service it looks at.

Human tables by default, `--json` for scripts. Exit status: 0 done; 1 the command ran but
something needs an operator (a replay that left messages parked, an id not found, an
order nobody knows, a database or broker that cannot be reached); 2 wrong usage.
Settings come from the services' own environment variables (`shop_ops.settings`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from datetime import timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import aiormq
import typer
from rich.console import Group
from sqlalchemy.exc import DBAPIError

from shop_common.messaging import ParkingReport, list_parked, purge_parked, replay_parked
from shop_ops import views
from shop_ops.database import read_only
from shop_ops.outbox import OutboxStatus, outbox_status
from shop_ops.reconcile import reconcile as run_reconcile
from shop_ops.saga import order_timeline
from shop_ops.settings import Service, Target, load_targets
from shop_ops.timeline import SagaState

T = TypeVar("T")

app = typer.Typer(
    name="shop-ops",
    help="Operate the shop: outboxes, parked messages, one order's saga, reconciliation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
outbox_app = typer.Typer(
    help="The services' transactional outboxes.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
parked_app = typer.Typer(
    help=(
        "Parking queues: messages a consumer gave up on, waiting for an operator. "
        "Each command takes one pass over the queue and leaves every message it does not "
        "move where it was (run one at a time)."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(outbox_app, name="outbox")
app.add_typer(parked_app, name="parked")

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Services = Annotated[
    list[Service] | None,
    typer.Option("--service", "-s", help="Only this service (repeatable); default: both."),
]
OneService = Annotated[
    Service, typer.Option("--service", "-s", help="The service whose parking queue to use.")
]
Limit = Annotated[
    int,
    typer.Option(
        min=1,
        help="Look at the oldest N only (they then move behind the others: run it again "
        "for the next N).",
    ),
]


class OpsError(Exception):
    """A failure shop-ops explains in one line instead of a traceback."""


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except OpsError as exc:
        _fail(str(exc))
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        _fail(f"not found on the broker (is the worker's topology declared?): {exc}")
    except (aiormq.exceptions.AMQPError, DBAPIError, OSError, TimeoutError) as exc:
        _fail(f"cannot reach a database or the broker: {exc!r}")


def _fail(message: str) -> NoReturn:
    typer.echo(f"shop-ops: {message}", err=True)
    raise typer.Exit(1)


def _print(document: dict[str, Any], renderable: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(views.dumps(document))
    else:
        views.console().print(renderable)


def _chosen(services: list[Service] | None) -> list[Service]:
    return list(dict.fromkeys(services)) if services else list(Service)


# ------------------------------------------------------------------ outbox


@outbox_app.command("status")
def outbox_status_command(
    service: Services = None,
    failing: Annotated[
        int, typer.Option(min=0, help="How many failing rows to show per service.")
    ] = 10,
    as_json: Json = False,
) -> None:
    """Unsent events per service: how many, the oldest one's age, and the rows that keep
    failing (attempts > 0, with the relay's last error).

    Connects to each service's database as that service's role.
    """
    targets = load_targets()

    async def work() -> list[OutboxStatus]:
        statuses = []
        for chosen in _chosen(service):
            async with read_only(targets[chosen]) as conn:
                statuses.append(await outbox_status(conn, chosen, show_failing=failing))
        return statuses

    statuses = _run(work())
    _print(views.outbox_json(statuses), views.outbox_table(statuses), as_json)


# ------------------------------------------------------------------ parked


@parked_app.command("list")
def parked_list(service: Services = None, limit: Limit = 1000, as_json: Json = False) -> None:
    """The parked messages, oldest first: id, type, subject, when and why parked."""
    targets = load_targets()
    chosen = _chosen(service)

    async def work() -> list[ParkingReport]:
        return [await _list(targets[s], limit) for s in chosen]

    reports = _run(work())
    document = {
        "queues": [
            views.report_json(report, service=str(s))
            for s, report in zip(chosen, reports, strict=True)
        ]
    }
    _print(document, Group(*(views.parked_table(r) for r in reports)), as_json)
    _exit_unless(all(r.aborted is None for r in reports))


@parked_app.command("show")
def parked_show(
    message_id: Annotated[str, typer.Argument(metavar="ID", help="The message's id.")],
    service: OneService,
    as_json: Json = False,
) -> None:
    """One parked message in full: properties, headers and body."""
    target = load_targets()[service]
    report = _run(_list(target, None))
    found = [r.message for r in report.results if r.message.id == message_id]
    if not found:
        _fail(f"no message {message_id} in {report.queue}")
    message = found[0]
    document = {
        "service": str(service),
        "queue": report.queue,
        **views.parked_message_json(message, body=True),
    }
    _print(document, views.parked_detail(message, report.queue), as_json)


@parked_app.command("replay")
def parked_replay(
    service: OneService,
    message_ids: Annotated[
        list[str] | None, typer.Argument(metavar="ID", help="The messages to replay.")
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every parked message.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be replayed; move nothing.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Move parked messages back to the service's queue, their retries reset.

    Fix the cause first. Each copy is published mandatory and confirmed before the parked
    message is acked; one the broker returns (its queue or binding is missing), refuses
    or does not confirm stays parked and is reported. The consumer's inbox makes a replay
    of an event it already handled harmless. Exits 1 if anything stayed parked.
    """
    if replay_all == bool(message_ids):
        raise typer.BadParameter("name the messages to replay, or pass --all (not both)")
    target = load_targets()[service]
    ids = None if replay_all else message_ids
    report = _run(replay_parked(target.amqp_url, target.topology, ids=ids, dry_run=dry_run))
    title = "would replay (dry run)" if dry_run else "replay"
    _print(
        views.report_json(report, service=str(service)),
        views.outcome_table(report, title),
        as_json,
    )
    _exit_unless(report.ok)


@parked_app.command("purge")
def parked_purge(
    service: OneService,
    message_ids: Annotated[list[str], typer.Argument(metavar="ID", help="The messages to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first (scripts).")] = False,
    as_json: Json = False,
) -> None:
    """Delete parked messages for good: events that must never be applied.

    Asks first unless --yes. Exits 1 if an id was not found.
    """
    target = load_targets()[service]
    if not yes:
        typer.confirm(
            f"Delete {len(message_ids)} message(s) from {target.topology.parking_queue} for good?",
            abort=True,
        )
    report = _run(purge_parked(target.amqp_url, target.topology, message_ids))
    _print(
        views.report_json(report, service=str(service)),
        views.outcome_table(report, "purge"),
        as_json,
    )
    _exit_unless(report.ok)


async def _list(target: Target, limit: int | None) -> ParkingReport:
    if limit is None:
        return await list_parked(target.amqp_url, target.topology)
    return await list_parked(target.amqp_url, target.topology, limit=limit)


def _exit_unless(ok: bool) -> None:
    if not ok:
        raise typer.Exit(1)


# ------------------------------------------------------------------ order


@app.command("order")
def order(
    order_id: Annotated[uuid.UUID, typer.Argument(metavar="ORDER_ID", help="The order's id.")],
    stuck_after: Annotated[
        float,
        typer.Option(min=0, help="Seconds a step may be awaited before the order counts as stuck."),
    ] = 60.0,
    look_in_parking: Annotated[
        bool,
        typer.Option(
            "--parking/--no-parking",
            help="When it waits for a service to receive an event, look for that event in "
            "the service's parking queue.",
        ),
    ] = True,
    as_json: Json = False,
) -> None:
    """The saga of one order across both services, from each service's own tables.

    Placed, published, received by Catalog, reserved or rejected, published, received by
    Orders, confirmed or rejected (and cancelled, released), each with its time and the
    gap to the step before; then what it waits for, if anything, and where to look.
    Exits 1 if neither service knows the order.
    """
    targets = load_targets()
    timeline = _run(
        order_timeline(
            targets,
            order_id,
            stuck_after=timedelta(seconds=stuck_after),
            look_in_parking=look_in_parking,
        )
    )
    _print(views.timeline_json(timeline), views.timeline_view(timeline), as_json)
    _exit_unless(timeline.state is not SagaState.NOT_FOUND)


# ------------------------------------------------------------------ reconcile


@app.command("reconcile")
def reconcile(service: Services = None, as_json: Json = False) -> None:
    """Run each service's reconciliation once: find drift it can repair from its own data
    and repair it through its normal events. Exits 1 if drift is left for a person (found
    but not repaired) or a service has none to run."""
    reports = _run(run_reconcile(load_targets(), _chosen(service)))
    _print(views.reconcile_json(reports), views.reconcile_table(reports), as_json)
    _exit_unless(all(r.available and r.found == r.repaired for r in reports))


def main() -> None:
    app()
