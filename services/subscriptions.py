"""Reading a customer's subscriptions: the overview, the grouped list and one subscription's details.

Every query takes the customer id it is scoped to; none reads another customer's rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services import commerce
from services.models import (
    AuditEntry,
    Offer,
    Product,
    BillingCycle,
    ChangeStatus,
    ChangeTiming,
    ScheduledChange,
    Subscription,
    SubscriptionStatus,
    Term,
)

EXPIRING_DAYS = 30


@dataclass(frozen=True)
class ScheduledChangeView:
    id: int
    timing: ChangeTiming
    effective_date: date
    new_quantity: int | None
    reference: str | None


@dataclass(frozen=True)
class ChangeLogEntry:
    at: datetime
    actor: str
    action: str
    summary: str
    source: str


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    provider_id: str
    name: str
    product_name: str
    quantity: int
    assigned_seats: int | None
    term: Term
    billing: BillingCycle
    status: SubscriptionStatus
    is_trial: bool
    auto_renew: bool
    start_date: date
    commitment_end: date
    renewal_date: date
    window: commerce.CancellationWindow
    unit_price_monthly: Decimal
    monthly_cost: Decimal
    currency: str
    parent_id: int | None
    version: int
    scheduled: tuple[ScheduledChangeView, ...] = ()
    change_log: tuple[ChangeLogEntry, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def is_active(self) -> bool:
        return self.status == SubscriptionStatus.ACTIVE


@dataclass(frozen=True)
class SubscriptionGroup:
    base: SubscriptionView
    addons: tuple[SubscriptionView, ...] = ()


@dataclass(frozen=True)
class Overview:
    active_subscriptions: int
    active_licenses: int
    ending_soon: int
    ending_soon_not_renewing: int
    active_trials: int
    pending_changes: int
    monthly_cost: Decimal
    currency: str
    ending_soon_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    groups: tuple[SubscriptionGroup, ...]
    number: int  # 1-based
    count: int
    total_subscriptions: int
    first_index: int = 1

    @property
    def has_next(self) -> bool:
        return self.number < self.count

    @property
    def has_previous(self) -> bool:
        return self.number > 1


# What a view needs of a subscription, its offer and its product, as plain columns: the dashboard,
# the list and the details read rows of these, built once, never entities (building three entities
# per subscription cost a dashboard turn more than its query did).
FACTS = (
    select(
        Subscription.id,
        Subscription.provider_id,
        Subscription.nickname,
        Subscription.quantity,
        Subscription.assigned_seats,
        Subscription.status,
        Subscription.is_trial,
        Subscription.auto_renew,
        Subscription.start_date,
        Subscription.term_start,
        Subscription.commitment_end,
        Subscription.cancellation_allowed_until,
        Subscription.parent_id,
        Subscription.version,
        Offer.term,
        Offer.billing,
        Offer.cancellation_window_hours,
        Offer.unit_price_monthly,
        Offer.currency,
        Product.name.label("product_name"),
        Product.aliases,
    )
    .join(Offer, Offer.id == Subscription.offer_id)
    .join(Product, Product.id == Offer.product_id)
)


def to_view(
    row,
    now: datetime,
    scheduled: tuple[ScheduledChangeView, ...] = (),
    change_log: tuple[ChangeLogEntry, ...] = (),
) -> SubscriptionView:
    """The view of one row of `FACTS` (or of a query that extends it)."""
    return SubscriptionView(
        id=row.id,
        provider_id=row.provider_id,
        name=row.nickname or row.product_name,
        product_name=row.product_name,
        quantity=row.quantity,
        assigned_seats=row.assigned_seats,
        term=row.term,
        billing=row.billing,
        status=row.status,
        is_trial=row.is_trial,
        auto_renew=row.auto_renew,
        start_date=row.start_date,
        commitment_end=row.commitment_end,
        renewal_date=commerce.renewal_date(row.commitment_end),
        window=commerce.cancellation_window(
            term_start=row.term_start,
            commitment_end=row.commitment_end,
            window_hours=row.cancellation_window_hours,
            auto_renew=row.auto_renew,
            now=now,
            allowed_until=row.cancellation_allowed_until,
        ),
        unit_price_monthly=row.unit_price_monthly,
        monthly_cost=commerce.monthly_cost(row.unit_price_monthly, row.quantity),
        currency=row.currency,
        parent_id=row.parent_id,
        version=row.version,
        scheduled=scheduled,
        change_log=change_log,
        aliases=tuple(row.aliases or ()),
    )


def group_with_addons(views: list[SubscriptionView]) -> list[SubscriptionGroup]:
    """Base subscriptions in name order, each followed by its add-ons; orphaned add-ons stand alone."""
    by_id = {v.id: v for v in views}
    addons: dict[int, list[SubscriptionView]] = {}
    bases: list[SubscriptionView] = []
    for view in views:
        if view.parent_id is not None and view.parent_id in by_id:
            addons.setdefault(view.parent_id, []).append(view)
        else:
            bases.append(view)
    order = lambda v: (not v.is_active, v.name.lower(), v.id)  # noqa: E731 - active first, then by name
    return [
        SubscriptionGroup(base=b, addons=tuple(sorted(addons.get(b.id, []), key=order)))
        for b in sorted(bases, key=order)
    ]


def paginate(groups: list[SubscriptionGroup], page: int, rows_per_page: int) -> Page:
    """Pages of whole groups holding about `rows_per_page` subscriptions (a group is never split)."""
    pages: list[list[SubscriptionGroup]] = [[]]
    rows = 0
    for group in groups:
        size = 1 + len(group.addons)
        if pages[-1] and rows + size > rows_per_page:
            pages.append([])
            rows = 0
        pages[-1].append(group)
        rows += size
    number = min(max(page, 1), len(pages))
    before = sum(1 + len(g.addons) for p in pages[: number - 1] for g in p)
    total = sum(1 + len(g.addons) for g in groups)
    return Page(groups=tuple(pages[number - 1]), number=number, count=len(pages), total_subscriptions=total, first_index=before + 1)


def summarize(views: list[SubscriptionView], pending_changes: int, today: date) -> Overview:
    active = [v for v in views if v.is_active]
    ending = [v for v in active if commerce.ends_within(v.commitment_end, today, EXPIRING_DAYS)]
    currencies = {v.currency for v in active}
    return Overview(
        active_subscriptions=len(active),
        active_licenses=sum(v.quantity for v in active),
        ending_soon=len(ending),
        ending_soon_not_renewing=sum(1 for v in ending if not v.auto_renew),
        active_trials=sum(1 for v in active if v.is_trial),
        pending_changes=pending_changes,
        monthly_cost=sum((v.monthly_cost for v in active if not v.is_trial), Decimal("0.00")),
        currency=currencies.pop() if len(currencies) == 1 else "EUR",
        ending_soon_names=tuple(v.name for v in sorted(ending, key=lambda v: v.commitment_end)),
    )


_VIEWS = FACTS.where(Subscription.customer_id == bindparam("customer"))


async def load_views(db: AsyncSession | AsyncConnection, customer_id: int, now: datetime) -> list[SubscriptionView]:
    return [to_view(row, now) for row in await db.execute(_VIEWS, {"customer": customer_id})]


# The dashboard in one statement, built once: each subscription row also carries the customer's count
# of pending changes (a customer without subscriptions has no changes either).
_OVERVIEW = _VIEWS.add_columns(
    select(func.count(ScheduledChange.id))
    .where(ScheduledChange.customer_id == bindparam("customer"), ScheduledChange.status == ChangeStatus.PENDING)
    .scalar_subquery()
    .label("pending_changes")
)


async def overview(db: AsyncSession | AsyncConnection, customer_id: int, now: datetime) -> Overview:
    rows = (await db.execute(_OVERVIEW, {"customer": customer_id})).all()
    views = [to_view(row, now) for row in rows]
    return summarize(views, int(rows[0].pending_changes) if rows else 0, now.date())


async def details(
    session: AsyncSession, customer_id: int, subscription_id: int, now: datetime, log_limit: int = 5
) -> SubscriptionView | None:
    """One subscription of this customer with its scheduled changes and recent change log; None if not theirs."""
    sub = (
        await session.execute(FACTS.where(Subscription.customer_id == customer_id, Subscription.id == subscription_id))
    ).one_or_none()
    if sub is None:
        return None
    changes = (
        await session.execute(
            select(ScheduledChange)
            .where(
                ScheduledChange.customer_id == customer_id,
                ScheduledChange.subscription_id == sub.id,
                ScheduledChange.status == ChangeStatus.PENDING,
            )
            .order_by(ScheduledChange.id)
        )
    ).scalars()
    renewal = commerce.renewal_date(sub.commitment_end)
    scheduled = tuple(
        ScheduledChangeView(
            id=c.id,
            timing=c.timing,
            effective_date=c.effective_date if c.timing == ChangeTiming.ON_DATE and c.effective_date else renewal,
            new_quantity=c.new_quantity,
            reference=c.reference,
        )
        for c in changes
    )
    log = (
        await session.execute(
            select(AuditEntry)
            .where(
                AuditEntry.customer_id == customer_id,
                AuditEntry.target_type == "subscription",
                AuditEntry.target_id == str(sub.id),
                AuditEntry.outcome == "applied",
            )
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(log_limit)
        )
    ).scalars()
    change_log = tuple(
        ChangeLogEntry(at=e.at, actor=e.actor, action=e.action, summary=e.summary or e.action, source=e.source) for e in log
    )
    return to_view(sub, now, scheduled, change_log)


def _words(text: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split() if w not in _FILLER]


_FILLER = {"the", "our", "my", "a", "an", "subscription", "subscriptions", "licence", "licences", "license", "licenses", "seats", "plan"}


def find_by_name(views: list[SubscriptionView], text: str) -> list[SubscriptionView]:
    """Subscriptions meant by `text`: an alias ("BP", "E3") or every word found in the name."""
    wanted = _words(text)
    if not wanted:
        return []
    phrase = " ".join(wanted)
    by_alias = [v for v in views if any(" ".join(_words(a)) == phrase for a in v.aliases)]
    if by_alias:
        return by_alias
    return [v for v in views if all(w in _words(v.name) or w in v.name.lower() for w in wanted)]
