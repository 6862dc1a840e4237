"""The saga's rules (ADR 0012) case by case: when a request to Catalog is sent again, when a
PENDING order is given up on, and which timings refuse to start. No I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from shop_orders.orders.saga import Request, Step, Timing, decide_pending, decide_resend
from shop_orders.settings import OrdersSettings
from tests.support import TEST_JWT_SECRET

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMING = Timing(
    resend_after=timedelta(minutes=5), resend_max=timedelta(hours=1), deadline=timedelta(hours=2)
)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def test_resend_intervals_double_up_to_the_cap() -> None:
    minutes = [TIMING.resend_interval(n) / timedelta(minutes=1) for n in range(1, 8)]
    assert minutes == [5, 10, 20, 40, 60, 60, 60]


def test_a_request_still_in_the_outbox_is_never_late() -> None:
    # The broker has been down for hours: Catalog cannot have it, so nothing expires.
    decision = decide_pending(
        TIMING,
        Request(sends=1, sent_at=None),
        now=NOW,
        answering_since=ago(hours=5),
        answered_horizon=NOW,
    )
    assert decision == (Step.WAIT, NOW + TIMING.resend_after, ago(hours=5))


@pytest.mark.parametrize(
    ("sends", "sent_minutes_ago", "step", "next_check"),
    [
        (1, 4, Step.WAIT, ago(minutes=4) + timedelta(minutes=5)),
        (1, 5, Step.RESEND, NOW + timedelta(minutes=10)),
        (2, 9, Step.WAIT, ago(minutes=9) + timedelta(minutes=10)),
        (2, 10, Step.RESEND, NOW + timedelta(minutes=20)),
        (9, 61, Step.RESEND, NOW + timedelta(hours=1)),
    ],
)
def test_a_request_is_sent_again_once_its_latest_copy_went_unanswered(
    sends: int, sent_minutes_ago: int, step: Step, next_check: datetime
) -> None:
    request = Request(sends=sends, sent_at=ago(minutes=sent_minutes_ago))
    assert decide_resend(TIMING, request, now=NOW) == (step, next_check, None)


def test_without_evidence_that_catalog_answers_the_deadline_never_runs() -> None:
    # Catalog (or its worker, or its database) has answered nothing placed after ours for
    # days: the order is asked for again, never given up on.
    for horizon in (None, ago(days=3, minutes=1)):
        decision = decide_pending(
            TIMING,
            Request(sends=7, sent_at=ago(days=3)),
            now=NOW,
            answering_since=None,
            answered_horizon=horizon,
        )
        assert decision.step is Step.RESEND
        assert decision.answering_since is None


def test_the_deadline_clock_starts_when_catalog_answers_a_later_order() -> None:
    decision = decide_pending(
        TIMING,
        Request(sends=1, sent_at=ago(minutes=2)),
        now=NOW,
        answering_since=None,
        answered_horizon=ago(minutes=1),
    )
    assert decision == (Step.WAIT, ago(minutes=2) + TIMING.resend_after, NOW)


def test_an_order_overtaken_for_the_whole_deadline_is_given_up() -> None:
    decision = decide_pending(
        TIMING,
        Request(sends=4, sent_at=ago(minutes=30)),
        now=NOW,
        answering_since=ago(hours=2),
        answered_horizon=ago(minutes=20),
    )
    assert decision.step is Step.GIVE_UP


def test_no_give_up_while_catalog_has_not_answered_past_the_latest_copy() -> None:
    # The clock ran out, but Catalog went silent after our latest copy (an outage began):
    # wait, and keep asking.
    decision = decide_pending(
        TIMING,
        Request(sends=4, sent_at=ago(minutes=50)),
        now=NOW,
        answering_since=ago(hours=3),
        answered_horizon=ago(minutes=51),
    )
    assert decision.step is Step.RESEND
    assert decision.answering_since == ago(hours=3)


def test_the_next_look_is_no_later_than_the_deadline() -> None:
    decision = decide_pending(
        TIMING,
        Request(sends=6, sent_at=ago(minutes=1)),
        now=NOW,
        answering_since=ago(minutes=110),
        answered_horizon=NOW,
    )
    assert decision == (Step.WAIT, NOW + timedelta(minutes=10), ago(minutes=110))


def settings(**overrides: Any) -> OrdersSettings:
    return OrdersSettings(jwt_secret=SecretStr(TEST_JWT_SECRET), **overrides)


def test_the_default_timings_agree_with_the_consumers_retry_ladder() -> None:
    defaults = settings()
    assert defaults.pending_deadline_seconds >= 2 * 1571 + defaults.saga_resend_after_seconds


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pending_deadline_seconds": 15 * 60}, "ORDERS_PENDING_DEADLINE_SECONDS (900) must be"),
        (
            {"saga_resend_after_seconds": 600, "saga_resend_max_seconds": 300},
            "ORDERS_SAGA_RESEND_AFTER_SECONDS (600) must not exceed",
        ),
        (
            {"saga_resend_max_seconds": 3 * 3600},
            "ORDERS_SAGA_RESEND_MAX_SECONDS (10800) must not exceed",
        ),
        (
            {"saga_sweep_interval_seconds": 600},
            "ORDERS_SAGA_SWEEP_INTERVAL_SECONDS (600) must not exceed",
        ),
    ],
)
def test_contradictory_timings_refuse_to_start(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        settings(**overrides)
