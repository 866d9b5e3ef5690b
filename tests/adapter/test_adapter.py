"""SeatdeskAdapter in the real app: replies, card updates and proactive messages still arrive,
over one reused session and without botbuilder's per-turn ConnectorClient/UserTokenClient (the
cost the stock CloudAdapter pays on every turn). Guards the speed fix against regressions."""
from __future__ import annotations

import pytest
from botbuilder.schema import Activity
from botframework.connector import ConnectorClient

from bot.adapter import SeatdeskAdapter
from bot.app import RUNTIME
from dialogs.base import Reply
from services.models import Role
from tests.conftest import Teams, buttons, person


@pytest.fixture
def no_stock_clients(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a botbuilder ConnectorClient was built")

    monkeypatch.setattr(ConnectorClient, "__init__", refuse)


async def test_turns_replies_updates_and_notices_share_one_session(bot_client, connector, demo_db, no_stock_clients):
    runtime = bot_client.server.app[RUNTIME]
    assert isinstance(runtime.adapter, SeatdeskAdapter)
    who = await person(demo_db, "fabrikam", Role.ADMIN)
    teams = Teams(bot_client, connector, who)

    sent = await teams.say("subscriptions")
    card = sent[0]["attachments"][0]["content"]
    assert sent[0]["conversation"]["id"] == teams.conversation_id
    details = next(b for b in buttons(card) if b["verb"] == "subscription.details")
    status, body = await teams.click("subscription.details", details["data"])
    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"

    ids = await runtime.bot.notifier.send(who.user_id, [Reply(text="Your change was applied.")])
    assert ids and connector.take()[0]["text"] == "Your change was applied."
    assert await runtime.bot.notifier.update(who.user_id, ids[0], Reply(text="edited"))
    assert connector.updates[-1]["text"] == "edited"
    assert runtime.adapter.connector.sessions_created == 1


async def test_a_raw_authorization_header_cannot_reach_a_turn(bot_client):
    """process_activity only takes what bot.auth produced; a header string would skip the check."""
    adapter = bot_client.server.app[RUNTIME].adapter

    async def logic(turn_context):
        raise AssertionError("the turn ran")

    with pytest.raises(TypeError):
        await adapter.process_activity("Bearer whatever", Activity(type="message"), logic)


async def test_a_failing_connector_gets_the_apology_path_not_a_500(bot_client, demo_db, connector):
    """A reply the Bot Connector refuses (403 blocked) ends in on_turn_error; the request still gets 201/200."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    async def blocked(request):
        return web.json_response({"error": {"code": "ConversationBlockedByUser", "message": "blocked"}}, status=403)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", blocked)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        who = await person(demo_db, "fabrikam", Role.VIEW)
        teams = Teams(bot_client, connector, who)
        activity = teams.activity("message", text="dashboard")
        activity["serviceUrl"] = str(server.make_url("/"))
        response = await teams.post(activity)
        assert response.status in (200, 201)
    finally:
        await server.close()


class TenantRecorder:
    """Stands in for BotConnector to see which tenant each outbound call is paced under."""

    def __init__(self) -> None:
        from bot.auth import ServiceUrlPolicy

        self.policy = ServiceUrlPolicy(allow_loopback=True)
        self.calls: list[tuple[str, str | None, bool]] = []

    async def send(self, service_url, conversation_id, activity, *, reply_to_id=None, tenant_id=None, background=False):
        self.calls.append(("send", tenant_id, background))
        return "id-1"

    async def update(self, service_url, conversation_id, activity_id, activity, *, tenant_id=None, background=False):
        self.calls.append(("update", tenant_id, background))
        return activity_id

    async def delete(self, service_url, conversation_id, activity_id, *, tenant_id=None, background=False):
        self.calls.append(("delete", tenant_id, background))


async def test_outbound_calls_name_the_conversations_tenant():
    """conversation.tenantId, else the incoming activity's channelData.tenant.id; proactive turns
    take it from the stored reference. The connector paces Teams' 30 requests/s per tenant by it."""
    from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference
    from botframework.connector.auth import ClaimsIdentity

    recorder = TenantRecorder()
    adapter = SeatdeskAdapter(recorder)

    async def reply_update_delete(turn_context):
        sent = await turn_context.send_activity("hello")
        await turn_context.update_activity(Activity(type="message", id=sent.id, text="edited"))
        await turn_context.delete_activity(sent.id)

    def incoming(conversation: ConversationAccount, channel_data=None) -> Activity:
        return Activity(
            type="message", text="hi", service_url="http://127.0.0.1:9/", channel_id="msteams", conversation=conversation,
            from_property=ChannelAccount(id="29:user"), recipient=ChannelAccount(id="28:bot"), channel_data=channel_data,
        )

    identity = ClaimsIdentity({}, True)
    await adapter.process_activity(identity, incoming(ConversationAccount(id="a:1", tenant_id="tenant-1")), reply_update_delete)
    await adapter.process_activity(identity, incoming(ConversationAccount(id="a:2"), {"tenant": {"id": "tenant-2"}}), reply_update_delete)
    # As Teams sends it: botbuilder keeps "tenantId" only in additional_properties (it expects "tenantID").
    wire = Activity().deserialize(
        {"type": "message", "serviceUrl": "http://127.0.0.1:9/", "channelId": "msteams", "from": {"id": "29:user"},
         "recipient": {"id": "28:bot"}, "conversation": {"id": "a:4", "tenantId": "tenant-4"}}
    )
    await adapter.process_activity(identity, wire, reply_update_delete)
    reference = ConversationReference(
        conversation=ConversationAccount(id="a:3", tenant_id="tenant-3"), service_url="http://127.0.0.1:9/", channel_id="msteams",
        bot=ChannelAccount(id="28:bot"), user=ChannelAccount(id="29:user"),
    )
    await adapter.continue_conversation(reference, reply_update_delete, "")
    # Only the proactive turn's calls are background: they leave part of the tenant's limit to replies.
    assert recorder.calls == [
        (call, tenant, tenant == "tenant-3")
        for tenant in ("tenant-1", "tenant-2", "tenant-4", "tenant-3")
        for call in ("send", "update", "delete")
    ]


async def test_a_finished_turn_is_freed_at_once_not_by_the_garbage_collector():
    """botbuilder's TurnContext._emit makes a self-referencing closure per send; without it a turn's
    objects (activity, state, cards) go when the turn does, and the collector has far less to do."""
    import gc
    import weakref

    from botbuilder.schema import ChannelAccount, ConversationAccount
    from botframework.connector.auth import ClaimsIdentity

    adapter = SeatdeskAdapter(TenantRecorder())
    contexts = []

    async def reply_update_delete(turn_context):
        contexts.append(weakref.ref(turn_context))
        sent = await turn_context.send_activity("hello")
        await turn_context.update_activity(Activity(type="message", id=sent.id, text="edited"))
        await turn_context.delete_activity(sent.id)

    incoming = Activity(
        type="message", text="hi", service_url="http://127.0.0.1:9/", channel_id="msteams", conversation=ConversationAccount(id="a:1"),
        from_property=ChannelAccount(id="29:user"), recipient=ChannelAccount(id="28:bot"),
    )
    gc.disable()
    try:
        await adapter.process_activity(ClaimsIdentity({}, True), incoming, reply_update_delete)
        assert contexts and contexts[0]() is None
    finally:
        gc.enable()
