"""Notices to other people never hold a turn: approval cards at checkout, and a decision's notices
to the requester, go out after the clicker's answer, among the bot's background tasks, and still
arrive once Teams accepts them. Guards the regression where a proactive send inside the turn
(waiting on Teams' pacing or a Retry-After of up to 30 s) kept the checkout or approval click from
being answered within Teams' 15 s. Both are owed in the notice outbox, so a stop or a failed send
leaves them to the worker instead of losing them. The Bot Connector holds a conversation's requests
until the test releases them (an Event); nothing sleeps."""
from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from bot.app import RUNTIME
from dialogs.notices import deliver
from services import notices
from services.models import ApprovalRequest, Order, OrderStatus
from tests.bot.test_orders import _button, _checkout, _people_and_cart
from tests.conftest import buttons, card_text

# Only a regression gets near it: a notice sent inside the turn holds the answer for the connector's 15 s.
ANSWER_GUARD_SECONDS = 10


async def _answered(click):
    """The click's answer, which must not wait for any notice."""
    return await asyncio.wait_for(click, ANSWER_GUARD_SECONDS)


async def _ordered_from_a_card(bot, connector, anna, stefan) -> dict:
    """Anna checks out from a card (which becomes her order card); Stefan's approval card is returned."""
    _, data = await _checkout(anna)
    anna_card = anna.activity("invoke", name="adaptiveCard/action", replyToId="anna-checkout-card")
    anna_card["value"] = {"action": {"type": "Action.Execute", "verb": "checkout.confirm", "data": {"verb": "checkout.confirm", **data}}, "trigger": "manual"}
    assert (await anna.post(anna_card)).status == 200
    await bot.idle()
    card = next(a for a in connector.take() if a["conversation"]["id"] == stefan.conversation_id)["attachments"][0]["content"]
    connector.updates.clear()  # the checkout's own update of Anna's card
    return card


async def _remembered_cards(db) -> list[dict]:
    async with db() as session:
        return list((await session.execute(select(ApprovalRequest))).scalar_one().card_activities)


async def test_checkout_answers_while_the_approval_cards_are_held_and_they_arrive_after(bot_client, connector, demo_db):
    bot = bot_client.server.app[RUNTIME].bot
    anna, katrin, stefan = await _people_and_cart(bot_client, connector, demo_db)
    release_katrin, reached_katrin = connector.hold(katrin.conversation_id)
    release_stefan, _ = connector.hold(stefan.conversation_id)
    _, data = await _checkout(anna)

    status, body = await _answered(anna.click("checkout.confirm", data))
    assert status == 200
    text = card_text(body["value"])
    assert "waiting for approval" in text and "Katrin Vogel" in text and "Stefan Hoffmann" in text  # whom it goes to
    await reached_katrin.wait()  # the first approval card is at the Bot Connector, held
    assert not any(a.get("attachments") for a in connector.activities)

    release_katrin.set()
    release_stefan.set()
    await bot.idle()
    cards = [a for a in connector.take() if a.get("attachments")]
    assert sorted(a["conversation"]["id"] for a in cards) == sorted([katrin.conversation_id, stefan.conversation_id])
    assert all("Approval needed" in card_text(a["attachments"][0]["content"]) for a in cards)
    # Each approver's card is remembered, so that the decision updates it for everyone.
    assert {c["user_id"] for c in await _remembered_cards(demo_db) if not c["requester"]} == {katrin.who.user_id, stefan.who.user_id}

    # Teams retrying the checkout meanwhile (or later) sends no second card.
    _, body = await _answered(anna.click("checkout.confirm", data))
    await bot.idle()
    assert "already" in card_text(body["value"]) and not any(a.get("attachments") for a in connector.take())


async def test_approval_cards_cut_off_by_a_stop_are_delivered_by_the_worker_once(bot_client, connector, demo_db, clock):
    """The approval cards are owed in the outbox with the order: a process that stops (or dies) while
    they are on their way leaves them claimed, and once the lease has run out the worker sends them."""
    bot = bot_client.server.app[RUNTIME].bot
    anna, katrin, stefan = await _people_and_cart(bot_client, connector, demo_db)
    _, reached_katrin = connector.hold(katrin.conversation_id)
    connector.hold(stefan.conversation_id)
    _, data = await _checkout(anna)
    status, body = await _answered(anna.click("checkout.confirm", data))
    assert status == 200 and "waiting for approval" in card_text(body["value"])
    await reached_katrin.wait()  # the first card is on its way ...
    assert await bot.drain(0)  # ... when the process stops without waiting: the delivery is cut off
    connector.held.clear()  # Teams is there again for the next process (the cut-off request never lands)
    assert await deliver(demo_db, bot.notifier, clock.now()) == 0  # claimed by the stopped process
    clock.advance(notices.LEASE)
    assert await deliver(demo_db, bot.notifier, clock.now()) == 2
    cards = [a for a in connector.take() if a.get("attachments")]
    assert sorted(a["conversation"]["id"] for a in cards) == sorted([katrin.conversation_id, stefan.conversation_id])
    assert all("Approval needed" in card_text(a["attachments"][0]["content"]) for a in cards)
    assert {c["user_id"] for c in await _remembered_cards(demo_db) if not c["requester"]} == {katrin.who.user_id, stefan.who.user_id}
    assert await deliver(demo_db, bot.notifier, clock.now()) == 0


