"""Messages outside a turn: to a person's stored conversation (scheduled changes done, approvals,
case updates), and updates of cards sent earlier."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from botbuilder.core import BotAdapter, TurnContext
from botbuilder.schema import ConversationReference
from sqlalchemy import select

from bot.handler import to_activity
from dialogs.base import Reply
from services.models import ConversationRef, Customer

log = logging.getLogger("seatdesk.proactive")


class ProactiveNotifier:
    def __init__(self, adapter: BotAdapter, db, app_id: str) -> None:
        self._adapter = adapter
        self._db = db
        self._app_id = app_id

    async def _reference(self, user_id: int) -> ConversationReference | None:
        async with self._db() as session:
            rows = (
                await session.execute(
                    select(ConversationRef, Customer.tenant_id)
                    .join(Customer, Customer.id == ConversationRef.customer_id)
                    .where(ConversationRef.user_id == user_id)
                    .order_by(ConversationRef.updated_at.desc())
                )
            ).all()
        personal = [r for r in rows if r[0].conversation_type == "personal"] or rows
        if not personal:
            return None
        stored, tenant_id = personal[0]
        reference = ConversationReference().deserialize(stored.reference)
        # botbuilder writes the tenant as "tenantID" and reads Teams' "tenantId" into nothing it
        # serializes, so stored references lack it; the connector paces Teams' limit per tenant by it.
        if reference.conversation is not None and not reference.conversation.tenant_id:
            reference.conversation.tenant_id = tenant_id
        return reference

    async def reachable(self, user_ids: Iterable[int]) -> set[int]:
        wanted = set(user_ids)
        if not wanted:
            return set()
        async with self._db() as session:
            found = await session.execute(select(ConversationRef.user_id).where(ConversationRef.user_id.in_(wanted)).distinct())
        return set(found.scalars())

    async def send(self, user_id: int, replies: list[Reply]) -> list[str]:
        reference = await self._reference(user_id)
        if reference is None:
            log.info("user %s has no conversation with Seatdesk yet; nothing sent", user_id)
            return []
        sent: list[str] = []

        async def callback(turn_context: TurnContext) -> None:
            responses = await turn_context.send_activities([to_activity(r) for r in replies])
            sent.extend(r.id for r in responses if r is not None and r.id)

        try:
            await self._adapter.continue_conversation(reference, callback, self._app_id)
        except Exception:  # noqa: BLE001 - a notice that cannot be delivered must not break the caller
            log.exception("could not message user %s", user_id)
        return sent

    async def update(self, user_id: int, activity_id: str, reply: Reply) -> bool:
        reference = await self._reference(user_id)
        if reference is None:
            return False

        async def callback(turn_context: TurnContext) -> None:
            activity = to_activity(reply)
            activity.id = activity_id
            await turn_context.update_activity(activity)

        try:
            await self._adapter.continue_conversation(reference, callback, self._app_id)
        except Exception:  # noqa: BLE001
            log.exception("could not update activity %s for user %s", activity_id, user_id)
            return False
        return True
