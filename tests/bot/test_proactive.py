"""Proactive messages reach the person's stored conversation; earlier cards can be updated."""
from __future__ import annotations

from bot.app import RUNTIME
from dialogs.base import Reply
from services.models import Role
from tests.conftest import Teams, person


async def test_notice_and_update_reach_the_stored_conversation(bot_client, connector, demo_db):
    who = await person(demo_db, "northwind", Role.ADMIN)
    teams = Teams(bot_client, connector, who)
    await teams.say("hello")
    notifier = bot_client.server.app[RUNTIME].bot.notifier

    ids = await notifier.send(who.user_id, [Reply(text="Your change was applied."), Reply(card={"type": "AdaptiveCard", "version": "1.5", "body": []})])
    sent = connector.take()
    assert [a.get("text") for a in sent][0] == "Your change was applied."
    assert sent[1]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert all(a["conversation"]["id"] == teams.conversation_id for a in sent)
    assert len(ids) == 2

    assert await notifier.update(who.user_id, ids[1], Reply(text="updated"))
    assert connector.updates[-1]["text"] == "updated"


async def test_a_person_who_never_talked_to_seatdesk_is_not_messaged(bot_client, connector, demo_db):
    who = await person(demo_db, "northwind", Role.VIEW)
    notifier = bot_client.server.app[RUNTIME].bot.notifier
    assert await notifier.send(who.user_id, [Reply(text="hi")]) == []
    assert connector.take() == []
    # Whom a checkout names as approvers, before any card is sent (the cards go after the turn).
    talked = await person(demo_db, "northwind", Role.ADMIN)
    await Teams(bot_client, connector, talked).say("hello")
    assert await notifier.reachable([who.user_id, talked.user_id]) == {talked.user_id}
    assert connector.take() == []
