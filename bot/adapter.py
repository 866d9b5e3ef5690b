"""Seatdesk's botbuilder adapter: turns run on botbuilder's TurnContext and middleware pipeline,
but what they send goes out through `bot.connector.BotConnector` on the event loop.

It replaces CloudAdapter, which per turn authenticates with blocking metadata fetches, builds a
ConnectorClient and a UserTokenClient, and posts replies via `requests` in a thread pool.
Requests reach `process_activity` already authenticated (`bot.auth`); a raw Authorization
header is refused here so nothing can skip that check by accident.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from botbuilder.core import BotAdapter, InvokeResponse, TurnContext
from botbuilder.core.conversation_reference_extension import get_continuation_activity
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ConversationReference,
    DeliveryModes,
    ExpectedReplies,
    ResourceResponse,
)
from botframework.connector import Channels
from botframework.connector.auth import AuthenticationConstants, ClaimsIdentity
from botframework.connector.auth.authenticate_request_result import AuthenticateRequestResult

from bot.connector import BotConnector, to_json

Logic = Callable[[TurnContext], Awaitable]


def tenant_of(*activities: Activity | None) -> str | None:
    """The Microsoft Entra tenant of the first activity that names one: conversation.tenantId,
    else channelData.tenant.id. Teams limits an app's requests per tenant, so the connector paces by it."""
    for activity in activities:
        if activity is None:
            continue
        conversation = activity.conversation
        if conversation is not None:
            # botbuilder maps tenant_id to "tenantID"; Teams' "tenantId" lands in additional_properties.
            tenant_id = conversation.tenant_id or (conversation.additional_properties or {}).get("tenantId")
            if tenant_id:
                return str(tenant_id)
        channel_data = activity.channel_data
        tenant = channel_data.get("tenant") if isinstance(channel_data, dict) else getattr(channel_data, "tenant", None)
        tenant_id = tenant.get("id") if isinstance(tenant, dict) else getattr(tenant, "id", None)
        if tenant_id:
            return str(tenant_id)
    return None


class _TurnContext(TurnContext):
    """botbuilder's TurnContext without its reference cycle: `_emit` builds a closure that refers to
    itself for every send, update and delete, even when no handler is registered, and that cycle keeps
    the whole turn (activity, state, cards) alive until the garbage collector comes by."""

    async def _emit(self, plugins, arg, logic):
        if not plugins:
            return await logic
        return await super()._emit(plugins, arg, logic)


class SeatdeskAdapter(BotAdapter):
    CONNECTOR_KEY = "seatdesk.connector"
    PROACTIVE_KEY = "seatdesk.proactive"  # set on turns outside a request: their sends yield to replies

    def __init__(self, connector: BotConnector, app_id: str = "") -> None:
        super().__init__()
        self.connector = connector
        self._app_id = app_id

    async def close(self) -> None:
        await self.connector.close()

    # -- inbound ----------------------------------------------------------------------------
    async def process_activity(
        self, auth: AuthenticateRequestResult | ClaimsIdentity, activity: Activity, logic: Logic
    ) -> InvokeResponse | None:
        """Run a turn for an activity whose request `bot.auth` has already authenticated."""
        if isinstance(auth, AuthenticateRequestResult):
            identity, audience, caller_id = auth.claims_identity, auth.audience, auth.caller_id
        elif isinstance(auth, ClaimsIdentity):
            identity, audience, caller_id = auth, AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE, None
        else:
            # A header string here would mean a request reached the turn without bot.auth's check.
            raise TypeError("SeatdeskAdapter.process_activity takes an authenticated identity, not a header")
        if identity is None:
            raise TypeError("SeatdeskAdapter.process_activity needs a ClaimsIdentity")
        activity.caller_id = caller_id
        context = self._context(activity, identity, audience, logic)
        await self.run_pipeline(context, logic)
        return self._turn_result(context)

    def _context(self, activity: Activity, identity: ClaimsIdentity, audience: str | None, logic: Logic) -> TurnContext:
        context = _TurnContext(self, activity)
        context.turn_state[self.BOT_IDENTITY_KEY] = identity
        context.turn_state[self.BOT_CALLBACK_HANDLER_KEY] = logic
        context.turn_state[self.BOT_OAUTH_SCOPE_KEY] = audience
        context.turn_state[self.CONNECTOR_KEY] = self.connector
        return context

    def _turn_result(self, context: TurnContext) -> InvokeResponse | None:
        if context.activity.delivery_mode == DeliveryModes.expect_replies:
            return InvokeResponse(
                status=HTTPStatus.OK, body=ExpectedReplies(activities=context.buffered_reply_activities).serialize()
            )
        if context.activity.type == ActivityTypes.invoke:
            answer = context.turn_state.get(self._INVOKE_RESPONSE_KEY)
            return answer.value if answer is not None else InvokeResponse(status=HTTPStatus.NOT_IMPLEMENTED)
        return None

    # -- outbound ---------------------------------------------------------------------------
    async def send_activities(self, context: TurnContext, activities: list[Activity]) -> list[ResourceResponse]:
        responses: list[ResourceResponse] = []
        for activity in activities:
            activity.id = None
            new_id: str | None = None
            if activity.type == "delay":
                await asyncio.sleep(int((activity.value or 1000) / 1000))
            elif activity.type == ActivityTypes.invoke_response:
                context.turn_state[self._INVOKE_RESPONSE_KEY] = activity
            elif activity.type == ActivityTypes.trace and activity.channel_id != Channels.emulator:
                pass
            else:
                new_id = await self.connector.send(
                    activity.service_url,
                    activity.conversation.id,
                    to_json(activity),
                    reply_to_id=activity.reply_to_id,
                    tenant_id=tenant_of(activity, context.activity),
                    background=bool(context.turn_state.get(self.PROACTIVE_KEY)),
                )
            responses.append(ResourceResponse(id=new_id or activity.id or ""))
        return responses

    async def update_activity(self, context: TurnContext, activity: Activity) -> ResourceResponse | None:
        new_id = await self.connector.update(
            activity.service_url, activity.conversation.id, activity.id, to_json(activity),
            tenant_id=tenant_of(activity, context.activity), background=bool(context.turn_state.get(self.PROACTIVE_KEY)),
        )
        return ResourceResponse(id=new_id) if new_id else None

    async def delete_activity(self, context: TurnContext, reference: ConversationReference) -> None:
        tenant_id = reference.conversation.tenant_id or tenant_of(context.activity)
        await self.connector.delete(
            reference.service_url, reference.conversation.id, reference.activity_id,
            tenant_id=tenant_id, background=bool(context.turn_state.get(self.PROACTIVE_KEY)),
        )

    # -- proactive --------------------------------------------------------------------------
    async def continue_conversation(  # pylint: disable=arguments-differ
        self,
        reference: ConversationReference,
        callback: Logic,
        bot_app_id: str | None = None,
        claims_identity: ClaimsIdentity | None = None,
        audience: str | None = None,
    ) -> None:
        """A turn outside a request (a notice, a card update) in a stored conversation."""
        app_id = bot_app_id if bot_app_id is not None else self._app_id
        identity = claims_identity or ClaimsIdentity(
            {AuthenticationConstants.AUDIENCE_CLAIM: app_id, AuthenticationConstants.APP_ID_CLAIM: app_id}, True
        )
        # Refuse before the callback runs: a stored reference must not point the bot elsewhere.
        self.connector.policy.check(reference.service_url)
        activity = get_continuation_activity(reference)
        context = self._context(activity, identity, audience or AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE, callback)
        context.turn_state[self.PROACTIVE_KEY] = True
        await self.run_pipeline(context, callback)
