"""The seat, auto-renew and cancel rules over many dates and edge cases."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.changes import (
    Planned,
    Refusal,
    SubscriptionState,
    Timing,
    decide_auto_renew,
    decide_cancel,
    decide_seat_change,
    parse_quantity,
)
from services.models import SubscriptionStatus

UTC = timezone.utc
START = datetime(2026, 3, 1, tzinfo=UTC)
STATE = SubscriptionState(
    quantity=20,
    status=SubscriptionStatus.ACTIVE,
    is_trial=False,
    auto_renew=True,
    term_start=START,
    commitment_end=date(2027, 2, 28),
    window_hours=168,
    min_quantity=1,
    max_quantity=300,
    unit_price_monthly=Decimal("12.50"),
    assigned_seats=15,
    scheduled=(Planned(18, date(2027, 3, 1)),),
)


def test_decrease_to_the_second_of_the_window():
    closes = START + timedelta(hours=168)
    assert decide_seat_change(STATE, 16, Timing.NOW, closes - timedelta(seconds=1)).allowed
    refused = decide_seat_change(STATE, 16, Timing.NOW, closes)
    assert refused.refusal == Refusal.WINDOW_CLOSED and refused.alternative == Timing.AT_RENEWAL
    assert refused.facts["next_opens"] == datetime(2027, 3, 1, tzinfo=UTC)


def test_no_alternative_when_the_subscription_will_not_renew():
    refused = decide_seat_change(replace(STATE, auto_renew=False), 16, Timing.NOW, START + timedelta(days=30))
    assert refused.refusal == Refusal.WINDOW_CLOSED and refused.alternative is None and refused.facts["next_opens"] is None


def test_increase_now_warns_about_changes_scheduled_for_renewal_and_prices_the_difference():
    decision = decide_seat_change(STATE, 25, Timing.NOW, START + timedelta(days=100))
    assert decision.allowed and decision.deletes_scheduled == STATE.scheduled
    assert decision.cost_delta == Decimal("62.50")


def test_renewal_day_and_inclusive_term_end():
    on_last_day = datetime(2027, 2, 28, 23, 59, tzinfo=UTC)
    assert decide_seat_change(STATE, 25, Timing.ON_DATE, on_last_day - timedelta(days=1), on=date(2027, 2, 28)).allowed
    after = decide_seat_change(STATE, 25, Timing.ON_DATE, on_last_day - timedelta(days=1), on=date(2027, 3, 1))
    assert after.refusal == Refusal.DATE_AFTER_TERM
    assert decide_seat_change(STATE, 16, Timing.AT_RENEWAL, on_last_day).effective == date(2027, 3, 1)


@pytest.mark.parametrize(
    "quantity,timing,on,refusal",
    [
        (20, Timing.NOW, None, Refusal.UNCHANGED),
        (301, Timing.NOW, None, Refusal.ABOVE_MAX),
        (14, Timing.AT_RENEWAL, None, Refusal.BELOW_ASSIGNED),
        (25, Timing.ON_DATE, None, Refusal.DATE_MISSING),
        (25, Timing.ON_DATE, date(2026, 6, 1), Refusal.DATE_NOT_FUTURE),
        (16, Timing.ON_DATE, date(2026, 7, 1), Refusal.DECREASE_ON_DATE),
    ],
)
def test_refusals(quantity, timing, on, refusal):
    assert decide_seat_change(STATE, quantity, timing, datetime(2026, 6, 1, 12, tzinfo=UTC), on).refusal == refusal


def test_renewal_changes_need_auto_renew_and_inactive_subscriptions_change_nothing():
    assert decide_seat_change(replace(STATE, auto_renew=False), 16, Timing.AT_RENEWAL, START).refusal == Refusal.NEEDS_AUTO_RENEW
    assert decide_seat_change(replace(STATE, status=SubscriptionStatus.SUSPENDED), 25, Timing.NOW, START).refusal == Refusal.NOT_ACTIVE


def test_a_mid_term_add_can_be_taken_back_but_not_below_the_earlier_count():
    later = START + timedelta(days=60)
    state = replace(STATE, quantity=30, quantity_before_add=20, seat_add_window_until=later + timedelta(days=7))
    assert decide_seat_change(state, 22, Timing.NOW, later).allowed
    below = decide_seat_change(state, 19, Timing.NOW, later)
    assert below.refusal == Refusal.BELOW_REFUNDABLE and below.facts["floor"] == 20
    assert decide_seat_change(state, 22, Timing.NOW, later + timedelta(days=7)).refusal == Refusal.WINDOW_CLOSED


def test_trials_cannot_be_reduced():
    assert decide_seat_change(replace(STATE, is_trial=True), 16, Timing.NOW, START).refusal == Refusal.TRIAL


def test_auto_renew_and_cancel():
    off = decide_auto_renew(STATE, False)
    assert off.allowed and off.deletes_scheduled == STATE.scheduled and off.effective == date(2027, 2, 28)
    assert decide_auto_renew(STATE, True).refusal == Refusal.ALREADY
    assert decide_cancel(STATE, START + timedelta(hours=167)).allowed
    closed = decide_cancel(STATE, START + timedelta(hours=168))
    assert closed.refusal == Refusal.WINDOW_CLOSED and closed.facts["ends"] == date(2027, 2, 28)


@given(
    quantity=st.integers(min_value=1, max_value=300),
    seconds=st.integers(min_value=0, max_value=400 * 86400),
)
def test_increases_are_always_allowed_and_decreases_only_in_the_window(quantity, seconds):
    now = START + timedelta(seconds=seconds)
    state = replace(STATE, assigned_seats=None)
    decision = decide_seat_change(state, quantity, Timing.NOW, now)
    if quantity > state.quantity:
        assert decision.allowed
    elif quantity < state.quantity:
        assert decision.allowed == (seconds < 168 * 3600)
    else:
        assert decision.refusal == Refusal.UNCHANGED


@pytest.mark.parametrize(
    "raw,expected",
    [(5, (5, None)), ("12", (12, None)), (" 7 ", (7, None)), ("1 000", (1000, None)), ("3,0", (3, None)), (True, (None, Refusal.NOT_A_NUMBER)),
     ("1.5", (None, Refusal.NOT_WHOLE)), ("-1", (None, Refusal.NOT_POSITIVE)), ("Infinity", (None, Refusal.NOT_A_NUMBER)), ("1e9", (None, Refusal.ABSURD)), (None, (None, Refusal.NOT_A_NUMBER))],
)
def test_parse_quantity(raw, expected):
    assert parse_quantity(raw) == expected
