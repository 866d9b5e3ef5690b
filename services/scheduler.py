"""Carrying out what is due: changes scheduled for a date, and renewals with their scheduled
quantity. Each due item is claimed by a conditional update inside the transaction that applies
it, so two Seatdesk instances never apply the same change twice; on PostgreSQL a change another
instance is working on is skipped (SKIP LOCKED), not waited for. The person who scheduled a change is
told through the notice outbox, written in that same transaction (services/notices.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from services import audit, notices
from services.models import ChangeStatus, ChangeTiming, ScheduledChange, Subscription, SubscriptionStatus, User
from services.providers import ProviderError, SubscriptionProvider

log = logging.getLogger("seatdesk.scheduler")


@dataclass(frozen=True)
class Notice:
    """Something the person is told: written to the notice outbox in the transaction that carried the
    change out, and delivered by the worker after it committed."""

    user_id: int
    key: str  # a cards.text key
    values: dict


def _tell(session, user: User, key: str, values: dict, now: datetime) -> Notice:
    notices.add_text(session, customer_id=user.customer_id, user_id=user.id, key=key, values=values, locale=user.locale, now=now)
    return Notice(user.id, key, values)


def due_on_date(today: date):
    """The changes scheduled for a date that has come: the worker carries them out now."""
    return and_(ScheduledChange.status == ChangeStatus.PENDING, ScheduledChange.timing == ChangeTiming.ON_DATE, ScheduledChange.effective_date <= today)


async def _claim(session, change_id: int, status: ChangeStatus, now: datetime) -> bool:
    # PostgreSQL: a row another instance has claimed (and holds while it calls the provider) is skipped
    # rather than waited for. SQLite ignores FOR UPDATE; its single writer serialises the claims.
    pending = (
        select(ScheduledChange.id)
        .where(ScheduledChange.id == change_id, ScheduledChange.status == ChangeStatus.PENDING)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(
        update(ScheduledChange)
        .where(ScheduledChange.id == pending)
        .values(status=status, applied_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _on_behalf(user: User | None) -> audit.Actor:
    return audit.Actor(name=f"Seatdesk for {user.name}" if user else "Seatdesk", user_id=None)


async def apply_dated_changes(db, provider: SubscriptionProvider, now: datetime) -> list[Notice]:
    async with db() as session:
        due = list((await session.execute(select(ScheduledChange.id).where(due_on_date(now.date())).order_by(ScheduledChange.id))).scalars())
    told: list[Notice] = []
    for change_id in due:
        try:
            notice = await _apply_dated(db, provider, change_id, now)
        except (OperationalError, StaleDataError):
            log.info("scheduled change %s is being handled elsewhere; will look again", change_id)
            continue
        if notice:
            told.append(notice)
    return told


async def _apply_dated(db, provider, change_id: int, now: datetime) -> Notice | None:
    try:
        async with db() as session, session.begin():
            change = await session.get(ScheduledChange, change_id)
            sub = await session.get(Subscription, change.subscription_id)
            user = await session.get(User, change.created_by_id) if change.created_by_id else None
            if not await _claim(session, change_id, ChangeStatus.APPLIED, now):
                return None  # another instance took it (or is taking it)
            name = sub.display_name
            if sub.status != SubscriptionStatus.ACTIVE or change.new_quantity is None or change.new_quantity < sub.quantity:
                await session.execute(update(ScheduledChange).where(ScheduledChange.id == change_id).values(status=ChangeStatus.FAILED))
                audit.record(
                    session, at=now, actor=_on_behalf(user), customer_id=sub.customer_id, action="scheduled_failed", target_type="subscription",
                    target_id=sub.id, summary=f"Scheduled change {change.reference} not applied", source="worker", outcome="refused",
                    reason=f"subscription is {sub.status.value}" if sub.status != SubscriptionStatus.ACTIVE else "no longer an increase",
                )
                return _tell(session, user, "notice.scheduled_failed", {"name": name, "reference": change.reference, "quantity": change.new_quantity}, now) if user else None
            old = sub.quantity
            await provider.change_quantity(session, sub, change.new_quantity, key=change.reference or f"sc-{change.id}", now=now)
            # An immediate (mid-term) change removes what was scheduled for renewal.
            for other in (
                await session.execute(
                    select(ScheduledChange).where(
                        ScheduledChange.subscription_id == sub.id,
                        ScheduledChange.status == ChangeStatus.PENDING,
                        ScheduledChange.timing == ChangeTiming.AT_RENEWAL,
                    )
                )
            ).scalars():
                other.status = ChangeStatus.WITHDRAWN
            audit.record(
                session, at=now, actor=_on_behalf(user), customer_id=sub.customer_id, action="seats", target_type="subscription", target_id=sub.id,
                summary=f"Seats {old} → {change.new_quantity} (scheduled change {change.reference})", source="worker",
                before={"quantity": old}, after={"quantity": change.new_quantity}, reference=change.reference,
            )
            return _tell(session, user, "notice.scheduled_applied", {"name": name, "reference": change.reference, "old": old, "quantity": change.new_quantity}, now) if user else None
    except ProviderError as error:
        log.warning("provider refused scheduled change %s: %s", change_id, error.code)
        async with db() as session, session.begin():
            await session.execute(update(ScheduledChange).where(ScheduledChange.id == change_id, ScheduledChange.status == ChangeStatus.PENDING).values(status=ChangeStatus.FAILED, applied_at=now))
        return None


async def renew_due(db, provider, now: datetime) -> list[Notice]:
    """Ledger subscriptions whose term ended yesterday or earlier renew (or expire)."""
    if not hasattr(provider, "renew"):
        return []  # a remote provider renews on its own; the sync picks it up
    today = now.date()
    async with db() as session:
        due = list(
            (
                await session.execute(
                    select(Subscription.id).where(Subscription.status == SubscriptionStatus.ACTIVE, Subscription.commitment_end < today)
                )
            ).scalars()
        )
    told: list[Notice] = []
    for sub_id in due:
        try:
            told += await _renew(db, provider, sub_id, now)
        except (OperationalError, StaleDataError):
            log.info("subscription %s is being renewed elsewhere", sub_id)
    return told


async def _renew(db, provider, sub_id: int, now: datetime) -> list[Notice]:
    told: list[Notice] = []
    async with db() as session, session.begin():
        sub = await session.get(Subscription, sub_id)
        if sub.status != SubscriptionStatus.ACTIVE or sub.commitment_end >= now.date():
            return []
        pending = list(
            (
                await session.execute(
                    select(ScheduledChange).where(
                        ScheduledChange.subscription_id == sub.id,
                        ScheduledChange.status == ChangeStatus.PENDING,
                        ScheduledChange.timing == ChangeTiming.AT_RENEWAL,
                    ).order_by(ScheduledChange.id.desc())
                )
            ).scalars()
        )
        quantity = None
        applied: ScheduledChange | None = None
        if sub.auto_renew and pending:
            applied = pending[0]
            if not await _claim(session, applied.id, ChangeStatus.APPLIED, now):
                return []
            quantity = applied.new_quantity
        old_quantity, old_end, name = sub.quantity, sub.commitment_end, sub.display_name
        result = await provider.renew(session, sub, now=now, quantity=quantity)
        await session.flush()  # the optimistic version check: a concurrent renewal fails here
        if result.renewed:
            summary = f"Renewed until {result.new_commitment_end.isoformat()}" + (f" with {quantity} seats (was {old_quantity})" if quantity else "")
        else:
            summary = f"Expired at the end of its term ({old_end.isoformat()}); auto-renew was off"
        audit.record(
            session, at=now, actor=audit.SEATDESK, customer_id=sub.customer_id, action="renewal" if result.renewed else "expiry",
            target_type="subscription", target_id=sub.id, summary=summary, source="worker",
            before={"quantity": old_quantity, "commitment_end": old_end.isoformat()},
            after={"quantity": sub.quantity, "commitment_end": sub.commitment_end.isoformat(), "status": sub.status.value},
            reference=applied.reference if applied else None,
        )
        who = await session.get(User, applied.created_by_id) if applied is not None and applied.created_by_id else None
        if who is not None:
            told.append(_tell(session, who, "notice.scheduled_applied", {"name": name, "reference": applied.reference, "old": old_quantity, "quantity": quantity}, now))
    return told


async def run_due(db, provider, now: datetime) -> list[Notice]:
    return await apply_dated_changes(db, provider, now) + await renew_due(db, provider, now)

