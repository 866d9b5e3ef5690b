"""Changing subscriptions through /api/messages: seats, auto-renew, cancel, scheduled changes,
exactly-once confirmation, stale cards, roles, and the worker carrying out due changes."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import RUNTIME
from bot.worker import run_once
from services.models import AuditEntry, ChangeStatus, Customer, Operation, Role, ScheduledChange, Subscription, SubscriptionStatus
from services.providers import LedgerProvider, ProviderError
from tests.conftest import Teams, buttons, card_text, person


async def _sub(db, provider_id: str) -> Subscription:
    async with db() as session:
        return (await session.execute(select(Subscription).where(Subscription.provider_id == provider_id))).scalar_one()


async def _teams(bot_client, connector, db, customer="fabrikam", role=Role.ADMIN) -> Teams:
    return Teams(bot_client, connector, await person(db, customer, role))


def _button(card, verb):
    return next(b for b in buttons(card) if b["verb"] == verb)


async def _confirm_card(teams, sub_id, quantity, timing="now", date=None):
    data = {"id": sub_id, "quantity": quantity, "timing": timing}
    if date:
        data["date"] = date
    status, body = await teams.click("seats.review", data)
    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive", body
    return body["value"]


async def test_details_card_buttons_follow_the_role(bot_client, connector, demo_db):
    sub = await _sub(demo_db, "FAB-M365E3-01")
    expected = {
        Role.VIEW: set(),
        Role.MODIFY: {"seats.start"},
        Role.FINANCE: {"seats.start"},
        Role.ADMIN: {"seats.start", "renewal.start", "cancel.start"},
    }
    for role, verbs in expected.items():
        teams = await _teams(bot_client, connector, demo_db, role=role)
        _, body = await teams.click("subscription.details", {"id": sub.id})
        change_verbs = {b["verb"] for b in buttons(body["value"])} & {"seats.start", "renewal.start", "cancel.start"}
        assert change_verbs == verbs, role


async def test_increase_now_from_form_to_receipt(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    _, form = await teams.click("seats.start", {"id": sub.id})
    assert "Change seats" in card_text(form["value"]) and any(i.get("id") == "quantity" for i in form["value"]["body"])
    card = await _confirm_card(teams, sub.id, 130)
    text = card_text(card)
    assert "from **120** to **130** seats" in text and "Takes effect now" in text and "→" in text  # cost shown to admins
    confirm = _button(card, "seats.confirm")
    status, body = await teams.click("seats.confirm", confirm["data"])
    receipt = card_text(body["value"])
    assert status == 200 and "Done" in receipt and "Seats 120 → 130" in receipt and "Reference CHG-" in receipt
    assert (await _sub(demo_db, "FAB-M365E3-01")).quantity == 130
    _, details = await teams.click("subscription.details", {"id": sub.id})
    assert "Seats 120 → 130" in card_text(details["value"])  # the change log on the details card


async def test_modify_role_sees_no_money_on_the_confirmation(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db, role=Role.MODIFY)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    text = card_text(await _confirm_card(teams, sub.id, 125))
    assert "Visible to the finance and admin roles" in text and "€" not in text


async def test_an_immediate_change_names_and_deletes_changes_scheduled_for_renewal(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-O365E3-01")
    card = await _confirm_card(teams, sub.id, 40)
    assert "deletes the changes already scheduled for renewal: 30 seats from" in card_text(card)
    _, body = await teams.click("seats.confirm", _button(card, "seats.confirm")["data"])
    assert "Removed from renewal: 30 seats" in card_text(body["value"])
    async with demo_db() as session:
        change = (await session.execute(select(ScheduledChange).where(ScheduledChange.reference == "SC-FAB-0001"))).scalar_one()
    assert change.status == ChangeStatus.WITHDRAWN


async def test_decrease_outside_the_window_explains_and_offers_renewal(bot_client, connector, demo_db, clock):
    teams = await _teams(bot_client, connector, demo_db, customer="northwind")
    sub = await _sub(demo_db, "NW-E5-001")  # 10 seats, 9 assigned, term started 14 months ago
    status, body = await teams.click("seats.review", {"id": sub.id, "quantity": 9, "timing": "now"})
    text = card_text(body["value"])
    assert "can't reduce seats" in text and "window closed on" in text and "next window opens at renewal" in text
    offer = _button(body["value"], "seats.review")
    assert offer["data"]["timing"] == "at_renewal" and "Schedule 9 seats at renewal instead" in offer["title"]
    _, body = await teams.click("seats.review", offer["data"])
    assert "Takes effect at renewal on" in card_text(body["value"])


async def test_a_decrease_below_assigned_seats_is_refused_first(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-E5SEC-01")
    _, body = await teams.click("seats.review", {"id": sub.id, "quantity": 20, "timing": "at_renewal"})
    assert "25 seats of Microsoft 365 E5 Security are assigned" in card_text(body["value"])


async def test_schedule_a_decrease_at_renewal(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-TPHONE-01")  # 40 seats, 38 assigned, window closed
    card = await _confirm_card(teams, sub.id, 38, timing="at_renewal")
    assert "Takes effect at renewal on" in card_text(card)
    _, body = await teams.click("seats.confirm", _button(card, "seats.confirm")["data"])
    assert "scheduled for" in card_text(body["value"])
    async with demo_db() as session:
        change = (await session.execute(select(ScheduledChange).where(ScheduledChange.subscription_id == sub.id))).scalar_one()
    assert change.new_quantity == 38 and change.status == ChangeStatus.PENDING
    assert (await _sub(demo_db, "FAB-TPHONE-01")).quantity == 40


async def test_decrease_inside_the_window_but_not_below_assigned(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-COPILOT-01")  # 10 seats, 9 assigned, bought 2 days ago
    _, body = await teams.click("seats.review", {"id": sub.id, "quantity": 8})
    assert "9 seats of Microsoft 365 Copilot are assigned" in card_text(body["value"])
    card = await _confirm_card(teams, sub.id, 9)
    assert "cancellation window is open until" in card_text(card)
    await teams.click("seats.confirm", _button(card, "seats.confirm")["data"])
    assert (await _sub(demo_db, "FAB-COPILOT-01")).quantity == 9


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("abc", '"abc" is not a number of seats'),
        ("", "is not a number of seats"),
        ("0", "needs at least one seat"),
        ("-3", "needs at least one seat"),
        ("2.5", "whole numbers"),
        ("99999999999", "far more seats"),
        ("1e400", "far more seats"),
        ("NaN", "is not a number"),
        ("120", "already has 120 seats"),
        ("10001", "at most 10000 seats"),
    ],
)
async def test_bad_quantities_get_a_sentence_on_the_form(bot_client, connector, demo_db, raw, expected):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    status, body = await teams.click("seats.review", {"id": sub.id, "quantity": raw})
    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    assert expected in card_text(body["value"])
    assert any(i.get("id") == "quantity" for i in body["value"]["body"])  # the form again
    assert (await _sub(demo_db, "FAB-M365E3-01")).quantity == 120


async def test_double_click_and_retried_activity_apply_once(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    data = _button(await _confirm_card(teams, sub.id, 121), "seats.confirm")["data"]
    first = await teams.click("seats.confirm", data)
    again = await teams.click("seats.confirm", data)
    # Teams retrying the very same activity (same id).
    action = {"type": "Action.Execute", "verb": "seats.confirm", "data": {"verb": "seats.confirm", **data}}
    retried = teams.activity("invoke", name="adaptiveCard/action", value={"action": action, "trigger": "manual"})
    responses = [await (await teams.post(retried)).json() for _ in range(2)]
    references = {card_text(b["value"]).split("Reference ")[1].split()[0] for b in [first[1], again[1], *responses]}
    assert len(references) == 1
    assert (await _sub(demo_db, "FAB-M365E3-01")).quantity == 121
    async with demo_db() as session:
        applied = (await session.execute(select(func.count(AuditEntry.id)).where(AuditEntry.action == "seats", AuditEntry.target_id == str(sub.id)))).scalar_one()
    assert applied == 1


async def test_concurrent_double_click_applies_once(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    data = _button(await _confirm_card(teams, sub.id, 122), "seats.confirm")["data"]
    results = await asyncio.gather(*(teams.click("seats.confirm", data) for _ in range(4)))
    assert all(status == 200 for status, _ in results)
    assert len({card_text(b["value"]).split("Reference ")[1].split()[0] for _, b in results}) == 1
    assert (await _sub(demo_db, "FAB-M365E3-01")).quantity == 122
    async with demo_db() as session:
        assert (await session.execute(select(func.count(Operation.id)))).scalar_one() == 1


async def test_a_change_cut_off_is_finished_by_the_next_click_and_holds_off_other_changes_meanwhile(bot_client, connector, demo_db):
    """The provider call ended without an answer (whether the change is in effect is unknown): the
    confirmation stays pending, another change of that subscription waits, and the card clicked
    again asks the provider again and ends with the receipt, once."""

    class CutOff(LedgerProvider):
        async def change_quantity(self, session, sub, quantity, *, key, now):
            raise ConnectionResetError("the connection was reset")

    runtime = bot_client.server.app[RUNTIME]
    runtime.bot.provider = CutOff()
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    data = _button(await _confirm_card(teams, sub.id, 124), "seats.confirm")["data"]
    other = _button(await _confirm_card(teams, sub.id, 126), "seats.confirm")["data"]
    _, body = await teams.click("seats.confirm", data)
    assert "something went wrong on my side" in str(body)
    _, body = await teams.click("seats.confirm", other)
    assert "Another change of M365 E3 Verwaltung is still being carried out" in str(body)

    runtime.bot.provider = LedgerProvider()
    _, body = await teams.click("seats.confirm", data)
    assert "Seats 120 → 124" in card_text(body["value"])
    assert (await _sub(demo_db, "FAB-M365E3-01")).quantity == 124
    async with demo_db() as session:
        applied = (await session.execute(select(func.count(AuditEntry.id)).where(AuditEntry.action == "seats", AuditEntry.outcome == "applied"))).scalar_one()
        operations = list((await session.execute(select(Operation.status))).scalars())
    assert applied == 1 and operations == ["done"]


async def test_a_stale_card_does_not_apply_its_old_intent(bot_client, connector, demo_db):
    admin = await _teams(bot_client, connector, demo_db)
    finance = await _teams(bot_client, connector, demo_db, role=Role.FINANCE)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    old_card = await _confirm_card(admin, sub.id, 150)
    newer = await _confirm_card(finance, sub.id, 125)
    await finance.click("seats.confirm", _button(newer, "seats.confirm")["data"])
    _, body = await admin.click("seats.confirm", _button(old_card, "seats.confirm")["data"])
    text = card_text(body["value"])
    assert "out of date" in text and "now has 125 seats" in text
    assert (await _sub(demo_db, "FAB-M365E3-01")).quantity == 125


async def test_forged_invokes_are_refused(bot_client, connector, demo_db):
    modify = await _teams(bot_client, connector, demo_db, role=Role.MODIFY)
    view = await _teams(bot_client, connector, demo_db, role=Role.VIEW)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    northwind = await _sub(demo_db, "NW-BP-001")
    data = _button(await _confirm_card(modify, sub.id, 123), "seats.confirm")["data"]
    # A view user clicking a forwarded confirmation card.
    _, body = await view.click("seats.confirm", data)
    assert "Your role (View) can't change seat quantities" in body["value"] and "Ask" in body["value"]
    # A modify user raising their role by editing the payload.
    _, body = await modify.click("renewal.confirm", {"id": sub.id, "v": sub.version, "enable": False, "op": "forged-op-123", "role": "admin"})
    assert "can't switch auto-renew" in body["value"]
    _, body = await modify.click("cancel.confirm", {"id": sub.id, "v": sub.version, "op": "forged-op-456", "reason": "other"})
    assert "can't cancel" in body["value"]
    # A changed quantity beyond the offer's maximum is checked again on the server.
    _, body = await modify.click("seats.confirm", {**data, "quantity": 10_001, "price": "0.01"})
    assert "at most 10000 seats" in body["value"]
    # Another tenant's subscription id.
    _, body = await modify.click("seats.confirm", {**data, "id": northwind.id, "v": northwind.version})
    assert "can't find that subscription" in body["value"] and "Northwind" not in str(body)
    # A malformed op id.
    _, body = await modify.click("seats.confirm", {**data, "op": 12})
    assert "nothing was done" in body["value"]
    assert (await _sub(demo_db, "FAB-M365E3-01")).quantity == 120
    assert (await _sub(demo_db, "NW-BP-001")).quantity == 48
    async with demo_db() as session:
        refused = (await session.execute(select(func.count(AuditEntry.id)).where(AuditEntry.outcome == "refused"))).scalar_one()
    assert refused >= 1


async def test_auto_renew_off_cancels_renewal_changes_and_renewal_changes_need_it(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-O365E3-01")
    _, body = await teams.click("renewal.start", {"id": sub.id, "enable": False})
    text = card_text(body["value"])
    assert "auto-renew **off**" in text and "Changes scheduled for renewal will be cancelled: 30 seats" in text
    _, body = await teams.click("renewal.confirm", _button(body["value"], "renewal.confirm")["data"])
    assert "Auto-renew switched off" in card_text(body["value"])
    after = await _sub(demo_db, "FAB-O365E3-01")
    assert after.auto_renew is False
    _, body = await teams.click("seats.review", {"id": sub.id, "quantity": 20, "timing": "at_renewal"})
    assert "Changes at renewal need auto-renew on" in card_text(body["value"])


async def test_cancel_inside_the_window_with_a_reason(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db, customer="northwind")
    sub = await _sub(demo_db, "NW-BB-001")
    _, body = await teams.click("cancel.start", {"id": sub.id})
    assert "cancellation window is open until" in card_text(body["value"])
    data = _button(body["value"], "cancel.confirm")["data"]
    _, bad = await teams.click("cancel.confirm", {**data, "reason": "because"})
    assert "choose one of the reasons" in bad["value"]
    _, body = await teams.click("cancel.confirm", {**data, "reason": "bought_by_mistake", "note": "<b>wrong</b> product"})
    assert "Cancelled (bought by mistake)" in card_text(body["value"])
    assert (await _sub(demo_db, "NW-BB-001")).status == SubscriptionStatus.DELETED


async def test_cancel_outside_the_window_offers_auto_renew_off(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db, customer="northwind")
    sub = await _sub(demo_db, "NW-BS-001")
    _, body = await teams.click("cancel.start", {"id": sub.id})
    text = card_text(body["value"])
    assert "can't be cancelled now" in text and "only within 7 days" in text
    assert _button(body["value"], "renewal.start")["data"]["enable"] is False


async def test_scheduled_list_and_withdraw(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db, customer="northwind", role=Role.MODIFY)
    cards = [a["content"] for act in await teams.say("scheduled changes") for a in act.get("attachments") or []]
    text = card_text(cards[0])
    assert "SC-NW-0001" in text and "25 seats from" in text and "Microsoft 365 Business Standard" in text
    withdraw = next(b for b in buttons(cards[0]) if b["verb"] == "change.withdraw.start")
    _, body = await teams.click(withdraw["verb"], withdraw["data"])
    _, body = await teams.click("change.withdraw.confirm", _button(body["value"], "change.withdraw.confirm")["data"])
    assert "Withdrew the scheduled change" in card_text(body["value"])
    _, log = await teams.click("changes.log", {})
    assert "Withdrew the scheduled change" in card_text(log["value"])


async def test_provider_refusal_is_reported_and_nothing_changes(bot_client, connector, demo_db):
    class Refusing(LedgerProvider):
        async def change_quantity(self, session, sub, quantity, *, key, now):
            sub.quantity = quantity  # written, then rolled back with the refusal
            raise ProviderError("the subscription is locked by another change.", "locked")

    bot_client.server.app[RUNTIME].bot.provider = Refusing()
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    _, body = await teams.click("seats.confirm", _button(await _confirm_card(teams, sub.id, 124), "seats.confirm")["data"])
    assert "provider refused the change: the subscription is locked" in body["value"] and "Nothing was changed" in body["value"]
    assert (await _sub(demo_db, "FAB-M365E3-01")).quantity == 120


async def test_typed_requests_end_on_the_confirmation_card(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    cards = [a["content"] for act in await teams.say("add 2 seats to visio") for a in act.get("attachments") or []]
    assert "from **5** to **7** seats" in card_text(cards[0])
    assert (await _sub(demo_db, "FAB-VISIO-01")).quantity == 5  # nothing done from text alone
    cards = [a["content"] for act in await teams.say("reduce E3 to 20") for a in act.get("attachments") or []]
    text = card_text(cards[0])
    assert "Which subscription do you mean?" in text and "Office 365 E3" in text and "Microsoft 365 E3" in text
    sent = await teams.say("add 5 seats to Dynamics 365 Sales")
    assert "no subscription called" in sent[0]["text"]


async def test_worker_applies_due_changes_once_and_tells_who_scheduled_them(bot_client, connector, demo_db, clock):
    scheduler = await _teams(bot_client, connector, demo_db, customer="northwind", role=Role.MODIFY)  # Daniel Brooks
    await scheduler.say("hello")
    connector.take()
    runtime = bot_client.server.app[RUNTIME]
    clock.advance(timedelta(days=14))
    sent = await asyncio.gather(*(run_once(runtime.bot._db, runtime.bot.provider, clock, runtime.bot.notifier) for _ in range(2)))
    assert (await _sub(demo_db, "NW-BS-001")).quantity == 25
    notices = [a["text"] for a in connector.take()]
    assert sum("SC-NW-0001 was carried out" in n for n in notices) == 1 and sum(sent) >= 1
    assert await run_once(runtime.bot._db, runtime.bot.provider, clock, runtime.bot.notifier) == 0


async def test_worker_renews_with_the_quantity_scheduled_for_renewal(bot_client, connector, demo_db, clock):
    runtime = bot_client.server.app[RUNTIME]
    before = await _sub(demo_db, "FAB-O365E3-01")
    visio = await _sub(demo_db, "FAB-VISIO-01")
    clock.advance(timedelta(days=21))
    await run_once(runtime.bot._db, runtime.bot.provider, clock, runtime.bot.notifier)
    after = await _sub(demo_db, "FAB-O365E3-01")
    assert after.quantity == 30 and after.commitment_end > before.commitment_end
    assert (await _sub(demo_db, "FAB-VISIO-01")).status == SubscriptionStatus.EXPIRED and visio.auto_renew is False
    async with demo_db() as session:
        change = (await session.execute(select(ScheduledChange).where(ScheduledChange.reference == "SC-FAB-0001"))).scalar_one()
    assert change.status == ChangeStatus.APPLIED


async def test_in_a_group_chat_only_the_asker_gets_buttons(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    sub = await _sub(demo_db, "FAB-M365E3-01")
    group = {"conversationType": "groupChat", "tenantId": teams.who.tenant_id, "id": "19:group-chat@thread.v2"}
    sent = await teams.post(teams.activity("message", text=f"<at>Seatdesk</at> details M365 E3 Verwaltung", conversation=group))
    assert sent.status in (200, 201)
    card = connector.take()[0]["attachments"][0]["content"]
    assert card["refresh"]["userIds"] == [f"29:{teams.who.aad_object_id}"]
    assert not {b["verb"] for b in buttons(card)} & {"seats.start", "renewal.start", "cancel.start"}
    assert "€" not in card_text({k: v for k, v in card.items() if k != "refresh"})
    refresh = card["refresh"]["action"]
    response = await teams.post(
        teams.activity("invoke", name="adaptiveCard/action", conversation=group, value={"action": refresh, "trigger": "automatic"})
    )
    personal = (await response.json())["value"]
    assert {"seats.start", "renewal.start", "cancel.start"} <= {b["verb"] for b in buttons(personal)}
    assert personal["refresh"]["userIds"] == [f"29:{teams.who.aad_object_id}"]
