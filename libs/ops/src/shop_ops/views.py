"""How each command's result looks: a table for people, a JSON document for scripts.

Every `*_json` returns plain JSON types (times in RFC 3339 UTC, durations in seconds), the
same fields the table shows and the ones it leaves out for width.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console, Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from shop_common.messaging import ParkedMessage, ParkingReport
from shop_ops.outbox import OutboxStatus
from shop_ops.reconcile import ReconcileReport
from shop_ops.timeline import SagaState, Timeline


def when(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def clock(at: datetime | None) -> str:
    """A time for a table: UTC to the millisecond."""
    if at is None:
        return "-"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def duration(span: timedelta | float | None) -> str:
    if span is None:
        return "-"
    seconds = span.total_seconds() if isinstance(span, timedelta) else span
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{sign}{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours} h {minutes:02d} min"


def seconds(span: timedelta | None) -> float | None:
    return None if span is None else round(span.total_seconds(), 6)


def dumps(document: object) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


# ------------------------------------------------------------------ outbox status


def outbox_json(statuses: Sequence[OutboxStatus]) -> dict[str, Any]:
    return {
        "services": [
            {
                "service": str(s.service),
                "checked_at": when(s.checked_at),
                "pending": s.pending,
                "oldest_pending_at": when(s.oldest_pending_at),
                "oldest_pending_age_seconds": s.oldest_age_seconds,
                "failing": s.failing,
                "failing_rows": [
                    {
                        "id": str(row.id),
                        "type": row.type,
                        "subject": row.subject,
                        "created_at": when(row.created_at),
                        "attempts": row.attempts,
                        "last_error": row.last_error,
                        "next_attempt_at": when(row.next_attempt_at),
                    }
                    for row in s.failing_rows
                ],
            }
            for s in statuses
        ]
    }


def outbox_table(statuses: Sequence[OutboxStatus]) -> Group:
    summary = Table(title="Outboxes (unsent events)", title_justify="left")
    for column in ("service", "pending", "oldest pending", "age", "failing"):
        summary.add_column(column, justify="right" if column != "service" else "left")
    for s in statuses:
        summary.add_row(
            str(s.service),
            str(s.pending),
            clock(s.oldest_pending_at),
            duration(s.oldest_age_seconds),
            Text(str(s.failing), style="bold red" if s.failing else ""),
        )
    parts: list[Table | Text] = [summary]
    failing = [(s.service, row) for s in statuses for row in s.failing_rows]
    if failing:
        rows = Table(title="Failing rows (oldest first)", title_justify="left")
        for column in ("service", "id", "type", "attempts", "next try", "last error"):
            rows.add_column(column, overflow="fold")
        for service, row in failing:
            rows.add_row(
                str(service),
                str(row.id),
                row.type,
                str(row.attempts),
                clock(row.next_attempt_at),
                row.last_error or "",
            )
        parts.append(rows)
    return Group(*parts)


# ------------------------------------------------------------------ parked


def parked_message_json(message: ParkedMessage, *, body: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": message.id,
        "type": message.type,
        "source": message.source,
        "subject": message.subject,
        "routing_key": message.routing_key,
        "parked_at": message.parked_at,
        "reason": message.reason,
        "retries": message.retries,
        "replays": message.replays,
        "last_error": message.last_error,
    }
    if body:
        document["content_type"] = message.content_type
        document["headers"] = dict(message.headers)
        document["body"] = message.body.decode("utf-8", errors="replace")
    return document


def report_json(report: ParkingReport, *, service: str) -> dict[str, Any]:
    return {
        "service": service,
        "queue": report.queue,
        "depth": report.depth,
        "results": [
            {**parked_message_json(r.message), "outcome": str(r.outcome), "detail": r.detail}
            for r in report.results
        ],
        "missing": list(report.missing),
        "duplicates_dropped": report.duplicates,
        "aborted": report.aborted,
        "ok": report.ok,
    }


def parked_table(report: ParkingReport) -> Table:
    shown = len(report.results)
    more = f", the oldest {shown} shown" if shown < report.depth else ""
    table = Table(title=f"{report.queue}: {report.depth} parked{more}", title_justify="left")
    for column in ("id", "type", "subject", "parked at", "retries", "reason"):
        table.add_column(column, overflow="fold")
    for result in report.results:
        m = result.message
        table.add_row(
            m.id, m.type or "?", m.subject or "", m.parked_at or "", str(m.retries), m.reason or ""
        )
    return table


def parked_detail(message: ParkedMessage, queue: str) -> Group:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    for name, value in parked_message_json(message).items():
        facts.add_row(name, "" if value is None else str(value))
    facts.add_row("queue", queue)
    facts.add_row("content type", message.content_type or "")
    body = message.body.decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError):  # else shown as it is: maybe why it was parked
        body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    return Group(
        facts,
        Text("headers", style="bold"),
        Syntax(dumps(dict(message.headers)), "json", word_wrap=True),
        Text("body", style="bold"),
        Syntax(body, "json", word_wrap=True),
    )


def outcome_table(report: ParkingReport, title: str) -> Group:
    table = Table(title=f"{report.queue}: {title}", title_justify="left")
    for column in ("id", "type", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    for result in report.results:
        style = "bold red" if result.outcome.failed else ""
        table.add_row(
            result.message.id,
            result.message.type or "?",
            Text(str(result.outcome), style=style),
            result.detail or "",
        )
    lines: list[Table | Text] = [table]
    if report.missing:
        missing = ", ".join(report.missing)
        lines.append(Text(f"not found in {report.queue}: {missing}", style="bold red"))
    if report.aborted:
        lines.append(Text(f"stopped early: {report.aborted}", style="bold red"))
    return Group(*lines)


# ------------------------------------------------------------------ order timeline


def timeline_json(timeline: Timeline) -> dict[str, Any]:
    order, reservation = timeline.order.state, timeline.reservation.state
    waiting = timeline.waiting
    return {
        "order_id": str(timeline.order_id),
        "state": str(timeline.state),
        "order": None
        if order is None
        else {
            "status": order.status,
            "reason": order.reason,
            "created_at": when(order.created_at),
            "updated_at": when(order.updated_at),
        },
        "reservation": None
        if reservation is None
        else {
            "status": reservation.status,
            "created_at": when(reservation.created_at),
            "updated_at": when(reservation.updated_at),
        },
        "steps": [
            {
                "at": when(step.at),
                "gap_seconds": seconds(step.gap),
                "service": str(step.service),
                "kind": str(step.kind),
                "step": step.name,
                "event_type": step.event_type,
                "event_id": str(step.event_id),
            }
            for step in timeline.steps
        ],
        "duration_seconds": seconds(timeline.duration),
        "waiting": None
        if waiting is None
        else {
            "service": str(waiting.service),
            "action": waiting.action,
            "since": when(waiting.since),
            "waited_seconds": seconds(waiting.waited),
            "stuck": timeline.state is SagaState.STUCK,
            "parked": waiting.parked,
            "event_type": waiting.event_type,
            "event_id": None if waiting.event_id is None else str(waiting.event_id),
            "hint": waiting.hint,
        },
        "notes": list(timeline.notes),
    }


_STATE_STYLE = {
    SagaState.COMPLETE: "bold green",
    SagaState.IN_PROGRESS: "bold yellow",
    SagaState.STUCK: "bold red",
    SagaState.NOT_FOUND: "bold red",
}


def timeline_view(timeline: Timeline) -> Group:
    order, reservation = timeline.order.state, timeline.reservation.state
    heading = Text(f"order {timeline.order_id}  ")
    heading.append(str(timeline.state).upper(), style=_STATE_STYLE[timeline.state])
    status = "no order row" if order is None else f"order {order.status}"
    if order is not None and order.reason:
        status += f" ({order.reason})"
    held = "no reservation row" if reservation is None else f"reservation {reservation.status}"
    lines: list[Table | Text] = [heading, Text(f"{status}, {held}")]
    if timeline.state is SagaState.NOT_FOUND:
        lines.append(Text("Neither service has a record of this order."))
        return Group(*lines)
    table = Table()
    for column, justify in (
        ("at (UTC)", "left"),
        ("gap", "right"),
        ("service", "left"),
        ("step", "left"),
        ("event", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for step in timeline.steps:
        gap = "" if step.gap is None else "+" + duration(step.gap)
        table.add_row(clock(step.at), gap, str(step.service), step.name, step.event_type)
    lines.append(table)
    if timeline.duration is not None:
        lines.append(Text(f"first to last step: {duration(timeline.duration)}"))
    waiting = timeline.waiting
    if waiting is not None:
        label = "STUCK" if timeline.state is SagaState.STUCK else "waiting"
        lines.append(
            Text(
                f"{label}: {waiting.service} to {waiting.action}, for {duration(waiting.waited)} "
                f"(since {clock(waiting.since)})",
                style=_STATE_STYLE[timeline.state],
            )
        )
        lines.append(Text(waiting.hint))
    lines.extend(Text(note, style="dim") for note in timeline.notes)
    return Group(*lines)


# ------------------------------------------------------------------ reconcile


def reconcile_json(reports: Sequence[ReconcileReport]) -> dict[str, Any]:
    return {
        "services": [
            {
                "service": str(r.service),
                "available": r.available,
                "found": dict(r.found),
                "repaired": dict(r.repaired),
                "detail": r.detail,
            }
            for r in reports
        ]
    }


def reconcile_table(reports: Sequence[ReconcileReport]) -> Table:
    table = Table(title="Reconciliation", title_justify="left")
    for column in ("service", "found", "repaired", "detail"):
        table.add_column(column, overflow="fold")
    for r in reports:
        table.add_row(
            str(r.service),
            _counts(r.found) if r.available else "-",
            _counts(r.repaired) if r.available else "-",
            r.detail or "",
        )
    return table


def _counts(counts: dict[str, int] | Any) -> str:
    return ", ".join(f"{kind}: {n}" for kind, n in counts.items()) or "nothing"


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)
