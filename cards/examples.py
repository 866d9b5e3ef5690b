"""Every card Seatdesk can show, built from realistic data: the gallery and the renderer check use these."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from cards.common import Card
from cards.examples_cases import examples as case_examples
from cards.examples_knowledge import examples as knowledge_examples
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


def change_examples() -> dict[str, Card]:
    from cards import changes as c
    from services.changes import Decision, Planned, Refusal, Timing
    from services.subscription_changes import Receipt

    views = sample_subscriptions()
    premium, copilot, visio = _details_view(), views[1], views[3]
    money = c.Money(Decimal("22.00"), "EUR")
    increase = Decision(effective=NOW.date(), cost_delta=Decimal("110.00"), deletes_scheduled=(Planned(40, date(2027, 3, 1)),))
    window_closed = Decision(Refusal.WINDOW_CLOSED, {"closed_at": premium.window.closes_at, "next_opens": premium.window.next_opens_at}, alternative=Timing.AT_RENEWAL)
    receipt = Receipt(
        reference="CHG-7KQ2M9XD", kind="seats", subscription_id=1, subscription_name=premium.name, actor="Stefan Hoffmann", at=NOW,
        summary="Seats 45 → 50, effective now", old_quantity=45, new_quantity=50, effective=NOW.date(), deleted_scheduled=(Planned(40, date(2027, 3, 1)),),
    )
    scheduled = [
        c.ScheduledLine(7, 1, 3, premium.name, 40, date(2027, 3, 1), "at_renewal", "SC-FAB-0001", "Stefan Hoffmann"),
        c.ScheduledLine(9, 6, 2, "Exchange Online (Plan 1)", 25, date(2026, 12, 6), "on_date", "SC-NW-0001", "Daniel Brooks"),
    ]
    log = [
        c.LogEntry(NOW - timedelta(hours=2), "Stefan Hoffmann", "Seats 45 → 50, effective now", "card", premium.name, "CHG-7KQ2M9XD"),
        c.LogEntry(NOW - timedelta(days=3), "Seatdesk", "Renewed until 2027-11-30", "worker", "Visio Plan 2", None),
    ]
    return {
        "seats-form": c.seat_form_card(premium, locale=None, min_quantity=1, max_quantity=300),
        "seats-form-error": c.seat_form_card(premium, locale=None, min_quantity=1, max_quantity=300, error=c.refusal_text(Decision(Refusal.NOT_A_NUMBER), premium.name, None, raw="fifty")),
        "seats-confirm": c.seat_confirm_card(premium, new_quantity=50, timing=Timing.NOW, decision=increase, money=money, op="example-op-1", locale=None),
        "seats-confirm-no-prices": c.seat_confirm_card(
            copilot, new_quantity=8, timing=Timing.AT_RENEWAL, decision=Decision(effective=copilot.renewal_date), money=c.Money(None, "EUR"), op="example-op-2", locale=None
        ),
        "seats-window-closed": c.refusal_card(
            "Change seats: " + premium.name,
            c.refusal_text(window_closed, premium.name, None),
            actions=[c.execute("Schedule 40 seats at renewal instead", "seats.review", {"id": 1, "quantity": 40, "timing": "at_renewal"})],
        ),
        "auto-renew-off-confirm": c.auto_renew_confirm_card(premium, enable=False, decision=Decision(deletes_scheduled=(Planned(40, date(2027, 3, 1)),)), op="example-op-3", locale=None),
        "cancel-form": c.cancel_form_card(views[2], decision=Decision(facts={"refund_days": 27}), op="example-op-4", locale=None),
        "cancel-window-closed": c.refusal_card(
            "Visio Plan 2 can't be cancelled now",
            "Microsoft allows cancelling a new-commerce subscription only within 7 days of its purchase or renewal. The window for Visio Plan 2 closed on 17 Dec 2025 00:00 UTC. Auto-renew is already off: it ends on 9 Dec 2026.",
        ),
        "change-receipt": c.receipt_card(receipt, locale=None),
        "stale-card": c.stale_card(premium.name, {"quantity": 50, "auto_renew": True, "status": "active"}, subscription_id=1, locale=None),
        "withdraw-confirm": c.withdraw_confirm_card(premium.name, "40 seats from 1 Mar 2027", subscription_id=1, version=3, change_id=7, op="example-op-5", locale=None),
        "scheduled-changes": c.scheduled_list_card("Fabrikam GmbH", scheduled, can_withdraw=True, locale=None),
        "change-log": c.change_log_card("Fabrikam GmbH", log, page=1, has_more=True, locale=None),
        "choose-subscription": c.choose_subscription_card([views[0], views[5]], verb="seats.review", extra={"quantity": 20}, locale=None),
        "dismissed": c.dismissed_card(None),
        "subscription-details-admin": subscription_details_card(
            premium, show_prices=True, change_actions=c.detail_actions(premium, can_change_seats=True, can_auto_renew=True, can_cancel=True, locale=None)
        ),
        "visio-details-modify": subscription_details_card(
            visio, show_prices=False, change_actions=c.detail_actions(visio, can_change_seats=True, can_auto_renew=False, can_cancel=False, locale=None)
        ),
    }


def order_examples() -> dict[str, Card]:
    from cards import orders as o
    from services.models import OrderStatus
    from services.ordering import Cart, CartLine, OfferView, OrderLineView, OrderView, ProductView

    monthly = OfferView(11, Term.P1M, BillingCycle.MONTHLY, Decimal("15.10"), "EUR", 1, 300)
    annual_monthly = OfferView(12, Term.P1Y, BillingCycle.MONTHLY, Decimal("13.70"), "EUR", 1, 300)
    annual = OfferView(13, Term.P1Y, BillingCycle.ANNUAL, Decimal("13.04"), "EUR", 1, 300)
    visio = ProductView(5, "visio-p2", "Visio Plan 2", ("Visio",), "Visio", "Diagrams and flowcharts on the web and desktop.", None, None, (monthly, annual_monthly, annual))
    pbi = ProductView(6, "pbi-pro", "Power BI Pro", ("PBI",), "Analytics", "Self-service analytics and sharing.", None, None, (OfferView(21, Term.P1M, BillingCycle.MONTHLY, Decimal("13.40"), "EUR", 1, 300),))
    copilot = ProductView(7, "m365-copilot", "Microsoft 365 Copilot", ("Copilot",), "Copilot", "", 1, "Microsoft 365 E3", (OfferView(31, Term.P1Y, BillingCycle.ANNUAL, Decimal("28.10"), "EUR", 1, 300),))
    cart = Cart((CartLine(1, 5, "Visio Plan 2", annual_monthly, 3, False), CartLine(2, 6, "Power BI Pro", pbi.offers[0], 5, False)))
    order = OrderView(
        41, "ORD-K7M2Q9PX", OrderStatus.AWAITING_APPROVAL, "Anna Müller", 3, NOW, Decimal("108.10"), "EUR",
        (OrderLineView("Visio Plan 2", 3, Term.P1Y, BillingCycle.MONTHLY, Decimal("13.70")), OrderLineView("Power BI Pro", 5, Term.P1M, BillingCycle.MONTHLY, Decimal("13.40"))),
        None, None, None, None, "Anna Müller", None,
    )
    approved = replace(order, status=OrderStatus.COMPLETED, approver="Stefan Hoffmann", decided_at=NOW + timedelta(minutes=12))
    rejected = replace(order, status=OrderStatus.REJECTED, approver="Katrin Vogel", decided_at=NOW + timedelta(hours=2), comment="Please use the Visio seats we already have.")
    return {
        "catalog-search": o.catalog_card("Catalog: visio", [visio, pbi, copilot], owned={6}, locale=None),
        "catalog-offers": o.offers_card(visio, locale=None),
        "catalog-duplicate": o.duplicate_card(company="Fabrikam GmbH", name="Visio Plan 2", subscription_name="Visio Plan 2", subscription_id=4, seats=5, offer_id=12, quantity=3, locale=None),
        "cart": o.cart_card(cart, locale=None, note="Added 3 × Visio Plan 2 to your cart."),
        "cart-empty": o.cart_card(Cart(()), locale=None),
        "checkout-annual": o.checkout_card(cart, op="example-op-6", name="Anna Müller", email="anna.mueller@fabrikam.de", approval_roles=["Finance", "Admin"], locale=None),
        "order-awaiting-approval": o.order_placed_card(order, message="Your order is waiting for approval. I sent it to Katrin Vogel, Stefan Hoffmann; you'll hear from me as soon as someone decides.", locale=None),
        "approval-request": o.approval_card(order, reason="Orders by the Modify role need approval.", decided=False, locale=None),
        "approval-approved": o.approval_card(approved, reason="", decided=True, locale=None),
        "approval-rejected": o.approval_card(rejected, reason="", decided=True, locale=None),
        "orders-list": o.orders_card("My orders", [approved, rejected], page=1, has_more=False, verb="orders.list", locale=None),
        "order-details": o.order_details_card(approved, show_prices=True, locale=None),
    }


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
        **change_examples(),
        **order_examples(),
        **case_examples(),
        **knowledge_examples(),
    }
