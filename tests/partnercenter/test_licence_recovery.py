"""A licence assignment or removal whose process died between recording the pending Operation and
recording Graph's answer: within the grace period a click is told it is still being carried out;
after it, the click (or the worker, if nobody clicks) reads each person's licences in Graph, asks
Graph again only where the change is not in effect, and records the receipt once. Against the local
Graph with the real client; the crash is a Graph port that stops right before or after the call."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.worker import run_once
from services import audit, licence_assignments, operations
from services.graph import GraphUser
from services.models import AuditEntry, Operation, Role, User
from services.providers import LedgerProvider
from tests.conftest import Teams, buttons, card_text, person
from tests.partnercenter.test_in_flight_changes import Notices, ProcessKilled
from tests.partnercenter.test_licences import E3, MEGAN, VISIO, ALEX, _wire, tenant  # noqa: F401 - the tenant fixture


class Killed:
    """The real Graph client, but the process "dies" right before or right after assignLicense."""

    def __init__(self, graph, moment: str) -> None:
        self._graph = graph
        self.moment = moment

    def __getattr__(self, name):
        return getattr(self._graph, name)

    async def assign(self, tenant, users, **kwargs):
        if self.moment == "before":
            raise ProcessKilled()
        await self._graph.assign(tenant, users, **kwargs)
        raise ProcessKilled()


async def _confirmation(teams: Teams, product: str, name: str, *, remove: bool = False) -> dict:
    _, body = await teams.click("licences.assign.start", {"product": product, "names": [name], "remove": remove})
    return next(b for b in buttons(body["value"]) if b["verb"] == "licences.assign.confirm")["data"]


async def _killed(db, graph, clock, who, data: dict, *, product: str, sku: str, user: dict, moment: str) -> None:
    """What the confirmation does, as far as it gets before the process dies."""
    async with db() as session:
        actor = audit.Actor(who.name, who.user_id, (await session.get(User, who.user_id)).customer_id)
    assignment = licence_assignments.Assignment(
        product, sku, bool(data.get("remove")), (GraphUser(user["id"], user["displayName"], user["userPrincipalName"]),), actor, clock.now()
    )
    with pytest.raises(ProcessKilled):
        await licence_assignments.carry_out(db, Killed(graph, moment), op=data["op"], customer_id=actor.customer_id, assignment=assignment, unavailable="-")


async def _pending(db, op: str) -> Operation:
    async with db() as session:
        return (await session.execute(select(Operation).where(Operation.key == op))).scalar_one()


async def _audited(db, action: str) -> list[AuditEntry]:
    async with db() as session:
        return list((await session.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))).scalars())


@pytest.mark.parametrize("moment", ["after", "before"])
async def test_a_click_after_the_grace_period_finishes_it_once(moment, monkeypatch, tenant, graph, bot_client, connector, demo_db, clock):  # noqa: F811
    _wire(monkeypatch, graph)
    who = await person(demo_db, "fabrikam", Role.ADMIN)
    teams = Teams(bot_client, connector, who)
    data = await _confirmation(teams, "Microsoft 365 E3", "Megan")
    await _killed(demo_db, graph, clock, who, data, product="Microsoft 365 E3", sku=E3, user=MEGAN, moment=moment)
    assert (await _pending(demo_db, data["op"])).status == operations.PENDING
    assert tenant.assign_calls == (1 if moment == "after" else 0) and (E3 in tenant.licences.get(MEGAN["id"], set())) == (moment == "after")

    _, body = await teams.click("licences.assign.confirm", data)  # at once: its process might still be asking Graph
    assert "still being carried out" in card_text(body["value"])
    clock.advance(operations.GRACE)
    _, body = await teams.click("licences.assign.confirm", data)
    receipt = card_text(body["value"])
    assert "assigned to Megan Bowen" in receipt and (await _pending(demo_db, data["op"])).reference in receipt
    assert tenant.assign_calls == 1 and E3 in tenant.licences[MEGAN["id"]], "Graph was asked once in all"
    [entry] = await _audited(demo_db, "licence_assign")
    assert (entry.outcome, entry.target_id, entry.actor) == ("applied", MEGAN["id"], who.name)
    _, again = await teams.click("licences.assign.confirm", data)
    assert card_text(again["value"]) == receipt and len(await _audited(demo_db, "licence_assign")) == 1


async def test_a_removal_left_over_is_checked_against_graph(monkeypatch, tenant, graph, bot_client, connector, demo_db, clock):  # noqa: F811
    _wire(monkeypatch, graph)
    who = await person(demo_db, "fabrikam", Role.ADMIN)
    teams = Teams(bot_client, connector, who)
    data = await _confirmation(teams, "Visio", "Alex", remove=True)
    await _killed(demo_db, graph, clock, who, data, product="Visio Plan 2", sku=VISIO, user=ALEX, moment="after")
    assert VISIO not in tenant.licences[ALEX["id"]] and tenant.assign_calls == 1
    clock.advance(operations.GRACE + timedelta(seconds=1))
    _, body = await teams.click("licences.assign.confirm", data)
    assert "removed from Alex Wilber" in card_text(body["value"]) and tenant.assign_calls == 1


async def test_graph_away_during_the_check_leaves_it_for_later(monkeypatch, tenant, graph, bot_client, connector, demo_db, clock):  # noqa: F811
    _wire(monkeypatch, graph)
    who = await person(demo_db, "fabrikam", Role.ADMIN)
    teams = Teams(bot_client, connector, who)
    data = await _confirmation(teams, "Microsoft 365 E3", "Megan")
    await _killed(demo_db, graph, clock, who, data, product="Microsoft 365 E3", sku=E3, user=MEGAN, moment="before")
    clock.advance(operations.GRACE)
    tenant.fail("GET", rf"/v1.0/users/{MEGAN['id']}$", status=503, times=100)
    _, body = await teams.click("licences.assign.confirm", data)
    assert "can't tell yet whether this licence change went through" in card_text(body["value"]) and tenant.assign_calls == 0
    assert (await _pending(demo_db, data["op"])).status == operations.PENDING
    tenant.faults.clear()
    _, body = await teams.click("licences.assign.confirm", data)
    assert "assigned to Megan Bowen" in card_text(body["value"]) and tenant.assign_calls == 1


async def test_the_worker_finishes_left_over_licence_changes_and_tells_the_person(tenant, graph, demo_db, clock):  # noqa: F811
    who = await person(demo_db, "fabrikam", Role.ADMIN)
    data = {"op": "left-over-licence-1"}
    await _killed(demo_db, graph, clock, who, data, product="Microsoft 365 E3", sku=E3, user=MEGAN, moment="after")
    notices = Notices()
    assert await run_once(demo_db, LedgerProvider(), clock, notices, graph=graph) == 0
    clock.advance(operations.GRACE)
    assert await run_once(demo_db, LedgerProvider(), clock, notices, graph=graph) == 1
    [(user_id, replies)] = notices.sent
    reference = (await _pending(demo_db, data["op"])).reference
    assert user_id == who.user_id and reference in replies[0].text and "Megan Bowen" in str(replies[1].card)
    assert tenant.assign_calls == 1 and len(await _audited(demo_db, "licence_assign")) == 1
    assert await run_once(demo_db, LedgerProvider(), clock, notices, graph=graph) == 0
    async with demo_db() as session:
        assert (await session.execute(select(func.count(Operation.id)).where(Operation.status == operations.PENDING))).scalar_one() == 0


async def test_one_left_pending_by_an_earlier_version_is_carried_out_from_the_card(monkeypatch, tenant, graph, bot_client, connector, demo_db, clock):  # noqa: F811
    """Before this recovery existed a pending licence Operation recorded nothing of what was asked:
    after the grace period it is dropped and the card's request is carried out as new."""
    _wire(monkeypatch, graph)
    who = await person(demo_db, "fabrikam", Role.ADMIN)
    teams = Teams(bot_client, connector, who)
    data = await _confirmation(teams, "Microsoft 365 E3", "Megan")
    async with demo_db() as session, session.begin():
        customer_id = (await session.get(User, who.user_id)).customer_id
        session.add(Operation(key=data["op"], customer_id=customer_id, user_id=who.user_id, kind="licences", reference="LIC-OLDSTYLE", status="pending", result={}, created_at=clock.now()))
    _, body = await teams.click("licences.assign.confirm", data)
    assert "still being carried out" in card_text(body["value"])
    clock.advance(operations.GRACE)
    _, body = await teams.click("licences.assign.confirm", data)
    assert "assigned to Megan Bowen" in card_text(body["value"]) and "LIC-OLDSTYLE" not in card_text(body["value"])
    assert tenant.assign_calls == 1 and len(await _audited(demo_db, "licence_assign")) == 1
