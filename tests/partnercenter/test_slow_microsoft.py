"""A slow Partner Center or Graph through /api/messages: the turn answers by its deadline, the PATCH or
the licence assignment goes out once however often Teams retries or the person clicks, and the
result updates the clicked card. The fake Microsoft holds the request (an Event) and the deadline
passes when the test says so: nothing sleeps."""
from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import select

from bot.app import RUNTIME
from services.graph import GraphClient
from services.models import Role, Subscription
from services.partnercenter import PartnerCenter, PartnerCenterProvider
from tests.conftest import Teams, buttons, card_text, person
from tests.partnercenter.conftest import FABRIKAM
from tests.partnercenter.test_licences import E3, MEGAN, _wire, tenant  # noqa: F401 - the tenant fixture

CARD_MESSAGE = "card-message-7"


@pytest.fixture
def patient_config(pc_config):
    # The held request must not time out in the client while the test looks at the turn's answer.
    return replace(pc_config, timeout_seconds=30)


@pytest.fixture
async def slow_pc(patient_config, tokens, sleeps):
    client = PartnerCenter.connect(patient_config, tokens, sleep=sleeps, jitter=lambda: 1.0)
    yield client
    await client.close()


@pytest.fixture
async def slow_graph(patient_config, tokens, sleeps):
    client = GraphClient.connect(patient_config, tokens, sleep=sleeps, jitter=lambda: 1.0)
    yield client
    await client.close()


def _click(teams: Teams, verb: str, data: dict) -> dict:
    action = {"type": "Action.Execute", "verb": verb, "data": {"verb": verb, **data}}
    return teams.activity("invoke", name="adaptiveCard/action", value={"action": action, "trigger": "manual"}, replyToId=CARD_MESSAGE)


async def _answer(teams: Teams, activity: dict) -> dict:
    response = await teams.post(activity)
    assert response.status == 200
    return await response.json()


async def test_a_held_partner_center_patch_is_sent_once_and_the_receipt_comes_later(fake, slow_pc, bot_client, connector, demo_db, deadline):
    bot = bot_client.server.app[RUNTIME].bot
    bot.provider = PartnerCenterProvider(slow_pc)
    async with demo_db() as session:
        sub = (await session.execute(select(Subscription).where(Subscription.provider_id == "FAB-M365E3-01"))).scalar_one()
    fake.add_subscription(
        FABRIKAM, sub.provider_id, offerId="CFQ7TTC0LFLZ:0002:CFQ7TTC0K8P5", quantity=sub.quantity, autoRenewEnabled=sub.auto_renew,
        status=sub.status.value, termDuration="P1Y", billingCycle="monthly", commitmentEndDate=f"{sub.commitment_end.isoformat()}T00:00:00Z",
        cancellationAllowedUntilDate=None,
    )
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.ADMIN))
    review = await _answer(teams, _click(teams, "seats.review", {"id": sub.id, "quantity": 140, "timing": "now"}))
    data = next(b for b in buttons(review["value"]) if b["verb"] == "seats.confirm")["data"]
    gate = fake.hold("PATCH", r"/subscriptions/")

    confirmation = _click(teams, "seats.confirm", data)
    answering = asyncio.create_task(_answer(teams, confirmation))
    await gate.reached.wait()
    deadline.passed.set()
    assert "provider is taking longer than usual" in card_text((await answering)["value"])
    for again in (confirmation, _click(teams, "seats.confirm", data)):  # Teams' retry, a second click
        assert "still being carried out" in card_text((await _answer(teams, again))["value"])

    gate.opened.set()
    await bot.idle()
    assert [r.method for r in fake.requests if "/subscriptions/" in r.path] == ["GET", "PATCH"]
    assert fake.patches_applied == 1 and fake.subscriptions[FABRIKAM][sub.provider_id]["quantity"] == 140
    [update] = connector.updates
    assert update["id"] == CARD_MESSAGE and "Seats 120 → 140" in card_text(update["attachments"][0]["content"])


async def test_a_held_licence_assignment_runs_once_and_updates_the_card(monkeypatch, tenant, slow_graph, bot_client, connector, demo_db, deadline):  # noqa: F811
    _wire(monkeypatch, slow_graph)
    bot = bot_client.server.app[RUNTIME].bot
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.ADMIN))
    start = await _answer(teams, _click(teams, "licences.assign.start", {"product": "Microsoft 365 E3", "names": ["Megan"]}))
    data = next(b for b in buttons(start["value"]) if b["verb"] == "licences.assign.confirm")["data"]
    gate = tenant.hold("POST", r"/assignLicense$")

    confirmation = _click(teams, "licences.assign.confirm", data)
    answering = asyncio.create_task(_answer(teams, confirmation))
    await gate.reached.wait()
    deadline.passed.set()
    assert "Microsoft 365 is taking longer than usual" in card_text((await answering)["value"])
    for again in (confirmation, _click(teams, "licences.assign.confirm", data)):
        assert "still being carried out" in card_text((await _answer(teams, again))["value"])

    gate.opened.set()
    await bot.idle()
    assert tenant.assign_calls == 1 and E3 in tenant.licences[MEGAN["id"]]
    [update] = connector.updates
    assert update["id"] == CARD_MESSAGE and "assigned to Megan Bowen" in card_text(update["attachments"][0]["content"])
    assert connector.texts() == ["Finished: the card above now shows the result."]


async def test_slow_graph_reads_answer_later_as_a_new_message(monkeypatch, tenant, slow_graph, bot_client, connector, demo_db, deadline):  # noqa: F811
    _wire(monkeypatch, slow_graph)
    bot = bot_client.server.app[RUNTIME].bot
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.ADMIN))
    gate = tenant.hold("GET", r"/subscribedSkus$")
    answering = asyncio.create_task(_answer(teams, _click(teams, "licences.who", {"product": "Visio"})))
    await gate.reached.wait()
    deadline.passed.set()
    body = await answering
    assert body["type"] == "application/vnd.microsoft.activity.message" and "I'll post the result here" in body["value"]
    gate.opened.set()
    await bot.idle()
    assert connector.updates == []  # the clicked card was not touched, so the answer is a new message
    [posted] = connector.cards()
    assert "Alex Wilber" in card_text(posted)
