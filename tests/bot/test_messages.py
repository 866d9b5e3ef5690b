"""Teams-shaped activities POSTed to the running app's /api/messages; replies read from a recording
Bot Connector on 127.0.0.1 (they are POSTed to the activity's serviceUrl, as in Teams)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from services.models import ConversationRef, Customer, Role, Subscription
from tests.conftest import Teams, buttons, card_text, person


@pytest.fixture
async def fabrikam_admin(demo_db):
    return await person(demo_db, "fabrikam", Role.ADMIN)


async def _teams(bot_client, connector, demo_db, customer="fabrikam", role=Role.ADMIN, **kw) -> Teams:
    return Teams(bot_client, connector, await person(demo_db, customer, role, **kw))


def _cards(activities):
    return [a["content"] for activity in activities for a in activity.get("attachments") or []]


async def _expected_overview(db, customer_key, clock):
    from services import subscriptions

    async with db() as session:
        customer = (await session.execute(select(Customer).where(Customer.key == customer_key))).scalar_one()
        return customer, await subscriptions.overview(session, customer.id, clock.now())


async def test_install_sends_one_welcome_card_naming_company_and_role(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db, role=Role.MODIFY)
    sent = await teams.install()
    cards = _cards(sent)
    assert len(cards) == 1
    text = card_text(cards[0])
    assert "Welcome to Seatdesk" in text
    assert "Fabrikam GmbH" in text and "Modify" in text
    assert teams.who.name in text
    # Teams also sends conversationUpdate on install: still one welcome per conversation.
    again = await teams.post(teams.activity("conversationUpdate", membersAdded=[{"id": "28:seatdesk-bot"}]))
    assert again.status in (200, 201)
    assert connector.take() == []


async def test_dashboard_shows_the_customers_figures(bot_client, connector, demo_db, clock):
    teams = await _teams(bot_client, connector, demo_db)
    customer, expected = await _expected_overview(demo_db, "fabrikam", clock)
    for phrase in ("dashboard", "What do we have?"):
        cards = _cards(await teams.say(phrase))
        assert len(cards) == 1
        text = card_text(cards[0])
        assert f"{customer.name}: Microsoft 365 at a glance" in text
        assert str(expected.active_subscriptions) in text
        assert f"{expected.active_licenses:,}" in text
        assert f"{expected.ending_soon} ({expected.ending_soon_not_renewing} will not renew)" in text
        assert "Monthly cost" in text  # admins see costs
    assert expected.active_trials >= 1 and expected.pending_changes >= 1 and expected.ending_soon >= 1


async def test_view_role_sees_no_costs(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db, role=Role.VIEW)
    text = card_text(_cards(await teams.say("dashboard"))[0])
    assert "Monthly cost" not in text and "€" not in text


async def test_subscription_list_groups_addons_and_pages(bot_client, connector, demo_db, clock):
    teams = await _teams(bot_client, connector, demo_db)
    cards = _cards(await teams.say("subscriptions"))
    assert len(cards) == 1
    text = card_text(cards[0])
    assert "↳" in text  # add-ons are shown under their base subscription
    detail_buttons = [b for b in buttons(cards[0]) if b["verb"] == "subscription.details"]
    assert detail_buttons
    async with demo_db() as session:
        total = (
            await session.execute(
                select(func.count(Subscription.id)).join(Customer, Customer.id == Subscription.customer_id).where(Customer.key == "fabrikam")
            )
        ).scalar_one()
    match = re.search(r"Page 1 of (\d+) · (\d+) subscriptions", text)
    assert match and int(match.group(2)) == total
    if int(match.group(1)) > 1:
        status, body = await teams.click("subscriptions.list", {"page": 2})
        assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
        assert "Page 2 of" in card_text(body["value"])


async def test_details_button_answers_the_invoke_with_the_details_card(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    card = _cards(await teams.say("subscriptions"))[0]
    button = next(b for b in buttons(card) if b["verb"] == "subscription.details")
    status, body = await teams.click(button["verb"], button["data"])
    assert status == 200
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    text = card_text(body["value"])
    for fact in ("Status", "Seats", "Term and billing", "Trial", "Started", "Term ends (inclusive)", "Auto-renew", "Cancellation window", "Price per seat", "Monthly cost", "Scheduled changes", "Recent changes"):
        assert fact in text, fact


async def test_details_for_modify_role_hides_prices(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db, role=Role.MODIFY)
    card = _cards(await teams.say("subscriptions"))[0]
    button = next(b for b in buttons(card) if b["verb"] == "subscription.details")
    _, body = await teams.click(button["verb"], button["data"])
    text = card_text(body["value"])
    assert "Visible to the finance and admin roles" in text and "€" not in text


async def test_unknown_user_gets_a_polite_sentence_and_no_data(bot_client, connector, demo_db):
    known = await person(demo_db, "fabrikam", Role.ADMIN)
    stranger = type(known)(known.tenant_id, "00000000-1111-2222-3333-444444444444", "Stranger", "fabrikam", 0)
    teams = Teams(bot_client, connector, stranger)
    for sent in (await teams.install(), await teams.say("dashboard")):
        assert len(sent) == 1 and not sent[0].get("attachments")
        assert "not registered" in sent[0]["text"] and "Contoso IT Services" in sent[0]["text"]
        assert "Fabrikam" not in sent[0]["text"]
    status, body = await teams.click("overview")
    assert status == 200 and body["type"] == "application/vnd.microsoft.activity.message"
    assert "not registered" in body["value"]


async def test_user_of_a_tenant_seatdesk_does_not_serve(bot_client, connector, demo_db):
    known = await person(demo_db, "fabrikam", Role.ADMIN)
    outsider = type(known)("99999999-9999-9999-9999-999999999999", known.aad_object_id, "Outsider", "x", 0)
    sent = await Teams(bot_client, connector, outsider).say("subscriptions")
    assert len(sent) == 1 and "not served by Seatdesk" in sent[0]["text"] and not sent[0].get("attachments")


async def test_tenant_a_cannot_see_tenant_b_subscription(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db, customer="fabrikam")
    async with demo_db() as session:
        northwind_ids = (
            await session.execute(
                select(Subscription.id, Subscription.provider_id).join(Customer, Customer.id == Subscription.customer_id).where(Customer.key == "northwind")
            )
        ).all()
    assert northwind_ids
    for sub_id, provider_id in northwind_ids:
        status, body = await teams.click("subscription.details", {"id": sub_id})
        assert status == 200 and body["type"] == "application/vnd.microsoft.activity.message"
        assert "can't find that subscription" in body["value"]
        assert provider_id not in str(body)
    # The same through the Action.Submit fallback (a message with a value).
    sent = await teams.post(teams.activity("message", value={"verb": "subscription.details", "id": northwind_ids[0][0]}))
    assert sent.status in (200, 201)
    replies = connector.take()
    assert len(replies) == 1 and "can't find that subscription" in replies[0]["text"]
    assert "Northwind" not in str(replies)


async def test_forged_or_malformed_invokes_get_a_clear_answer_never_a_500(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    cases = [
        {"action": {"type": "Action.Execute", "verb": "subscription.details", "data": {"id": "1; DROP TABLE"}}},
        {"action": {"type": "Action.Execute", "verb": "subscription.details", "data": {"id": 10**20}}},
        {"action": {"type": "Action.Execute", "verb": "subscription.details", "data": {}}},
        {"action": {"type": "Action.Execute", "verb": "no.such.verb", "data": {}}},
        {"action": {"type": "Action.Execute", "verb": "subscriptions.list", "data": {"page": True}}},
        {"action": "not an object"},
        {},
    ]
    for value in cases:
        response = await teams.post(teams.activity("invoke", name="adaptiveCard/action", value=value))
        assert response.status == 200, value
        body = await response.json()
        assert body["type"] in ("application/vnd.microsoft.activity.message", "application/vnd.microsoft.error"), value
        message = body["value"] if isinstance(body["value"], str) else body["value"]["message"]
        assert "nothing was done" in message


@pytest.mark.parametrize(
    "raw,content_type,status",
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"type": "message"}', "application/json", 400),
        (b'{"text": "hi"}', "application/json", 400),
        (b"hello", "text/plain", 415),
    ],
)
async def test_malformed_http_bodies_get_4xx(bot_client, raw, content_type, status):
    response = await bot_client.post("/api/messages", data=raw, headers={"Content-Type": content_type})
    assert response.status == status
    assert "error" in await response.json()


async def test_conversation_reference_is_kept_for_proactive_messages(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    await teams.say("dashboard")
    await teams.say("subscriptions")
    async with demo_db() as session:
        refs = (await session.execute(select(ConversationRef).where(ConversationRef.user_id == teams.who.user_id))).scalars().all()
    assert len(refs) == 1
    assert refs[0].service_url == connector.url and refs[0].reference["conversation"]["id"] == teams.conversation_id


async def test_a_new_locale_is_stored_although_the_reference_is_unchanged(bot_client, connector, demo_db):
    """Guards the per-process memory of stored references: it skips the database only for what it stored."""
    from services.models import User

    teams = await _teams(bot_client, connector, demo_db)
    await teams.say("dashboard")
    await teams.say("dashboard")
    teams.locale = "de-DE"
    await teams.say("dashboard")
    async with demo_db() as session:
        assert (await session.get(User, teams.who.user_id)).locale == "de-DE"
    # Back in English: stored again, though this process stored the same reference before.
    teams.locale = "en-US"
    await teams.say("dashboard")
    async with demo_db() as session:
        assert (await session.get(User, teams.who.user_id)).locale == "en-US"


async def test_a_changed_reference_is_stored_again(bot_client, connector, demo_db):
    """The per-process memory compares what a reference is made of: a renamed person is stored anew."""
    from dataclasses import replace

    teams = await _teams(bot_client, connector, demo_db)
    await teams.say("dashboard")
    await teams.say("dashboard")
    teams.who = replace(teams.who, name="Renamed Person")
    await teams.say("dashboard")
    async with demo_db() as session:
        ref = (await session.execute(select(ConversationRef).where(ConversationRef.user_id == teams.who.user_id))).scalar_one()
    assert ref.reference["user"]["name"] == "Renamed Person"


async def test_partner_staff_chooses_a_customer_first(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db, customer="contoso", role=Role.ADMIN, partner_staff=True)
    cards = _cards(await teams.say("dashboard"))
    assert len(cards) == 1 and "Which customer are you working for?" in card_text(cards[0])
    status, body = await teams.click("customer.act_for", {"customer": "northwind"})
    assert status == 200 and "Acting for **Northwind Traders**" in card_text(body["value"])
    text = card_text(_cards(await teams.say("dashboard"))[0])
    assert "Northwind Traders: Microsoft 365 at a glance" in text
    # An ordinary customer admin cannot act for another customer.
    admin = await _teams(bot_client, connector, demo_db)
    status, body = await admin.click("customer.act_for", {"customer": "northwind"})
    assert "Only partner staff" in body["value"]
    assert "Fabrikam GmbH" in card_text(_cards(await admin.say("dashboard"))[0])


async def test_unknown_text_gets_help(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    card = _cards(await teams.say("blorp the frobnicator"))[0]
    assert "Sorry, I didn't catch that" in card_text(card)
    assert {b["verb"] for b in buttons(card)} >= {"overview", "subscriptions.list"}


async def test_health_endpoint(bot_client):
    response = await bot_client.get("/healthz")
    assert response.status == 200 and (await response.json())["database"] == "ok"


async def test_simultaneous_install_activities_welcome_once(bot_client, connector, demo_db):
    """Teams (and the Playground) send installationUpdate and conversationUpdate at the same moment."""
    import asyncio

    teams = await _teams(bot_client, connector, demo_db)
    install = teams.activity("installationUpdate", action="add")
    update = teams.activity("conversationUpdate", membersAdded=[{"id": "29:someone"}, {"id": "28:seatdesk-bot"}])
    responses = await asyncio.gather(teams.post(install), teams.post(update))
    assert all(r.status in (200, 201) for r in responses)
    assert len(_cards(connector.take())) == 1


async def test_a_retried_message_is_answered_once_even_after_a_restart(bot_client, connector, demo_db, settings, engine, clock):
    """Teams retries the same activity id when it thinks the bot was too slow."""
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app

    teams = await _teams(bot_client, connector, demo_db)
    activity = teams.activity("message", text="dashboard")
    for _ in range(2):
        assert (await teams.post(activity)).status in (200, 201)
    assert len(connector.take()) == 1
    restarted = TestClient(TestServer(create_app(settings, clock=clock, engine=engine), host="127.0.0.1"))
    await restarted.start_server()
    try:
        assert (await restarted.post("/api/messages", json=activity)).status in (200, 201)
    finally:
        await restarted.close()
    assert connector.take() == []
