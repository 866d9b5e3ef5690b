"""The new-commerce rules: terms, renewal, the cancellation window to the second."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from services import commerce
from services.models import Term

UTC = timezone.utc


def test_commitment_end_is_the_day_before_the_same_date_next_term():
    assert commerce.commitment_end_for(date(2026, 3, 1), Term.P1Y) == date(2027, 2, 28)
    assert commerce.commitment_end_for(date(2026, 11, 22), Term.P1M) == date(2026, 12, 21)
    assert commerce.commitment_end_for(date(2026, 1, 31), Term.P1M) == date(2026, 2, 27)
    assert commerce.commitment_end_for(date(2026, 5, 10), Term.P3Y) == date(2029, 5, 9)


def test_leap_years():
    assert commerce.commitment_end_for(date(2024, 2, 29), Term.P1Y) == date(2025, 2, 27)
    assert commerce.commitment_end_for(date(2023, 3, 1), Term.P1Y) == date(2024, 2, 29)
    assert commerce.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert commerce.add_months(date(2100, 1, 31), 1) == date(2100, 2, 28)  # not a leap year
    assert commerce.add_months(date(2000, 1, 31), 1) == date(2000, 2, 29)


def test_renewal_is_the_day_after_the_inclusive_commitment_end():
    assert commerce.renewal_date(date(2026, 12, 31)) == date(2027, 1, 1)


def _window(term_start: datetime, now: datetime, **kw):
    return commerce.cancellation_window(
        term_start=term_start, commitment_end=kw.pop("commitment_end", date(2027, 11, 21)), window_hours=kw.pop("hours", 168), auto_renew=kw.pop("auto_renew", True), now=now, **kw
    )


def test_window_boundaries_to_the_second():
    start = datetime(2026, 11, 22, 10, 30, 0, tzinfo=UTC)
    closes = start + timedelta(hours=168)
    assert _window(start, start).is_open
    assert _window(start, closes - timedelta(seconds=1)).is_open
    assert not _window(start, closes).is_open
    assert not _window(start, start - timedelta(seconds=1)).is_open
    assert _window(start, start).closes_at == closes


def test_window_length_is_per_offer():
    start = datetime(2026, 11, 22, tzinfo=UTC)
    assert _window(start, start + timedelta(hours=71), hours=72).is_open
    assert not _window(start, start + timedelta(hours=72), hours=72).is_open


def test_provider_date_wins_over_the_computed_window():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    allowed = datetime(2026, 11, 25, 12, tzinfo=UTC)
    window = _window(start, datetime(2026, 11, 24, tzinfo=UTC), allowed_until=allowed)
    assert window.is_open and window.closes_at == allowed


def test_next_window_opens_at_renewal_only_when_auto_renew_is_on():
    start = datetime(2026, 1, 5, tzinfo=UTC)
    on = _window(start, datetime(2026, 11, 22, tzinfo=UTC), commitment_end=date(2027, 1, 4))
    assert on.next_opens_at == datetime(2027, 1, 5, tzinfo=UTC)
    off = _window(start, datetime(2026, 11, 22, tzinfo=UTC), commitment_end=date(2027, 1, 4), auto_renew=False)
    assert off.next_opens_at is None


def test_time_zones_compare_as_instants():
    start = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
    berlin = timezone(timedelta(hours=1))
    # 7 days later, 00:59 in Berlin is 23:59 UTC the day before: still open.
    assert _window(start, datetime(2026, 11, 29, 0, 59, tzinfo=berlin)).is_open
    assert not _window(start, datetime(2026, 11, 29, 1, 0, tzinfo=berlin)).is_open


@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
    offset=st.integers(min_value=-10**7, max_value=10**7),
    hours=st.sampled_from([72, 168, 720]),
)
def test_window_is_open_exactly_within_its_hours(start, offset, hours):
    now = start + timedelta(seconds=offset)
    window = _window(start, now, hours=hours)
    assert window.is_open == (0 <= offset < hours * 3600)


@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)), term=st.sampled_from(list(Term)))
def test_terms_chain_without_gaps(day, term):
    end = commerce.commitment_end_for(day, term)
    assert end >= day
    assert commerce.renewal_date(end) > end
    months = commerce.TERM_MONTHS[term]
    assert 28 * months - 3 <= (end - day).days + 1 <= 31 * months + 1


def test_money_is_exact():
    from decimal import Decimal

    assert commerce.monthly_cost(Decimal("22.10"), 3) == Decimal("66.30")
    assert commerce.term_price(Decimal("13.70"), Term.P1Y) == Decimal("164.40")
    assert commerce.ends_within(date(2026, 12, 22), date(2026, 11, 22), 30)
    assert not commerce.ends_within(date(2026, 12, 23), date(2026, 11, 22), 30)
