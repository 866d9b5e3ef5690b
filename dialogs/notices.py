"""Delivering the notice outbox (services/notices.py): each notice owed to a person becomes the replies
they see, the same sentences and cards as when notices were sent straight after the commit, and goes
out through the Notifier. The worker calls `deliver` at the end of every pass; a checkout (its
approval cards), a decision (its notices) and the order outbox, when it provisions right after a
turn, call it too."""
from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from cards.changes import receipt_card
from cards.licences import assign_receipt_card
from cards.format import money
from cards.orders import approval_card, order_placed_card
from cards.text import text
from dialogs.base import Notifier, Reply
from services import notices, ordering
from services.licence_assignments import LicenceReceipt
from services.models import OrderStatus, User
from services.subscription_changes import Receipt

log = logging.getLogger("seatdesk.notices")


def replies(notice: notices.Claimed) -> list[Reply]:
    """What a notice says (pure: its payload in, replies out)."""
    payload, locale = notice.payload, notice.payload.get("locale")
    if notice.kind == notices.TEXT:
        return [Reply(text=text(locale, payload["key"], **payload.get("values", {})))]
    if notice.kind == notices.CHANGE_FINISHED:
        receipt = Receipt.from_json(payload["receipt"])
        return [
            Reply(text=text(locale, "notice.change_finished", name=receipt.subscription_name, reference=receipt.reference)),
            Reply(card=receipt_card(receipt, locale=locale)),
        ]
    if notice.kind == notices.LICENCES_FINISHED:
        receipt = LicenceReceipt.from_json(payload["receipt"])
        card = assign_receipt_card(
            receipt.product, list(receipt.results), remove=receipt.remove, reference=receipt.reference, actor=receipt.actor, locale=locale
        )
        return [Reply(text=text(locale, "notice.licences_finished", product=receipt.product, reference=receipt.reference)), Reply(card=card)]
    raise ValueError(f"unknown notice kind {notice.kind!r}")


async def _decided_card(db, notice: notices.Claimed) -> Reply | None:
    """A copy of an order's card as it is now decided, in its reader's language; None if the order is gone."""
    async with db() as session:
        views = await ordering.order_views(session, notice.customer_id, order_id=int(notice.payload["order_id"]), limit=1)
        reader = await session.get(User, notice.user_id)
    if not views:
        return None
    locale = reader.locale if reader else None
    if notice.kind == notices.ORDER_CARD_DECIDED:
        message = text(locale, notice.payload["key"], **notice.payload.get("values", {}))
        return Reply(card=order_placed_card(views[0], message=message, locale=locale))
    return Reply(card=approval_card(views[0], reason="", decided=True, locale=locale))


def approval_reason(locale: str | None, reason: str, threshold: str | None, currency: str) -> str:
    """Why an order waits for approval, in the approver's words (pure)."""
    if reason == "amount" and threshold is not None:
        return text(locale, "approval.reason.amount", limit=money(Decimal(threshold), currency, locale))
    return text(locale, "approval.reason.role") if reason == "role" else ""


async def _approval_request(db, notifier: Notifier, notice: notices.Claimed) -> bool:
    """The approval card to one approver, while the order still waits; its activity id is kept so that
    the decision shows on this copy too."""
    order_id = int(notice.payload["order_id"])
    async with db() as session:
        views = await ordering.order_views(session, notice.customer_id, order_id=order_id, limit=1)
        approver = await session.get(User, notice.user_id)
    if not views or views[0].status != OrderStatus.AWAITING_APPROVAL or approver is None:
        log.info("notice %s: order %s no longer waits for approval; no card sent", notice.id, order_id)
        return True
    order = views[0]
    reason = approval_reason(approver.locale, notice.payload.get("reason", ""), notice.payload.get("threshold"), order.currency)
    card = approval_card(order, reason=reason, decided=False, locale=approver.locale)
    ids = await notifier.send(notice.user_id, [Reply(card=card)])
    if not ids:
        return False
    await ordering.remember_card(db, order_id, notice.user_id, ids[0])
    return True


async def _send(db, notifier: Notifier, notice: notices.Claimed) -> bool:
    if notice.kind == notices.APPROVAL_REQUEST:
        return await _approval_request(db, notifier, notice)
    if notice.kind in (notices.APPROVAL_CARD_DECIDED, notices.ORDER_CARD_DECIDED):
        card = await _decided_card(db, notice)
        if card is None:
            log.warning("notice %s: order %s is gone; its card is left as it is", notice.id, notice.payload.get("order_id"))
            return True
        return await notifier.update(notice.user_id, str(notice.payload["activity_id"]), card)
    return bool(await notifier.send(notice.user_id, replies(notice)))


async def deliver_one(db, notifier: Notifier, notice: notices.Claimed, now: datetime) -> bool:
    """Send one claimed notice and settle it: sent, undeliverable, to be tried again, or given up."""
    if notice.attempts > notices.ATTEMPTS:
        # Claimed that often only when the processes holding it kept dying mid-send.
        await notices.mark_failed(db, notice, now)
        return False
    if notice.user_id not in await notifier.reachable([notice.user_id]):
        await notices.mark_undeliverable(db, notice, now)
        return False
    try:
        delivered = await _send(db, notifier, notice)
    except Exception:  # noqa: BLE001 - one notice that fails must not hold up the others; it is tried again
        log.exception("could not deliver notice %s (%s) to user %s", notice.id, notice.kind, notice.user_id)
        delivered = False
    if not delivered:
        await notices.mark_failed(db, notice, now)
        return False
    await notices.mark_sent(db, notice, now)
    return True


async def deliver(db, notifier: Notifier, now: datetime) -> int:
    """Deliver every notice due now, batch after batch, oldest first; returns how many were delivered.
    Each claimed notice leaves the due ones (sent, settled, or waiting for its lease or retry), so this ends."""
    delivered = 0
    while batch := await notices.claim(db, now):
        for notice in batch:
            delivered += await deliver_one(db, notifier, notice, now)
    return delivered

