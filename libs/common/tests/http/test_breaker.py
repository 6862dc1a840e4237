"""The asyncio circuit breaker's state machine, driven directly with a fake clock."""

from __future__ import annotations

import pytest

from shop_common.http import AsyncCircuitBreaker, BreakerState, CircuitOpen, HttpClientMetrics


@pytest.fixture
def breaker(clock, metrics: HttpClientMetrics) -> AsyncCircuitBreaker:
    return AsyncCircuitBreaker(
        "catalog",
        fail_max=3,
        reset_timeout=10.0,
        listeners=[metrics.track("catalog")],
        clock=clock,
    )


def fail(breaker: AsyncCircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with breaker.admit() as permit:
            permit.record_failure()


def succeed(breaker: AsyncCircuitBreaker) -> None:
    with breaker.admit() as permit:
        permit.record_success()


def test_opens_after_fail_max_consecutive_failures(breaker) -> None:
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.fail_counter == 2

    fail(breaker)

    assert breaker.state is BreakerState.OPEN


def test_a_success_resets_the_consecutive_count(breaker) -> None:
    fail(breaker, 2)
    succeed(breaker)
    fail(breaker, 2)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.fail_counter == 2


def test_open_refuses_until_the_reset_timeout(breaker, clock) -> None:
    fail(breaker, 3)
    clock.advance(9.5)

    with pytest.raises(CircuitOpen) as caught:
        breaker.admit()

    assert caught.value.retry_after == pytest.approx(0.5)
    assert breaker.state is BreakerState.OPEN


def test_half_opens_after_the_reset_timeout_and_closes_on_a_good_trial(breaker, clock) -> None:
    fail(breaker, 3)
    clock.advance(10.0)

    permit = breaker.admit()
    assert permit.trial
    assert breaker.state is BreakerState.HALF_OPEN
    permit.record_success()

    assert breaker.state is BreakerState.CLOSED
    assert breaker.fail_counter == 0


def test_a_failed_trial_reopens_for_a_full_reset_timeout(breaker, clock) -> None:
    fail(breaker, 3)
    clock.advance(10.0)

    fail(breaker)

    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen) as caught:
        breaker.admit()
    assert caught.value.retry_after == pytest.approx(10.0)


def test_half_open_admits_a_single_trial(breaker, clock) -> None:
    fail(breaker, 3)
    clock.advance(10.0)

    trial = breaker.admit()
    for _ in range(5):
        with pytest.raises(CircuitOpen) as caught:
            breaker.admit()
        assert caught.value.retry_after is None

    trial.record_success()
    assert not breaker.admit().trial


def test_a_trial_given_back_without_outcome_lets_the_next_caller_try(breaker, clock) -> None:
    fail(breaker, 3)
    clock.advance(10.0)

    with breaker.admit():
        pass  # cancelled: no outcome recorded

    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.admit().trial


def test_late_failures_from_before_the_trip_do_not_extend_the_open_period(breaker, clock) -> None:
    slow = breaker.admit()  # admitted while closed, still in flight
    fail(breaker, 3)
    clock.advance(6.0)

    slow.record_failure()

    with pytest.raises(CircuitOpen) as caught:
        breaker.admit()
    assert caught.value.retry_after == pytest.approx(4.0)


def test_a_late_success_is_not_mistaken_for_the_trial(breaker, clock) -> None:
    slow = breaker.admit()
    fail(breaker, 3)
    clock.advance(10.0)
    trial = breaker.admit()

    slow.record_success()

    assert breaker.state is BreakerState.HALF_OPEN
    trial.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_late_outcomes_do_not_count_against_a_new_closed_period(breaker, clock) -> None:
    slow = breaker.admit()
    fail(breaker, 3)
    clock.advance(10.0)
    succeed(breaker)  # the trial closes the circuit again

    slow.record_failure()

    assert breaker.state is BreakerState.CLOSED
    assert breaker.fail_counter == 0


def test_an_outcome_is_recorded_once(breaker) -> None:
    permit = breaker.admit()
    permit.record_failure()
    permit.record_failure()
    permit.record_success()

    assert breaker.fail_counter == 1


def test_state_is_exported_as_metrics(breaker, clock, read_metric) -> None:
    state = "shop_http_client_circuit_state"
    transitions = "shop_http_client_circuit_transitions_total"
    assert read_metric(state) == 0

    fail(breaker, 3)
    assert read_metric(state) == 2
    clock.advance(10.0)
    trial = breaker.admit()
    assert read_metric(state) == 1
    trial.record_failure()
    assert read_metric(state) == 2
    clock.advance(10.0)
    succeed(breaker)
    assert read_metric(state) == 0

    assert read_metric(transitions, from_state="closed", to_state="open") == 1
    assert read_metric(transitions, from_state="open", to_state="half-open") == 2
    assert read_metric(transitions, from_state="half-open", to_state="open") == 1
    assert read_metric(transitions, from_state="half-open", to_state="closed") == 1
