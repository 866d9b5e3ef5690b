"""The subscription provider port, and the built-in ledger provider.

Every change goes through a provider. The ledger provider keeps Seatdesk's own database as the
system of record (for resellers who bill from their own platform); the Partner Center provider
implements the same calls against Microsoft (PATCH quantity / autoRenewEnabled / status
`deleted` / scheduledNextTermInstructions), with `key` as the idempotency key of the logical
change (Partner Center's MS-RequestId).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services import commerce
from services.models import Offer, Subscription, SubscriptionStatus


class ProviderError(Exception):
    """The provider refused or failed; `message` is a sentence for the user, `code` for the log."""

    def __init__(self, message: str, code: str = "provider_error", *, retryable: bool = False, unconfirmed: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        # The change was sent but no answer came (a timeout): it may have been made. Not a refusal.
        self.unconfirmed = unconfirmed


class SubscriptionProvider(Protocol):
    name: str

    async def change_quantity(self, session: AsyncSession, sub: Subscription, quantity: int, *, key: str, now: datetime) -> None: ...

    async def set_auto_renew(self, session: AsyncSession, sub: Subscription, enabled: bool, *, key: str, now: datetime) -> None: ...

    async def cancel(self, session: AsyncSession, sub: Subscription, *, key: str, now: datetime) -> None: ...

    async def schedule_next_term(self, session: AsyncSession, sub: Subscription, quantity: int | None, *, key: str, now: datetime) -> None:
        """Set (or with None, clear) the quantity the subscription renews with."""
        ...


@dataclass(frozen=True)
class Renewal:
    subscription_id: int
    customer_id: int
    renewed: bool  # False: it expired because auto-renew was off
    new_commitment_end: date | None


class LedgerProvider:
    """Seatdesk's database is the system of record: changes apply to the subscription row."""

    name = "ledger"

    async def change_quantity(self, session: AsyncSession, sub: Subscription, quantity: int, *, key: str, now: datetime) -> None:
        window = commerce.cancellation_window(
            term_start=sub.term_start,
            commitment_end=sub.commitment_end,
            window_hours=sub.offer.cancellation_window_hours,
            auto_renew=sub.auto_renew,
            now=now,
            allowed_until=sub.cancellation_allowed_until,
        )
        if quantity > sub.quantity and not window.is_open:
            # Seats added mid-term can be reduced again for a while, down to the earlier count.
            still_open = sub.seat_add_window_until is not None and now < sub.seat_add_window_until
            if not still_open:
                sub.quantity_before_add = sub.quantity
            sub.seat_add_window_until = now + timedelta(hours=sub.offer.cancellation_window_hours)
        sub.quantity = quantity
        sub.updated_at = now

    async def set_auto_renew(self, session: AsyncSession, sub: Subscription, enabled: bool, *, key: str, now: datetime) -> None:
        sub.auto_renew = enabled
        sub.updated_at = now

    async def cancel(self, session: AsyncSession, sub: Subscription, *, key: str, now: datetime) -> None:
        sub.status = SubscriptionStatus.DELETED
        sub.auto_renew = False
        sub.updated_at = now

    async def schedule_next_term(self, session: AsyncSession, sub: Subscription, quantity: int | None, *, key: str, now: datetime) -> None:
        # The ledger keeps scheduled changes in its own table; nothing else to tell anyone.
        sub.updated_at = now

    async def renew(self, session: AsyncSession, sub: Subscription, *, now: datetime, quantity: int | None = None) -> Renewal:
        """Roll a subscription whose term has ended into its next term (or let it expire)."""
        if not sub.auto_renew:
            sub.status = SubscriptionStatus.EXPIRED
            sub.updated_at = now
            return Renewal(sub.id, sub.customer_id, False, None)
        renewal = commerce.renewal_date(sub.commitment_end)
        sub.term_start = commerce.start_of_day(renewal)
        sub.commitment_end = commerce.commitment_end_for(renewal, sub.offer.term)
        sub.cancellation_allowed_until = None
        sub.seat_add_window_until = None
        sub.quantity_before_add = None
        if quantity is not None:
            sub.quantity = quantity
        if sub.is_trial:
            paid = await _paid_offer(session, sub.offer)
            if paid is not None:
                sub.offer_id = paid.id
            sub.is_trial = False
        sub.updated_at = now
        return Renewal(sub.id, sub.customer_id, True, sub.commitment_end)


async def _paid_offer(session: AsyncSession, trial: Offer) -> Offer | None:
    result = await session.execute(
        select(Offer).where(Offer.product_id == trial.product_id, Offer.is_trial.is_(False)).order_by(Offer.id)
    )
    offers = list(result.scalars())
    same = [o for o in offers if o.term == trial.term]
    return (same or offers or [None])[0]
