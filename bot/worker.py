"""The background worker: finishes confirmations a crash left pending, carries out due scheduled
changes and renewals, submits approved orders, reminds approvers, then delivers the notices.

Every step writes the notices it owes in the transaction that makes the change they report (the
notice outbox, services/notices.py); the pass ends by delivering what is due, including notices an
earlier pass, or a process killed after its commit, did not get to send."""
from __future__ import annotations

import logging
from datetime import timedelta

from bot.handler import SEEN
from bot.storage import SqlStorage
from cards.text import text
from dialogs.base import Notifier
from dialogs.notices import deliver
from services import licence_assignments, notices, ordering, scheduler, subscription_changes
from services.ordering import LedgerOrders
from services.periodic import Periodic

log = logging.getLogger("seatdesk.worker")


async def _left_over(db, provider, graph, clock) -> None:
    """Confirmations whose process died before the provider's answer was recorded, and that nobody
    clicked again within the grace period: finished here, with the person's receipt in the outbox."""
    await subscription_changes.finish_left_over(db, provider, clock.now())
    if graph is not None:
        await licence_assignments.finish_left_over(db, graph, clock.now(), unavailable=text(None, "licences.unavailable"))


async def run_once(db, provider, clock, notifier: Notifier, order_submitter=None, graph=None) -> int:
    """One pass: finish confirmations a crash left pending, submit approved orders, remind or expire
    approvals, apply what is due, then deliver the notices. Returns how many notices were delivered."""
    try:
        # First: a left-over change may be on a subscription whose scheduled change is due now.
        await _left_over(db, provider, graph, clock)
        await ordering.provision(db, order_submitter or LedgerOrders(), clock.now())
        await ordering.remind_and_expire(db, clock.now())
        await scheduler.run_due(db, provider, clock.now())
        await SqlStorage(db, clock).forget_claims(SEEN, clock.now() - timedelta(days=2))
        await notices.forget_delivered(db, clock.now() - notices.KEEP)
    finally:
        # Also when a step failed: what the steps before it committed is not held up until the next pass.
        delivered = await deliver(db, notifier, clock.now())
    return delivered


class Worker(Periodic):
    def __init__(self, db, provider, clock, notifier: Notifier, interval_seconds: float, order_submitter=None, graph=None) -> None:
        super().__init__("seatdesk-worker", interval_seconds, lambda: run_once(db, provider, clock, notifier, order_submitter, graph))
