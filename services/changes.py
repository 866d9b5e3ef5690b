"""What a subscription change may do, decided by pure functions (see docs/new-commerce.md).

A dialog asks these before it shows a confirmation, and the server asks them again when the
confirmation is clicked; a card never decides.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from services import commerce
from services.models import SubscriptionStatus

ABSURD_QUANTITY = 100_000


class Timing(str, enum.Enum):
    NOW = "now"
    AT_RENEWAL = "at_renewal"
    ON_DATE = "on_date"


class Refusal(str, enum.Enum):
    NOT_A_NUMBER = "not_a_number"
    NOT_WHOLE = "not_whole"
    NOT_POSITIVE = "not_positive"
    ABSURD = "absurd"
    BELOW_MIN = "below_min"
    ABOVE_MAX = "above_max"
    UNCHANGED = "unchanged"
    BELOW_ASSIGNED = "below_assigned"
    WINDOW_CLOSED = "window_closed"
    BELOW_REFUNDABLE = "below_refundable"
    NEEDS_AUTO_RENEW = "needs_auto_renew"
    NOT_ACTIVE = "not_active"
    DATE_MISSING = "date_missing"
    DATE_NOT_FUTURE = "date_not_future"
    DATE_AFTER_TERM = "date_after_term"
    DECREASE_ON_DATE = "decrease_on_date"
    TRIAL = "trial"
    ALREADY = "already"


@dataclass(frozen=True)
class Planned:
    """A scheduled quantity and the day it takes effect."""

    quantity: int | None
    effective: date


@dataclass(frozen=True)
class SubscriptionState:
    """The facts about one subscription that the rules need, at one moment."""

    quantity: int
    status: SubscriptionStatus
    is_trial: bool
    auto_renew: bool
    term_start: datetime
    commitment_end: date
    window_hours: int
    min_quantity: int
    max_quantity: int
    unit_price_monthly: Decimal
    assigned_seats: int | None = None
    allowed_until: datetime | None = None
    seat_add_window_until: datetime | None = None
    quantity_before_add: int | None = None
    scheduled: tuple["Planned", ...] = ()  # what is scheduled for renewal, to name in warnings

    def window(self, now: datetime) -> commerce.CancellationWindow:
        return commerce.cancellation_window(
            term_start=self.term_start,
            commitment_end=self.commitment_end,
            window_hours=self.window_hours,
            auto_renew=self.auto_renew,
            now=now,
            allowed_until=self.allowed_until,
        )

    @property
    def renewal_date(self) -> date:
        return commerce.renewal_date(self.commitment_end)


@dataclass(frozen=True)
class Decision:
    """Either `refusal` is set (with what the sentence needs in `facts`), or the change is allowed."""

    refusal: Refusal | None = None
    facts: dict = field(default_factory=dict)
    effective: date | None = None
    cost_delta: Decimal = Decimal("0.00")
    deletes_scheduled: tuple["Planned", ...] = ()
    # Offered instead when refused for the window: the same quantity at renewal, if that is possible.
    alternative: Timing | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def parse_quantity(raw: object) -> tuple[int | None, Refusal | None]:
    """A seat count typed into a card or a message: whole, positive, sane."""
    if isinstance(raw, bool) or raw is None:
        return None, Refusal.NOT_A_NUMBER
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip().replace("\u202f", "").replace(" ", "")
        if not text:
            return None, Refusal.NOT_A_NUMBER
        try:
            number = Decimal(text.replace(",", "."))
        except ArithmeticError:
            return None, Refusal.NOT_A_NUMBER
        if not number.is_finite():
            return None, Refusal.NOT_A_NUMBER
        if number != number.to_integral_value():
            return None, Refusal.NOT_WHOLE
        if abs(number) >= ABSURD_QUANTITY:
            return None, Refusal.ABSURD
        value = int(number)
    if value <= 0:
        return None, Refusal.NOT_POSITIVE
    if value >= ABSURD_QUANTITY:
        return None, Refusal.ABSURD
    return value, None


def _window_facts(state: SubscriptionState, now: datetime) -> dict:
    window = state.window(now)
    return {"closed_at": window.closes_at, "next_opens": window.next_opens_at}


def decide_seat_change(
    state: SubscriptionState, new_quantity: int, timing: Timing, now: datetime, on: date | None = None
) -> Decision:
    if state.status != SubscriptionStatus.ACTIVE:
        return Decision(Refusal.NOT_ACTIVE, {"status": state.status})
    if new_quantity == state.quantity:
        return Decision(Refusal.UNCHANGED, {"quantity": new_quantity})
    if timing == Timing.AT_RENEWAL and not state.auto_renew:
        return Decision(Refusal.NEEDS_AUTO_RENEW, {"ends": state.commitment_end})
    if new_quantity < state.min_quantity:
        return Decision(Refusal.BELOW_MIN, {"min": state.min_quantity})
    if new_quantity > state.max_quantity:
        return Decision(Refusal.ABOVE_MAX, {"max": state.max_quantity})
    decrease = new_quantity < state.quantity
    if decrease and state.assigned_seats is not None and new_quantity < state.assigned_seats:
        return Decision(Refusal.BELOW_ASSIGNED, {"assigned": state.assigned_seats})
    monthly_delta = commerce.monthly_cost(state.unit_price_monthly, new_quantity) - commerce.monthly_cost(state.unit_price_monthly, state.quantity)
    today = now.date()

    if timing == Timing.AT_RENEWAL:
        return Decision(effective=state.renewal_date, cost_delta=monthly_delta)

    if timing == Timing.ON_DATE:
        if on is None:
            return Decision(Refusal.DATE_MISSING)
        if on <= today:
            return Decision(Refusal.DATE_NOT_FUTURE, {"date": on})
        if on > state.commitment_end:
            return Decision(Refusal.DATE_AFTER_TERM, {"ends": state.commitment_end, "renewal": state.renewal_date, "auto_renew": state.auto_renew})
        if decrease:
            return Decision(Refusal.DECREASE_ON_DATE, _window_facts(state, now), alternative=Timing.AT_RENEWAL if state.auto_renew else None)
        return Decision(effective=on, cost_delta=monthly_delta)

    # Now: increases any time; decreases only inside a window.
    if decrease:
        if state.is_trial:
            return Decision(Refusal.TRIAL)
        window = state.window(now)
        if not window.is_open:
            add_open = state.seat_add_window_until is not None and now < state.seat_add_window_until
            if add_open and state.quantity_before_add is not None:
                if new_quantity < state.quantity_before_add:
                    return Decision(
                        Refusal.BELOW_REFUNDABLE,
                        {"floor": state.quantity_before_add, "until": state.seat_add_window_until},
                        alternative=Timing.AT_RENEWAL if state.auto_renew else None,
                    )
            else:
                return Decision(Refusal.WINDOW_CLOSED, _window_facts(state, now), alternative=Timing.AT_RENEWAL if state.auto_renew else None)
    return Decision(effective=today, cost_delta=monthly_delta, deletes_scheduled=state.scheduled)


def decide_auto_renew(state: SubscriptionState, enable: bool) -> Decision:
    if state.status != SubscriptionStatus.ACTIVE:
        return Decision(Refusal.NOT_ACTIVE, {"status": state.status})
    if state.auto_renew == enable:
        return Decision(Refusal.ALREADY, {"enabled": enable})
    # Switching it off ends the subscription at term end and cancels what was scheduled for renewal.
    return Decision(effective=state.renewal_date if enable else state.commitment_end, deletes_scheduled=() if enable else state.scheduled)


def decide_cancel(state: SubscriptionState, now: datetime) -> Decision:
    if state.status != SubscriptionStatus.ACTIVE:
        return Decision(Refusal.NOT_ACTIVE, {"status": state.status})
    window = state.window(now)
    if not window.is_open:
        return Decision(
            Refusal.WINDOW_CLOSED,
            {**_window_facts(state, now), "ends": state.commitment_end, "auto_renew": state.auto_renew},
        )
    refund_days = (state.commitment_end - now.date()).days + 1
    return Decision(effective=now.date(), cost_delta=-commerce.monthly_cost(state.unit_price_monthly, state.quantity), deletes_scheduled=state.scheduled, facts={"refund_days": refund_days})


def seat_add_window(now: datetime, window_hours: int) -> datetime:
    """A mid-term seat add may be reduced again within the offer's window, for the added seats."""
    return now + timedelta(hours=window_hours)


CANCEL_REASONS = ("no_longer_needed", "too_expensive", "switching_product", "bought_by_mistake", "company_change", "other")
