"""When Orders asks Catalog again, and when it gives up on a PENDING order (ADR 0012).

Pure rules over what the sweeper read: no I/O, so every case is a unit test. Times are the
database's clock (`now()`, the relay's `published_at`), never the process's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from shop_orders.settings import OrdersSettings

# An answer to another order counts as evidence only once it is this old (or the first
# re-send interval, if shorter), so an answer of ours processed at the same moment is not
# mistaken for a missing one.
ANSWER_GRACE = timedelta(minutes=1)


class Step(enum.Enum):
    WAIT = "wait"
    RESEND = "resend"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class Timing:
    resend_after: timedelta
    resend_max: timedelta
    deadline: timedelta

    @classmethod
    def of(cls, settings: OrdersSettings) -> Timing:
        return cls(
            resend_after=timedelta(seconds=settings.saga_resend_after_seconds),
            resend_max=timedelta(seconds=settings.saga_resend_max_seconds),
            deadline=timedelta(seconds=settings.pending_deadline_seconds),
        )

    @property
    def answer_grace(self) -> timedelta:
        return min(ANSWER_GRACE, self.resend_after)

    def resend_interval(self, sends: int) -> timedelta:
        """How long copy number `sends` may go unanswered before the next: doubling, capped."""
        doubled: timedelta = self.resend_after * 2 ** max(sends - 1, 0)
        return min(doubled, self.resend_max)


@dataclass(frozen=True, slots=True)
class Request:
    """An order's latest request to Catalog, as the sweeper found it.

    `sent_at` is when the broker confirmed it (the outbox row's `published_at`), or None
    while it is still in the outbox: Catalog cannot have it, so it cannot be late.
    """

    sends: int
    sent_at: datetime | None


class Decision(NamedTuple):
    step: Step
    next_check_at: datetime
    answering_since: datetime | None = None


def decide_pending(
    timing: Timing,
    request: Request,
    *,
    now: datetime,
    answering_since: datetime | None,
    answered_horizon: datetime | None,
) -> Decision:
    """What to do with a PENDING order.

    `answered_horizon` is the creation time of the newest order Catalog has answered. An
    order created after our request left the outbox sits behind it in Catalog's queue, so
    its answer shows Catalog has read past ours. Only then does the deadline clock run
    (`answering_since`, kept from the first time this was seen); it ends the wait when it
    has run `deadline` long and Catalog has also answered past our latest copy. During an
    outage of the broker, a worker or a database nothing is answered, and nothing expires.
    """
    if request.sent_at is None:
        return Decision(Step.WAIT, now + timing.resend_after, answering_since)
    overtaken = answered_horizon is not None and answered_horizon > request.sent_at
    if overtaken and answering_since is None:
        answering_since = now
    if overtaken and answering_since is not None and now - answering_since >= timing.deadline:
        return Decision(Step.GIVE_UP, now, answering_since)
    step, next_check_at, _ = decide_resend(timing, request, now=now)
    if answering_since is not None and answering_since + timing.deadline > now:
        # Look again when the deadline expires, not only when the next copy is due.
        next_check_at = min(next_check_at, answering_since + timing.deadline)
    return Decision(step, next_check_at, answering_since)


def decide_resend(timing: Timing, request: Request, *, now: datetime) -> Decision:
    """Send the request again once its latest copy has gone unanswered for its interval."""
    if request.sent_at is None:
        return Decision(Step.WAIT, now + timing.resend_after)
    due = request.sent_at + timing.resend_interval(request.sends)
    if now < due:
        return Decision(Step.WAIT, due)
    return Decision(Step.RESEND, now + timing.resend_interval(request.sends + 1))
