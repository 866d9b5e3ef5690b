"""Every card Seatdesk can show, built from realistic data: the gallery and the renderer check use these."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from cards.common import Card
from cards.subscriptions import overview_card, subscription_details_card, subscription_list_card
from cards.welcome import CustomerChoice, Person, choose_customer_card, help_card, welcome_card
from services import commerce
from services.models import BillingCycle, ChangeTiming, Role, SubscriptionStatus, Term
from services.subscriptions import (
    ChangeLogEntry,
    Overview,
    ScheduledChangeView,
    SubscriptionView,
    group_with_addons,
    paginate,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)


def _view(
    id: int,
    name: str,
    quantity: int,
    term: Term,
    billing: BillingCycle,
    price: str,
    term_start: date,
    *,
    auto_renew: bool = True,
    trial: bool = False,
    parent_id: int | None = None,
    assigned: int | None = None,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    scheduled: tuple[ScheduledChangeView, ...] = (),
    change_log: tuple[ChangeLogEntry, ...] = (),
) -> SubscriptionView:
    commitment_end = commerce.commitment_end_for(term_start, term)
    unit = Decimal(price)
    return SubscriptionView(
        id=id,
        provider_id=f"5c1b2f0e-7a10-4d1b-9a3e-{id:012d}",
        name=name,
        product_name=name,
        quantity=quantity,
        assigned_seats=assigned,
        term=term,
        billing=billing,
        status=status,
        is_trial=trial,
        auto_renew=auto_renew,
        start_date=term_start,
        commitment_end=commitment_end,
        renewal_date=commerce.renewal_date(commitment_end),
        window=commerce.cancellation_window(
            term_start=commerce.start_of_day(term_start), commitment_end=commitment_end, window_hours=168, auto_renew=auto_renew, now=NOW
        ),
        unit_price_monthly=unit,
        monthly_cost=commerce.monthly_cost(unit, quantity),
        currency="EUR",
        parent_id=parent_id,
        version=3,
        scheduled=scheduled,
        change_log=change_log,
    )


def sample_subscriptions() -> list[SubscriptionView]:
    today = NOW.date()
    return [
        _view(1, "Microsoft 365 Business Premium", 45, Term.P1Y, BillingCycle.MONTHLY, "22.00", date(2026, 3, 1), assigned=41),
        _view(2, "Microsoft 365 Copilot", 10, Term.P1Y, BillingCycle.ANNUAL, "28.10", date(2026, 6, 15), parent_id=1),
        _view(3, "Teams Phone Standard", 12, Term.P1M, BillingCycle.MONTHLY, "9.40", today - timedelta(days=2), parent_id=1),
        _view(4, "Visio Plan 2", 3, Term.P1Y, BillingCycle.ANNUAL, "13.70", date(2025, 12, 10), auto_renew=False),
        _view(5, "Power BI Pro", 8, Term.P1M, BillingCycle.MONTHLY, "13.40", today - timedelta(days=10), trial=True),
        _view(6, "Exchange Online (Plan 1)", 20, Term.P1Y, BillingCycle.MONTHLY, "4.10", date(2026, 1, 5)),
    ]


def _details_view() -> SubscriptionView:
    base = sample_subscriptions()[0]
    return _view(
        1,
        "Microsoft 365 Business Premium",
        45,
        Term.P1Y,
        BillingCycle.MONTHLY,
        "22.00",
        date(2026, 3, 1),
        assigned=41,
        scheduled=(ScheduledChangeView(id=7, timing=ChangeTiming.AT_RENEWAL, effective_date=base.renewal_date, new_quantity=40, reference="SC-1042"),),
        change_log=(
            ChangeLogEntry(at=NOW - timedelta(days=20), actor="Katrin Vogel", action="quantity", summary="Seats 40 → 45, from the details card", source="card"),
            ChangeLogEntry(at=NOW - timedelta(days=90), actor="Seatdesk", action="renewal", summary="Renewed for 1 year", source="worker"),
        ),
    )


def all_examples() -> dict[str, Card]:
    admin = Person(name="Katrin Vogel", company="Fabrikam GmbH", role=Role.ADMIN)
    viewer = Person(name="Jonas Weber", company="Fabrikam GmbH", role=Role.VIEW)
    technician = Person(name="Priya Raman", company="Contoso IT Services", role=Role.ADMIN, is_partner_staff=True, acting_for="Northwind Traders")
    views = sample_subscriptions()
    groups = group_with_addons(views)
    overview = Overview(
        active_subscriptions=6,
        active_licenses=98,
        ending_soon=1,
        ending_soon_not_renewing=1,
        active_trials=1,
        pending_changes=1,
        monthly_cost=Decimal("1668.60"),
        currency="EUR",
        ending_soon_names=("Visio Plan 2",),
    )
    return {
        "welcome-admin": welcome_card(admin),
        "welcome-view": welcome_card(viewer),
        "welcome-partner-staff": welcome_card(technician),
        "help": help_card(admin),
        "help-not-understood": help_card(viewer, not_understood=True),
        "choose-customer": choose_customer_card(
            "Contoso IT Services", [CustomerChoice("fabrikam", "Fabrikam GmbH"), CustomerChoice("northwind", "Northwind Traders")]
        ),
        "overview": overview_card("Fabrikam GmbH", overview, as_of=NOW, show_cost=True),
        "overview-no-prices": overview_card("Fabrikam GmbH", overview, as_of=NOW, show_cost=False),
        "overview-empty": overview_card(
            "Tailspin Toys", Overview(0, 0, 0, 0, 0, 0, Decimal("0.00"), "EUR"), as_of=NOW, show_cost=True
        ),
        "subscription-list": subscription_list_card("Fabrikam GmbH", paginate(groups, 1, 4)),
        "subscription-list-last-page": subscription_list_card("Fabrikam GmbH", paginate(groups, 2, 4)),
        "subscription-details": subscription_details_card(_details_view(), show_prices=True),
        "subscription-details-no-prices": subscription_details_card(views[3], show_prices=False),
        "subscription-details-trial": subscription_details_card(views[4], show_prices=True),
    }
