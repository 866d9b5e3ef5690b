"""Microsoft new-commerce rules as pure functions (see docs/new-commerce.md).

- the term ends at the end of `commitment_end` (inclusive); renewal happens the day after;
- seats may be decreased and a subscription cancelled only inside the cancellation window:
  `window_hours` (per offer, 168 by default) after the purchase or renewal, or until the
  provider's `cancellationAllowedUntilDate` when it gave one; the next window opens at renewal.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from services.models import Term

TERM_MONTHS = {Term.P1M: 1, Term.P1Y: 12, Term.P3Y: 36}
CENT = Decimal("0.01")


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    days_in_month = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return date(year, month, min(day.day, days_in_month))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def commitment_end_for(term_start: date, term: Term) -> date:
    """The last day of a term that starts on `term_start` (inclusive end)."""
    return add_months(term_start, TERM_MONTHS[term]) - timedelta(days=1)


def renewal_date(commitment_end: date) -> date:
    return commitment_end + timedelta(days=1)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=timezone.utc)


@dataclass(frozen=True)
class CancellationWindow:
    is_open: bool
    closes_at: datetime
    # When the next window opens (at renewal); None when the subscription will not renew.
    next_opens_at: datetime | None


def cancellation_window(
    *,
    term_start: datetime,
    commitment_end: date,
    window_hours: int,
    auto_renew: bool,
    now: datetime,
    allowed_until: datetime | None = None,
) -> CancellationWindow:
    closes_at = allowed_until if allowed_until is not None else term_start + timedelta(hours=window_hours)
    is_open = term_start <= now < closes_at
    next_opens = start_of_day(renewal_date(commitment_end)) if auto_renew else None
    return CancellationWindow(is_open=is_open, closes_at=closes_at, next_opens_at=next_opens)


def monthly_cost(unit_price_monthly: Decimal, quantity: int) -> Decimal:
    return (unit_price_monthly * quantity).quantize(CENT, rounding=ROUND_HALF_UP)


def term_price(unit_price_monthly: Decimal, term: Term) -> Decimal:
    """The price of one seat for a whole term."""
    return (unit_price_monthly * TERM_MONTHS[term]).quantize(CENT, rounding=ROUND_HALF_UP)


def ends_within(commitment_end: date, today: date, days: int) -> bool:
    return today <= commitment_end <= today + timedelta(days=days)
