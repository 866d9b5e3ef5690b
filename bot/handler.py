"""The turn handler: from a Teams activity to a flow and back. The only place dialogs meet botbuilder."""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import replace
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import Bot, InvokeResponse, MessageFactory, TurnContext
from botbuilder.schema import Activity, ActivityTypes, Attachment
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from bot.follow_up import TurnFollowUp, file_token
from bot.storage import SeatdeskConversationState, SqlStorage, item as storage_item
from cards.text import text
from dialogs import router
from dialogs.base import FlowContext, IncomingFile, NoNotifier, Outcome, Reply
from dialogs.slow import DEADLINE_SECONDS, SlowWork
from services.db import engine_of
from services.models import BotState, ConversationRef, User
from services.ordering import LedgerOrders
from services.providers import LedgerProvider
from services.tenancy import WHO_IS_TALKING, Identity, NotRegistered, identity_of, who_is_talking

log = logging.getLogger("seatdesk.turn")

# Who is talking and this conversation's state, in one statement at the start of every turn.
_OPENING = WHO_IS_TALKING.add_columns(BotState.data.label("state_data"), BotState.etag.label("state_etag")).outerjoin(
    BotState, BotState.key == bindparam("state_key")
)

CARD = "application/vnd.microsoft.card.adaptive"
SEEN = "seen/"
MAX_TEXT = 4000
KNOWN_REFERENCES = 10_000


def _tenant_id(activity: Activity) -> str | None:
    conversation = activity.conversation
    if conversation is not None and conversation.tenant_id:
        return conversation.tenant_id
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = channel_data.get("tenant")
    return tenant.get("id") if isinstance(tenant, dict) else None


def _files(activity: Activity) -> tuple[IncomingFile, ...]:
    found = []
    for attachment in activity.attachments or []:
        content = attachment.content if isinstance(attachment.content, dict) else {}
        if attachment.content_type == "application/vnd.microsoft.teams.file.download.info" and content.get("downloadUrl"):
            found.append(IncomingFile(attachment.name or "file", content.get("fileType") or "", content["downloadUrl"], "file"))
        elif (attachment.content_type or "").startswith("image/") and attachment.content_url:
            found.append(IncomingFile(attachment.name or "image", attachment.content_type, attachment.content_url, "image"))
    return tuple(found)


def _reference_fingerprint(activity: Activity) -> tuple:
    """What botbuilder builds a conversation reference from, apart from the activity's id: comparing
    this costs a fraction of serializing the reference (msrest) on every turn."""

    def fields(model) -> str | None:
        return None if model is None else repr(sorted(vars(model).items()))

    return (
        activity.channel_id,
        activity.service_url,
        activity.locale,
        fields(activity.from_property),
        fields(activity.recipient),
        fields(activity.conversation),
    )


class _SentCard(dict):
    """A card in an outgoing activity. botbuilder deep-copies every activity it sends, card included
    (hundreds of nested dicts); a card is built for its one reply and not changed afterwards, so its
    copy is itself."""

    __slots__ = ()

    def __deepcopy__(self, memo: dict) -> "_SentCard":
        return self


def to_activity(reply: Reply) -> Activity:
    if reply.card is None:
        return MessageFactory.text(reply.text or "")
    activity = MessageFactory.attachment(Attachment(content_type=CARD, content=_SentCard(reply.card)))
    if reply.text:
        activity.text = reply.text
    return activity


def invoke_body(status: int, kind: str, value: Any) -> dict:
    return {"statusCode": status, "type": kind, "value": value}