async def test_a_decision_answers_while_the_requesters_notices_are_held_and_they_arrive_once(bot_client, connector, demo_db):
    bot = bot_client.server.app[RUNTIME].bot
    anna, katrin, stefan = await _people_and_cart(bot_client, connector, demo_db)
    card = await _ordered_from_a_card(bot, connector, anna, stefan)
    release_anna, reached_anna = connector.hold(anna.conversation_id)

    status, body = await _answered(stefan.click("approval.decide", _button(card, "approval.decide", decision="approve")["data"]))
    assert status == 200 and "Approved by Stefan Hoffmann" in card_text(body["value"])
    await reached_anna.wait()
    assert not any(a["conversation"]["id"] == anna.conversation_id for a in connector.activities)
    # A second click (Katrin's, or Teams retrying Stefan's) is answered with the decision and notifies nobody again.
    _, body = await _answered(katrin.click("approval.decide", _button(card, "approval.decide", decision="reject")["data"] | {"comment": "no"}))
    assert "Approved by Stefan Hoffmann" in card_text(body["value"])

    release_anna.set()
    await bot.idle()
    to_anna = [a.get("text") or "" for a in connector.take() if a["conversation"]["id"] == anna.conversation_id]
    assert sum("was approved by Stefan Hoffmann" in t for t in to_anna) == 1
    assert "is ready" in to_anna[-1]  # provisioned after the decision's notice, in that order
    anna_updates = [u for u in connector.updates if u["conversation"]["id"] == anna.conversation_id]
    assert len(anna_updates) == 1 and "Approved by Stefan Hoffmann" in card_text(anna_updates[0]["attachments"][0]["content"])
    async with demo_db() as session:
        assert (await session.execute(select(Order))).scalar_one().status == OrderStatus.COMPLETED


async def test_a_decisions_notices_cut_off_by_a_stop_are_delivered_by_the_worker_once(bot_client, connector, demo_db, clock):
    """A decision's notices are owed in the outbox with it: the requester's message and order card and
    the other approver's copy arrive once, although the process stopped while sending them."""
    bot = bot_client.server.app[RUNTIME].bot
    anna, katrin, stefan = await _people_and_cart(bot_client, connector, demo_db)
    card = await _ordered_from_a_card(bot, connector, anna, stefan)
    _, reached_anna = connector.hold(anna.conversation_id)

    status, body = await _answered(stefan.click("approval.decide", _button(card, "approval.decide", decision="approve")["data"]))
    assert status == 200 and "Approved by Stefan Hoffmann" in card_text(body["value"])
    await reached_anna.wait()  # a notice to Anna is on its way ...
    assert await bot.drain(0)  # ... when the process stops without waiting
    connector.held.clear()
    clock.advance(notices.LEASE)
    await deliver(demo_db, bot.notifier, clock.now())
    to_anna = [a.get("text") or "" for a in connector.take() if a["conversation"]["id"] == anna.conversation_id]
    assert sum("was approved by Stefan Hoffmann" in t for t in to_anna) == 1
    updates = {u["conversation"]["id"]: u for u in connector.updates}
    assert len(connector.updates) == 2 and set(updates) == {anna.conversation_id, katrin.conversation_id}
    assert "Approved by Stefan Hoffmann" in card_text(updates[anna.conversation_id]["attachments"][0]["content"])
    assert not any(b.get("verb") == "approval.decide" for b in buttons(updates[katrin.conversation_id]["attachments"][0]["content"]))
    assert await deliver(demo_db, bot.notifier, clock.now()) == 0


async def test_an_approval_card_that_cannot_be_delivered_is_logged_kept_and_sent_later(bot_client, connector, demo_db, clock, caplog):
    bot = bot_client.server.app[RUNTIME].bot
    anna, katrin, stefan = await _people_and_cart(bot_client, connector, demo_db)
    delivered = bot.notifier.send

    async def failing(user_id, replies):
        if user_id == katrin.who.user_id:
            raise RuntimeError("connector exploded")
        return await delivered(user_id, replies)

    bot.notifier.send = failing
    _, data = await _checkout(anna)
    with caplog.at_level(logging.WARNING, logger="seatdesk.notices"):
        status, body = await _answered(anna.click("checkout.confirm", data))
        await bot.idle()
    assert status == 200 and "waiting for approval" in card_text(body["value"])
    assert "could not deliver notice" in caplog.text and "(approval_request)" in caplog.text and "connector exploded" in caplog.text
    # The other approver still gets the card.
    assert [a["conversation"]["id"] for a in connector.take() if a.get("attachments")] == [stefan.conversation_id]
    # Katrin's card stays owed in the outbox: the worker's delivery after the retry wait sends it, once.
    bot.notifier.send = delivered
    assert await deliver(demo_db, bot.notifier, clock.now()) == 0  # not before its retry is due
    clock.advance(notices.retry_after(1))
    assert await deliver(demo_db, bot.notifier, clock.now()) == 1
    cards = [a for a in connector.take() if a.get("attachments")]
    assert [a["conversation"]["id"] for a in cards] == [katrin.conversation_id]
    assert "Approve" in card_text(cards[0]["attachments"][0]["content"])
    assert {c["user_id"] for c in await _remembered_cards(demo_db)} == {katrin.who.user_id, stefan.who.user_id}
    assert await deliver(demo_db, bot.notifier, clock.now()) == 0
