"""Licence flows through /api/messages (card verbs) with the real Graph client against the local Graph,
handed to the flows through FlowContext.graph (the seam bot/app.py fills when Graph is configured)."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bot.handler import SeatdeskBot
from dialogs import licences
from services.models import Operation, Product, Role
from tests.conftest import Teams, buttons, card_text, person
from tests.partnercenter.conftest import FABRIKAM

E3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"  # SPE_E3
VISIO = "c5928f49-12ba-48f7-ada3-0d743a3601d5"  # VISIOCLIENT
MEGAN = {"id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd", "displayName": "Megan Bowen", "givenName": "Megan", "userPrincipalName": "MeganB@fabrikam.de"}
ALEX = {"id": "4782e723-f4f4-4af3-a76e-25e3bab0d896", "displayName": "Alex Wilber", "givenName": "Alex", "userPrincipalName": "AlexW@fabrikam.de"}


def _wire(monkeypatch, graph):
    original = SeatdeskBot._context

    async def with_graph(self, turn_context, identity):
        ctx = await original(self, turn_context, identity)
        ctx.graph = graph
        return ctx

    monkeypatch.setattr(SeatdeskBot, "_context", with_graph)


@pytest.fixture
async def tenant(fake, demo_db):
    fake.skus[FABRIKAM] = [
        {"capabilityStatus": "Enabled", "skuId": E3, "skuPartNumber": "SPE_E3", "prepaidUnits": {"enabled": 3, "suspended": 0, "warning": 0, "lockedOut": 0}, "appliesTo": "User"},
        {"capabilityStatus": "Enabled", "skuId": VISIO, "skuPartNumber": "VISIOCLIENT", "prepaidUnits": {"enabled": 5, "suspended": 0, "warning": 0, "lockedOut": 0}, "appliesTo": "User"},
    ]
    fake.users[FABRIKAM] = [MEGAN, ALEX]
    fake.licences[ALEX["id"]] = {VISIO, E3}
    async with demo_db() as session, session.begin():
        await session.execute(update(Product).where(Product.key == "m365-e3").values(sku_part_number="SPE_E3"))
        await session.execute(update(Product).where(Product.key == "visio-p2").values(graph_sku_id=VISIO))
    return fake


async def _admin(bot_client, connector, db):
    return Teams(bot_client, connector, await person(db, "fabrikam", Role.ADMIN))


async def test_without_graph_the_licence_verbs_say_so(monkeypatch, bot_client, connector, demo_db):
    _wire(monkeypatch, None)
    teams = await _admin(bot_client, connector, demo_db)
    _, body = await teams.click("licences.who", {"product": "Visio"})
    assert "Licence assignment is not connected" in str(body)


async def test_who_has_visio(monkeypatch, tenant, graph, bot_client, connector, demo_db):
    _wire(monkeypatch, graph)
    teams = await _admin(bot_client, connector, demo_db)
    _, body = await teams.click("licences.who", {"product": "Visio"})
    text = card_text(body["value"])
    assert "Alex Wilber" in text and "Megan" not in text and "1 of 5 seats are assigned" in text


async def test_give_megan_an_e3_licence_once(monkeypatch, tenant, graph, bot_client, connector, demo_db):
    _wire(monkeypatch, graph)
    teams = await _admin(bot_client, connector, demo_db)
    _, body = await teams.click("licences.assign.start", {"product": "Microsoft 365 E3", "names": ["Megan"]})
    confirm_card = body["value"]
    assert "Megan Bowen" in card_text(confirm_card) and "2 of 3 seats are free" in card_text(confirm_card)
    data = next(b for b in buttons(confirm_card) if b["verb"] == "licences.assign.confirm")["data"]
    _, first = await teams.click("licences.assign.confirm", data)
    _, second = await teams.click("licences.assign.confirm", data)
    assert "assigned to Megan Bowen" in card_text(first["value"]) and card_text(first["value"]) == card_text(second["value"])
    assert tenant.assign_calls == 1 and E3 in tenant.licences[MEGAN["id"]]
    body = next(r for r in tenant.requests if r.path.endswith("/assignLicense")).body
    assert body == {"addLicenses": [{"skuId": E3, "disabledPlans": []}], "removeLicenses": []}


async def test_remove_visio_from_alex_and_only_users_of_the_tenant(monkeypatch, tenant, graph, bot_client, connector, demo_db):
    _wire(monkeypatch, graph)
    teams = await _admin(bot_client, connector, demo_db)
    _, body = await teams.click("licences.assign.start", {"product": "Visio", "names": ["Alex"], "remove": True})
    data = next(b for b in buttons(body["value"]) if b["verb"] == "licences.assign.confirm")["data"]
    forged = {**data, "op": data["op"] + "x", "users": ["0b6b7b1e-0000-4000-8000-000000000000"]}  # not a user of this tenant
    _, body = await teams.click("licences.assign.confirm", forged)
    assert "not valid" in str(body) and tenant.assign_calls == 0
    _, body = await teams.click("licences.assign.confirm", data)
    assert "removed from Alex Wilber" in card_text(body["value"]) and VISIO not in tenant.licences[ALEX["id"]]


async def test_only_admins_assign(monkeypatch, tenant, graph, bot_client, connector, demo_db):
    _wire(monkeypatch, graph)
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.MODIFY))
    _, body = await teams.click("licences.assign.start", {"product": "Microsoft 365 E3", "names": ["Megan"]})
    assert "assign or remove licences" in str(body) and tenant.assign_calls == 0


async def test_unassigned_seats_offer_a_reduction_at_renewal(monkeypatch, tenant, graph, bot_client, connector, demo_db):
    _wire(monkeypatch, graph)
    teams = await _admin(bot_client, connector, demo_db)
    replies = await teams.say("unused licences")
    card = replies[0]["attachments"][0]["content"]
    assert "You pay for **4** unassigned seats of **" in card_text(card)
    review = next(b for b in buttons(card) if b["verb"] == "seats.review")
    assert review["data"]["timing"] == "at_renewal" and review["data"]["quantity"] >= 1


async def test_no_consent_is_a_sentence(monkeypatch, tenant, graph, bot_client, connector, demo_db):
    _wire(monkeypatch, graph)
    tenant.unconsented.add(FABRIKAM)
    teams = await _admin(bot_client, connector, demo_db)
    _, body = await teams.click("licences.who", {"product": "Visio"})
    assert "has to consent first" in str(body)


async def test_typed_requests_become_the_card_flows():
    assert await licences.understand(None, "who has visio") == ("licences.who", {"product": "visio"})
    assert await licences.understand(None, "give megan an e3 licence") == ("licences.assign.start", {"product": "e3", "names": ["megan"], "remove": False})
    assert await licences.understand(None, "remove visio from alex and megan") == ("licences.assign.start", {"product": "visio", "names": ["alex", "megan"], "remove": True})
    assert await licences.understand(None, "add 5 seats to visio") is None