class SeatdeskBot(Bot):
    def __init__(self, *, db, clock, storage: SqlStorage, conversation_state: SeatdeskConversationState, page_size: int, support_contact: str, notifier=None, provider=None, knowledge=None, graph=None, language_model=None, turn_deadline_seconds: float = DEADLINE_SECONDS) -> None:
        self.language_model = language_model
        self.graph = graph
        self._knowledge = knowledge
        self._db = db
        self._engine = engine_of(db)
        self.notifier = notifier or NoNotifier()
        self.provider = provider or LedgerProvider()
        self.order_submitter = LedgerOrders()
        self._background: set[asyncio.Task] = set()
        # The timer of the shutdown grace (drain); tests hold it.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        # Slow work waits at most until a turn's deadline, then finishes among the background tasks.
        self.slow_work = SlowWork(turn_deadline_seconds, tasks=self._background)
        # (user, conversation) → the reference and locale this process last stored (most recent last).
        self._stored_references: OrderedDict[tuple[int, str], tuple[dict, str | None]] = OrderedDict()
        self._clock = clock
        self._conversation_state = conversation_state
        self._storage = storage
        self._flow_state = conversation_state.create_property("flow")
        self._page_size = page_size
        self._support_contact = support_contact

    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if activity.type == ActivityTypes.message:
            await self._on_message(turn_context)
        elif activity.type == ActivityTypes.invoke:
            await self._on_invoke(turn_context)
        elif activity.type in (ActivityTypes.conversation_update, ActivityTypes.installation_update):
            await self._on_install(turn_context)
        await self._conversation_state.save_changes(turn_context)

    # -- who is talking -------------------------------------------------------------------
    async def _open(self, turn_context: TurnContext, claim: str | None = None) -> Identity | NotRegistered | None:
        """The turn's opening reads on one connection: the claim of this activity (None: claimed
        before, nothing to do), then who is talking together with the conversation's state."""
        activity = turn_context.activity
        sender = activity.from_property
        parameters = who_is_talking(_tenant_id(activity), sender.aad_object_id if sender else None)
        state_key = self._conversation_state.get_storage_key(turn_context)
        async with self._engine.connect() as conn:
            if claim and not await self._storage.claim(claim, conn):
                return None
            if parameters is None:
                return NotRegistered.NO_IDENTITY
            found = (await conn.execute(_OPENING, {**parameters, "state_key": state_key})).first()
        identity = identity_of(found)
        if isinstance(identity, Identity):
            stored = {} if found.state_data is None else {state_key: storage_item(found.state_data, found.state_etag)}
            self._conversation_state.preload(turn_context, stored)
            await self._remember_conversation(turn_context, identity)
        return identity

    async def _remember_conversation(self, turn_context: TurnContext, identity: Identity) -> None:
        """Keep where this person can be reached proactively (scheduled changes, approvals, case updates)."""
        activity = turn_context.activity
        known_key = (identity.user_id, activity.conversation.id)
        known = (_reference_fingerprint(activity), activity.locale if activity.locale and activity.locale != identity.locale else None)
        if self._stored_references.get(known_key) == known:
            self._stored_references.move_to_end(known_key)
            return  # this process stored exactly this reference already: nothing to read or write
        reference = TurnContext.get_conversation_reference(activity).serialize()
        # The incoming activity's id changes every turn and proactive sends never use it: without it,
        # an unchanged reference is not rewritten, so an ordinary turn only reads the database.
        reference.pop("activityId", None)
        conversation_type = (activity.conversation.conversation_type if activity.conversation else None) or "personal"
        now = self._clock.now()
        async with self._db() as session, session.begin():
            existing = (
                await session.execute(
                    select(ConversationRef).where(
                        ConversationRef.user_id == identity.user_id, ConversationRef.conversation_id == activity.conversation.id
                    )
                )
            ).scalar_one_or_none()
            if existing is None:
                try:
                    async with session.begin_nested():
                        session.add(
                            ConversationRef(
                                customer_id=identity.home_customer_id,
                                user_id=identity.user_id,
                                conversation_id=activity.conversation.id,
                                conversation_type=conversation_type,
                                service_url=activity.service_url or "",
                                reference=reference,
                                updated_at=now,
                            )
                        )
                except IntegrityError:
                    pass  # the same person's simultaneous turn stored it first
            elif existing.reference != reference:
                existing.reference = reference
                existing.service_url = activity.service_url or ""
                existing.updated_at = now
            if activity.locale and activity.locale != identity.locale:
                # Proactive messages (approvals, notices) follow the language of the person's Teams client.
                user = await session.get(User, identity.user_id)
                user.locale = activity.locale[:16]
        self._stored_references[known_key] = known
        if len(self._stored_references) > KNOWN_REFERENCES:
            self._stored_references.popitem(last=False)

    async def _context(self, turn_context: TurnContext, identity: Identity) -> FlowContext:
        state = await self._flow_state.get(turn_context, dict)
        return FlowContext(
            db=self._db,
            clock=self._clock,
            identity=identity,
            locale=turn_context.activity.locale or identity.locale,
            page_size=self._page_size,
            support_contact=self._support_contact,
            notifier=self.notifier,
            activity_id=turn_context.activity.id,
            reply_to_id=turn_context.activity.reply_to_id,
            files=_files(turn_context.activity),
            state=state,
            knowledge=self._knowledge,
            graph=self.graph,
            order_submitter=self.order_submitter,
            provider=self.provider,
            shared=(turn_context.activity.conversation.conversation_type or "personal") != "personal",
            user_mri=turn_context.activity.from_property.id if turn_context.activity.from_property else None,
            language_model=self.language_model,
            slow=self.slow_work.turn(TurnFollowUp(turn_context)),
            file_token=file_token(turn_context),
        )

    def _unregistered(self, turn_context: TurnContext, why: NotRegistered) -> Reply:
        return Reply(text=text(turn_context.activity.locale, "unregistered." + why.value, contact=self._support_contact))

    # -- activities -----------------------------------------------------------------------
    async def _on_install(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if activity.type == ActivityTypes.installation_update:
            if (activity.action or "").startswith("remove"):
                return
        else:
            if activity.channel_id == "msteams":
                return  # Teams also sends installationUpdate, with the client's locale: welcome from that one
            bot_id = activity.recipient.id if activity.recipient else None
            if not any(member.id == bot_id for member in activity.members_added or []):
                return
        # Teams sends conversationUpdate and installationUpdate at the same moment on install.
        identity = await self._open(turn_context, claim=f"welcomed/{activity.channel_id}/{activity.conversation.id}")
        if identity is None:
            return
        if isinstance(identity, NotRegistered):
            await self._send(turn_context, [self._unregistered(turn_context, identity)])
            return
        await self._send(turn_context, (await router.dispatch(await self._context(turn_context, identity), "welcome", {})).replies)

    async def _on_message(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        seen = f"{SEEN}{activity.channel_id}/{activity.conversation.id}/{activity.id}" if activity.id else None
        identity = await self._open(turn_context, claim=seen)
        if identity is None:
            return  # Teams retried a message it thought unanswered: it was handled (remembered across restarts)
        if isinstance(identity, NotRegistered):
            await self._send(turn_context, [self._unregistered(turn_context, identity)])
            return
        ctx = await self._context(turn_context, identity)
        if isinstance(activity.value, dict) and isinstance(activity.value.get("verb"), str):
            # Action.Submit fallback of a card button (clients without Universal Actions).
            outcome = await router.dispatch(ctx, activity.value["verb"], activity.value)
        elif activity.text and activity.text.strip():
            outcome = await router.handle_text(ctx, activity.text[:MAX_TEXT])
        elif ctx.files:
            outcome = await router.handle_files(ctx)
        else:
            outcome = await router.dispatch(ctx, "help", {})
        await self._send(turn_context, outcome.replies)
        self._start_after_turn(ctx)

    async def _on_invoke(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if activity.name != "adaptiveCard/action":
            await self._answer_invoke(turn_context, 200, invoke_body(200, "application/vnd.microsoft.activity.message", ""))
            return
        value = activity.value if isinstance(activity.value, dict) else {}
        action = value.get("action") if isinstance(value.get("action"), dict) else None
        verb = action.get("verb") if action else None
        data = action.get("data") if action and isinstance(action.get("data", {}), dict) else None
        if not isinstance(verb, str) or data is None:
            message = text(activity.locale, "error.bad_action")
            await self._answer_invoke(turn_context, 200, invoke_body(400, "application/vnd.microsoft.error", {"code": "BadRequest", "message": message}))
            return
        identity = await self._open(turn_context)
        if isinstance(identity, NotRegistered):
            reply = self._unregistered(turn_context, identity)
            await self._answer_invoke(turn_context, 200, invoke_body(200, "application/vnd.microsoft.activity.message", reply.text))
            return
        ctx = await self._context(turn_context, identity)
        outcome = await router.dispatch(ctx, verb, data or {})
        await self._answer_with(turn_context, outcome)
        self._start_after_turn(ctx)

    def _start_after_turn(self, ctx: FlowContext) -> None:
        """What the flow left for after its answer (notices to other people, submitting an order) runs
        in one background task, one piece after the other, so notices arrive in the order written."""
        if not ctx.after_turn:
            return
        work = list(ctx.after_turn)
        ctx.after_turn.clear()
        names = ", ".join(getattr(piece, "__name__", "work") for piece in work)
        task = asyncio.create_task(self._run_after_turn(work, ctx), name=f"seatdesk-after-turn {names}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _run_after_turn(work: list, ctx: FlowContext) -> None:
        for piece in work:
            try:
                await piece(ctx)
            except Exception:  # noqa: BLE001 - never raised into a turn; the worker retries orders and reminders
                log.exception("background work after a turn failed: %s", getattr(piece, "__name__", piece))

    async def idle(self) -> None:
        """Wait for work started after turns (tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def drain(self, grace_seconds: float) -> list[str]:
        """On shutdown: wait up to `grace_seconds` for the background work, then cancel what is still
        running and log it by name. Returns those names (empty when everything finished)."""
        timer = asyncio.ensure_future(self.sleep(max(grace_seconds, 0.0)))
        try:
            while not timer.done():
                pending = {task for task in self._background if not task.done()}
                if not pending:
                    break
                # Re-read each time: finishing work may start more (a late result's report).
                await asyncio.wait({*pending, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        left = [task for task in self._background if not task.done()]
        names = sorted(task.get_name() for task in left)
        if left:
            log.warning(
                "shutdown: %d background task(s) still running after the %g s grace, cancelled: %s", len(left), grace_seconds, "; ".join(names)
            )
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
        return names

    async def _answer_with(self, turn_context: TurnContext, outcome: Outcome) -> None:
        """The first card replaces the clicked one; any other reply is posted as a new message."""
        replies = list(outcome.replies)
        if outcome.keep_card:
            await self._send(turn_context, replies)
            await self._answer_invoke(turn_context, 200, invoke_body(200, "application/vnd.microsoft.activity.message", ""))
            return
        first_card = next((r for r in replies if r.card is not None), None)
        if first_card is None:
            message = " ".join(r.text for r in replies if r.text) or ""
            await self._answer_invoke(turn_context, 200, invoke_body(200, "application/vnd.microsoft.activity.message", message))
            return
        replies.remove(first_card)
        if first_card.text:
            replies.insert(0, replace(first_card, card=None))
        await self._send(turn_context, replies)
        if outcome.update_original and turn_context.activity.reply_to_id:
            # Everyone who sees the original card (a group chat) sees the receipt, not stale buttons.
            update = to_activity(Reply(card=first_card.card))
            update.id = turn_context.activity.reply_to_id
            try:
                await turn_context.update_activity(update)
            except Exception:  # noqa: BLE001 - the clicker still gets the receipt below
                log.warning("could not update card %s for everyone", update.id, exc_info=True)
        await self._answer_invoke(turn_context, 200, invoke_body(200, CARD, first_card.card))

    async def _answer_invoke(self, turn_context: TurnContext, status: int, body: dict) -> None:
        await turn_context.send_activity(Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=status, body=body)))

    async def _send(self, turn_context: TurnContext, replies: list[Reply]) -> None:
        if replies:
            await turn_context.send_activities([to_activity(r) for r in replies])
