"""The reservation aggregate moves only along NEW -> RESERVED | REJECTED | CANCELLED and
RESERVED -> RELEASED; any other move is a bug and raises instead of writing."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from shop_catalog.reservations.models import Reservation, ReservationStatus
from shop_common.events import RejectedLineV1, StockLineV1

LINES = (StockLineV1(product_id=uuid.uuid4(), quantity=2),)
VERDICTS = (RejectedLineV1(product_id=uuid.uuid4(), quantity=2, reason="insufficient_stock"),)


def reservation(status: ReservationStatus) -> Reservation:
    return Reservation(order_id=uuid.uuid4(), status=status, lines=LINES)


MOVES: dict[str, Callable[[Reservation], object]] = {
    "reserve": lambda r: r.reserve(LINES),
    "reject": lambda r: r.reject(VERDICTS),
    "forbid": Reservation.forbid,
    "release": Reservation.release,
}
ALLOWED = {
    ("reserve", ReservationStatus.NEW): ReservationStatus.RESERVED,
    ("reject", ReservationStatus.NEW): ReservationStatus.REJECTED,
    ("forbid", ReservationStatus.NEW): ReservationStatus.CANCELLED,
    ("release", ReservationStatus.RESERVED): ReservationStatus.RELEASED,
}


@pytest.mark.parametrize("status", list(ReservationStatus))
@pytest.mark.parametrize("move", sorted(MOVES))
def test_each_move_leaves_only_its_own_status(move: str, status: ReservationStatus) -> None:
    subject = reservation(status)
    target = ALLOWED.get((move, status))
    if target is None:
        with pytest.raises(ValueError, match="only a"):
            MOVES[move](subject)
        assert subject.status is status
    else:
        MOVES[move](subject)
        assert subject.status is target


def test_release_gives_back_the_reserved_lines() -> None:
    subject = reservation(ReservationStatus.NEW)
    subject.reserve(LINES)
    assert subject.release() == LINES


def test_a_rejection_keeps_its_verdicts_to_answer_again() -> None:
    subject = reservation(ReservationStatus.NEW)
    subject.reject(VERDICTS)
    assert subject.rejected_lines == VERDICTS
