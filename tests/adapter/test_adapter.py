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
