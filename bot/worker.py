"""The background worker: carries out due scheduled changes and renewals, finishes confirmations a
crash left pending, then tells people."""
from __future__ import annotations

import logging
from datetime import timedelta

from cards.text import text
from dialogs.base import Notifier, Reply
from bot.handler import SEEN
from bot.storage import SqlStorage
from services import licence_assignments, scheduler, subscription_changes
from services.periodic import Periodic
from services import ordering
from services.models import User
from services.ordering import LedgerOrders


async def _approval_reminders(db, clock, notifier: Notifier) -> int:
    """Remind approvers of orders waiting too long; expire those past their time and say so."""
    from cards.orders import approval_card

    sent = 0
    for item in await ordering.remind_and_expire(db, clock.now()):
        async with db() as session:
            requester = await session.get(User, item.requester_id)
            views = await ordering.order_views(session, requester.customer_id, order_id=item.order_id, limit=1)
        if item.expired:
            if await notifier.send(item.requester_id, [Reply(text=text(requester.locale, "order.expired_notice", number=item.number))]):
                sent += 1
            for copy in item.card_activities:
                await notifier.update(copy["user_id"], copy["activity_id"], Reply(card=approval_card(views[0], reason="", decided=True, locale=None)))
        else:
            for approver_id in item.approver_ids:
                if await notifier.send(approver_id, [Reply(text=text(None, "approval.reminder", number=item.number, requester=requester.name))]):
                    sent += 1
    return sent

log = logging.getLogger("seatdesk.worker")


async def _locale(db, user_id: int) -> str | None:
    async with db() as session:
        user = await session.get(User, user_id)
    return user.locale if user else None


async def _left_over(db, provider, graph, clock, notifier: Notifier) -> int:
    """Confirmations whose process died before the provider's answer was recorded, and that nobody
    clicked again within the grace period: finished here, and the person gets the receipt."""
    from cards.changes import receipt_card
    from cards.licences import assign_receipt_card

    sent = 0
    for done in await subscription_changes.finish_left_over(db, provider, clock.now()):
        if done.user_id is None:
            continue
        locale = await _locale(db, done.user_id)
        result = done.result
        if isinstance(result, subscription_changes.Receipt):
            replies = [
                Reply(text=text(locale, "notice.change_finished", name=result.subscription_name, reference=result.reference)),
                Reply(card=receipt_card(result, locale=locale)),
            ]
        else:
            replies = [Reply(text=text(locale, "notice.change_failed", name=result.subscription_name, message=result.message))]
        if await notifier.send(done.user_id, replies):
            sent += 1
    if graph is None:
        return sent
    for done in await licence_assignments.finish_left_over(db, graph, clock.now(), unavailable=text(None, "licences.unavailable")):
        if done.user_id is None:
            continue
        locale, receipt = await _locale(db, done.user_id), done.receipt
        card = assign_receipt_card(
            receipt.product, list(receipt.results), remove=receipt.remove, reference=receipt.reference, actor=receipt.actor, locale=locale
        )
        replies = [Reply(text=text(locale, "notice.licences_finished", product=receipt.product, reference=receipt.reference)), Reply(card=card)]
        if await notifier.send(done.user_id, replies):
            sent += 1
    return sent


async def run_once(db, provider, clock, notifier: Notifier, order_submitter=None, graph=None) -> int:
    """One pass: finish confirmations a crash left pending, apply what is due, submit approved orders,
    remind or expire approvals, then send the notices. Returns how many notices were sent."""
    from dialogs.orders import provision

    # First: a left-over change may be on a subscription whose scheduled change is due now.
    sent = await _left_over(db, provider, graph, clock, notifier)
    sent += await provision(db, order_submitter or LedgerOrders(), notifier, clock.now())
    sent += await _approval_reminders(db, clock, notifier)
    notices = await scheduler.run_due(db, provider, clock.now())
    await SqlStorage(db, clock).forget_claims(SEEN, clock.now() - timedelta(days=2))
    for notice in notices:
        async with db() as session:
            user = await session.get(User, notice.user_id)
        locale = user.locale if user else None
        if await notifier.send(notice.user_id, [Reply(text=text(locale, notice.key, **notice.values))]):
            sent += 1
    return sent


class Worker(Periodic):
    def __init__(self, db, provider, clock, notifier: Notifier, interval_seconds: float, order_submitter=None, graph=None) -> None:
        super().__init__("seatdesk-worker", interval_seconds, lambda: run_once(db, provider, clock, notifier, order_submitter, graph))
