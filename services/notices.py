"""The notice outbox: what Seatdesk owes a person outside a turn (an approval card for an order, a
scheduled change carried out, an order ready or failed, a reminder, a change a crash left over and
the worker finished).

A notice is written in the same transaction as the change it reports, so it exists exactly when the
change does. The worker delivers it afterwards (dialogs/notices.py builds the replies): it claims a
batch by a conditional update of the lease (`claimed_until`; on PostgreSQL the claim skips rows
another instance is claiming, SKIP LOCKED), sends each notice, then marks it sent. A process killed
between the commit and the send leaves the notice pending, and a later pass delivers it: at least
once. A duplicate needs a kill in the moment between a send that reached Teams and its marking.
A failed send is tried again at a later pass, after `retry_after`, and given up after `ATTEMPTS`;
a person Seatdesk has no conversation with is marked undeliverable. Both are logged.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.models import OutboxNotice

log = logging.getLogger("seatdesk.notices")

PENDING = "pending"
SENT = "sent"
UNDELIVERABLE = "undeliverable"
GIVEN_UP = "given_up"

# The kinds of notice, each rebuilt into the same replies as when they were sent straight away.
TEXT = "text"  # payload: key (a cards.text key), values, locale
CHANGE_FINISHED = "change_finished"  # payload: receipt (subscription_changes.Receipt.to_json()), locale
LICENCES_FINISHED = "licences_finished"  # payload: receipt (licence_assignments.LicenceReceipt.to_json()), locale
APPROVAL_CARD_DECIDED = "approval_card_decided"  # payload: order_id, activity_id (a copy of the approval card)
# payload: order_id, activity_id (the requester's order card), key and values (the decision's sentence)
ORDER_CARD_DECIDED = "order_card_decided"
# payload: order_id, reason ("amount" or "role"), threshold (the policy's monthly amount, for "amount")
APPROVAL_REQUEST = "approval_request"

# Longer than a batch takes to send (a proactive send waits up to 30 s on a Retry-After): a claim
# older than this was left by a process that died, and the notice is delivered by another pass.
LEASE = timedelta(minutes=5)
BATCH = 50
# Tries per notice: after a failed send it waits 1, 2, 4, 8, 16 minutes, then it is given up.
ATTEMPTS = 6
# Delivered (or given up) notices are kept this long, then forgotten by the worker.
KEEP = timedelta(days=30)


def retry_after(attempts: int) -> timedelta:
    """How long a notice waits after its `attempts`-th send failed."""
    return min(timedelta(minutes=1) * 2 ** max(attempts - 1, 0), timedelta(hours=1))


def add(session: AsyncSession, *, customer_id: int, user_id: int, kind: str, payload: dict, now: datetime) -> None:
    """Owe `user_id` a notice, in the caller's transaction (the one that makes the change it reports)."""
    session.add(
        OutboxNotice(customer_id=customer_id, user_id=user_id, kind=kind, payload=payload, status=PENDING, attempts=0, created_at=now)
    )


def add_text(session: AsyncSession, *, customer_id: int, user_id: int, key: str, values: dict, locale: str | None, now: datetime) -> None:
    """A sentence (a cards.text key and its values) in `locale`."""
    add(session, customer_id=customer_id, user_id=user_id, kind=TEXT, payload={"key": key, "values": values, "locale": locale}, now=now)


@dataclass(frozen=True)
class Claimed:
    """A notice this worker holds until `LEASE` has passed."""

    id: int
    customer_id: int
    user_id: int
    kind: str
    payload: dict
    attempts: int  # including this one


def _due(now: datetime):
    return (OutboxNotice.status == PENDING, or_(OutboxNotice.claimed_until.is_(None), OutboxNotice.claimed_until <= now))


async def claim(db, now: datetime, *, limit: int | None = None) -> list[Claimed]:
    """Take up to `limit` due notices, oldest first, for `LEASE`. The update is conditional (still pending,
    lease free), so two workers never hold the same notice; on PostgreSQL rows another worker is claiming
    are skipped (SKIP LOCKED) rather than waited for. SQLite ignores FOR UPDATE: its single writer
    serialises the claims. The transaction ends with the claim: no lock is held while sending."""
    # Computed once (MATERIALIZED): as a plain IN (subquery) PostgreSQL may run the LIMIT again for every
    # row it updates, and then claims every due notice at once.
    due = (
        select(OutboxNotice.id).where(*_due(now)).order_by(OutboxNotice.id).limit(limit or BATCH).with_for_update(skip_locked=True)
        .cte("due").prefix_with("MATERIALIZED", dialect="postgresql")
    )
    async with db() as session, session.begin():
        rows = await session.execute(
            update(OutboxNotice)
            .where(OutboxNotice.id.in_(select(due.c.id)), *_due(now))
            .values(claimed_until=now + LEASE, attempts=OutboxNotice.attempts + 1)
            .returning(OutboxNotice.id, OutboxNotice.customer_id, OutboxNotice.user_id, OutboxNotice.kind, OutboxNotice.payload, OutboxNotice.attempts)
            .execution_options(synchronize_session=False)
        )
        claimed = [Claimed(*row) for row in rows.all()]
    return sorted(claimed, key=lambda c: c.id)


async def _settle(db, notice_id: int, **values) -> bool:
    async with db() as session, session.begin():
        done = await session.execute(
            update(OutboxNotice)
            .where(OutboxNotice.id == notice_id, OutboxNotice.status == PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return done.rowcount == 1


async def mark_sent(db, notice: Claimed, now: datetime) -> None:
    await _settle(db, notice.id, status=SENT, sent_at=now, claimed_until=None)


async def mark_undeliverable(db, notice: Claimed, now: datetime) -> None:
    log.info("notice %s (%s) to user %s: no conversation with Seatdesk to send it to; marked undeliverable", notice.id, notice.kind, notice.user_id)
    await _settle(db, notice.id, status=UNDELIVERABLE, claimed_until=None)


async def mark_failed(db, notice: Claimed, now: datetime) -> bool:
    """After a send that failed: tried again after `retry_after`, or given up after `ATTEMPTS`. True when given up."""
    if notice.attempts >= ATTEMPTS:
        log.warning("notice %s (%s) to user %s given up after %d attempts", notice.id, notice.kind, notice.user_id, notice.attempts)
        await _settle(db, notice.id, status=GIVEN_UP, claimed_until=None)
        return True
    wait = retry_after(notice.attempts)
    log.info("notice %s (%s) to user %s not delivered (attempt %d of %d); trying again in %s", notice.id, notice.kind, notice.user_id, notice.attempts, ATTEMPTS, wait)
    await _settle(db, notice.id, claimed_until=now + wait)
    return False


async def forget_delivered(db, before: datetime) -> None:
    """Notices no longer pending (sent, undeliverable, given up) written before `before` are dropped."""
    async with db() as session, session.begin():
        await session.execute(delete(OutboxNotice).where(OutboxNotice.status != PENDING, OutboxNotice.created_at < before))
