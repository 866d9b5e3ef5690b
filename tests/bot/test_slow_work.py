"""Slow work never holds a Teams request near 15 s: past the turn's deadline the confirmation answers
"working on it", the work carries on in the background, and its receipt updates the clicked card.
A retry or a second click meanwhile starts nothing twice. Deterministic: the provider is held by an
Event and the deadline passes when the test says so (no sleeps, no real time)."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.app import RUNTIME
from dialogs.base import Outcome, Reply
from dialogs.slow import SlowWork
from services.models import AuditEntry, Operation, Role, Subscription
from services.providers import LedgerProvider, ProviderError
from tests.conftest import Deadline, Teams, buttons, card_text, person

CARD_MESSAGE = "card-message-1"  # the id of the message that holds the clicked confirmation card


class HeldProvider(LedgerProvider):
    """The ledger, but every seat change waits until the test releases it (a slow Partner Center)."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0
        self.failure = failure

    async def change_quantity(self, session, sub, quantity, *, key, now):
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        await super().change_quantity(session, sub, quantity, key=key, now=now)


async def _sub(db, provider_id: str = "FAB-M365E3-01") -> Subscription:
    async with db() as session:
        return (await session.execute(select(Subscription).where(Subscription.provider_id == provider_id))).scalar_one()


async def _confirm_data(teams: Teams, sub: Subscription, quantity: int) -> dict:
    _, body = await teams.click("seats.review", {"id": sub.id, "quantity": quantity, "timing": "now"})
    return next(b for b in buttons(body["value"]) if b["verb"] == "seats.confirm")["data"]


def _confirmation(teams: Teams, data: dict) -> dict:
    """The invoke Teams sends for a click on the confirmation card (replyToId: the card's message)."""
    action = {"type": "Action.Execute", "verb": "seats.confirm", "data": data}
    return teams.activity("invoke", name="adaptiveCard/action", value={"action": action, "trigger": "manual"}, replyToId=CARD_MESSAGE)


async def _answer(teams: Teams, activity: dict) -> dict:
    response = await teams.post(activity)
    assert response.status == 200
    return await response.json()


async def _count(db, what, *where) -> int:
    async with db() as session:
        return (await session.execute(select(func.count(what)).where(*where))).scalar_one()


async def _applied(db, sub) -> int:
    return await _count(db, AuditEntry.id, AuditEntry.action == "seats", AuditEntry.target_id == str(sub.id), AuditEntry.outcome == "applied")


async def test_a_slow_provider_answers_working_then_the_card_gets_the_receipt_once(bot_client, connector, demo_db, deadline):
    bot = bot_client.server.app[RUNTIME].bot
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.ADMIN))
    sub = await _sub(demo_db)
    data = await _confirm_data(teams, sub, 130)
    connector.take()
    bot.provider = held = HeldProvider()

    click = _confirmation(teams, data)
    answering = asyncio.create_task(_answer(teams, click))
    await held.entered.wait()
    deadline.passed.set()
    body = await answering  # answered while the provider is still held
    assert not held.release.is_set()
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    working = card_text(body["value"])
    assert "Working on it" in working and "There's no need to click again" in working and not buttons(body["value"])
    assert (await _sub(demo_db)).quantity == 120

    # Teams retrying the very same activity, and a second click on the card, while the change is under way.
    retried = await _answer(teams, click)
    again = await _answer(teams, _confirmation(teams, data))
    for answer in (retried, again):
        assert "still being carried out" in card_text(answer["value"]) and "won't apply it twice" in card_text(answer["value"])
    assert held.calls == 1 and connector.updates == []

    held.release.set()
    await bot.idle()
    assert held.calls == 1 and (await _sub(demo_db)).quantity == 130
    assert await _applied(demo_db, sub) == 1 and await _count(demo_db, Operation.id) == 1
    [update] = connector.updates
    assert update["id"] == CARD_MESSAGE
    receipt = card_text(update["attachments"][0]["content"])
    assert "Seats 120 → 130" in receipt and "Reference CHG-" in receipt
    assert connector.texts() == ["Finished: the card above now shows the result."]

    # Clicked once more after it is done (a new turn, a new deadline): the first receipt, from the Operation table.
    deadline.passed.clear()
    after = await _answer(teams, _confirmation(teams, data))
    assert receipt.split("Reference ")[1].split()[0] in card_text(after["value"])
    assert held.calls == 1 and await _applied(demo_db, sub) == 1


async def test_a_failure_in_the_background_is_a_sentence_with_a_reference(bot_client, connector, demo_db, deadline, caplog):
    bot = bot_client.server.app[RUNTIME].bot
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.ADMIN), locale="de-DE")
    sub = await _sub(demo_db)
    data = await _confirm_data(teams, sub, 131)
    connector.take()
    bot.provider = held = HeldProvider(failure=RuntimeError("socket closed by peer"))

    answering = asyncio.create_task(_answer(teams, _confirmation(teams, data)))
    await held.entered.wait()
    deadline.passed.set()
    assert "In Arbeit" in card_text((await answering)["value"])
    held.release.set()
    await bot.idle()

    [update] = connector.updates
    [message] = connector.texts()
    assert message.startswith("Entschuldigung, bei mir ist etwas schiefgegangen") and "Referenz" in message
    assert message in card_text(update["attachments"][0]["content"])
    assert "socket closed" not in message and "Traceback" not in message
    reference = message.split("Referenz ")[1].rstrip(".")
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)  # the log has the traceback
    assert (await _sub(demo_db)).quantity == 120
    # Whether the provider has the change is unknown: the confirmation stays pending, for the card
    # clicked again or the worker to finish once the provider has been asked (tests/partnercenter/test_in_flight_changes.py).
    assert await _count(demo_db, Operation.id, Operation.status == "pending") == 1 and await _count(demo_db, Operation.id) == 1


async def test_a_provider_refusal_in_the_background_reaches_the_person(bot_client, connector, demo_db, deadline):
    bot = bot_client.server.app[RUNTIME].bot
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.ADMIN))
    sub = await _sub(demo_db)
    data = await _confirm_data(teams, sub, 132)
    connector.take()
    bot.provider = held = HeldProvider(failure=ProviderError("Partner Center is not answering right now.", "partnercenter_unavailable"))

    answering = asyncio.create_task(_answer(teams, _confirmation(teams, data)))
    await held.entered.wait()
    deadline.passed.set()
    await answering
    held.release.set()
    await bot.idle()
    [message] = connector.texts()
    assert message == "The subscription provider refused the change: Partner Center is not answering right now. Nothing was changed."
    assert message in card_text(connector.updates[0]["attachments"][0]["content"])
    assert (await _sub(demo_db)).quantity == 120


async def test_work_done_within_the_deadline_answers_in_the_turn(bot_client, connector, demo_db, deadline):
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.ADMIN))
    sub = await _sub(demo_db)
    body = await _answer(teams, _confirmation(teams, await _confirm_data(teams, sub, 133)))
    assert "Seats 120 → 133" in card_text(body["value"]) and not deadline.passed.is_set()
    assert deadline.asked == [pytest.approx(5, abs=1)]  # the deadline was waited for, and the work won


# -- the mechanism on its own ----------------------------------------------------------------
class Delivered:
    def __init__(self) -> None:
        self.outcomes: list[tuple[Outcome, bool]] = []

    async def deliver(self, outcome: Outcome, locale: str | None, *, on_card: bool) -> None:
        self.outcomes.append((outcome, on_card))


WORKING = Outcome([Reply(card={"type": "AdaptiveCard"})])
STILL = Outcome([Reply(text="still")])


def _failed(reference: str) -> Outcome:
    return Outcome([Reply(text=f"sorry {reference}")])


async def test_a_cancelled_turn_does_not_cancel_the_work_and_its_result_is_delivered():
    held, later = Deadline(), Delivered()
    slow = SlowWork(5, sleep=held.sleep)
    release = asyncio.Event()

    async def work() -> Outcome:
        await release.wait()
        return Outcome([Reply(text="done")])

    turn = asyncio.create_task(slow.turn(later).run("op-1", work, working=WORKING, still_working=STILL, failed=_failed, locale=None))
    await asyncio.sleep(0)  # the turn is waiting for the work (a yield to the loop, not a delay)
    assert slow.running("op-1")
    turn.cancel()  # Teams dropped the request
    with pytest.raises(asyncio.CancelledError):
        await turn
    release.set()
    await asyncio.gather(*list(slow.tasks))
    assert [(o.replies[0].text, on_card) for o, on_card in later.outcomes] == [("done", True)]
    assert not slow.running("op-1")


async def test_the_deadline_counts_from_the_start_of_the_turn():
    held, now = Deadline(), [100.0]
    slow = SlowWork(5, sleep=held.sleep, monotonic=lambda: now[0])
    turn = slow.turn(Delivered())
    now[0] = 103.5  # a model routed the message first
    held.passed.set()
    never = asyncio.Event()

    async def work() -> Outcome:
        await never.wait()
        return Outcome([])

    assert await turn.run("kb-1", work, working=WORKING, still_working=STILL, failed=_failed, locale=None) is WORKING
    assert held.asked == [pytest.approx(1.5)]
    never.set()
    await asyncio.gather(*list(slow.tasks))


async def test_without_a_follow_up_the_turn_waits_for_the_work():
    slow = SlowWork(0.0)

    async def work() -> Outcome:
        await asyncio.sleep(0)
        return Outcome([Reply(text="done")])

    outcome = await slow.turn(None).run("op-2", work, working=WORKING, still_working=STILL, failed=_failed, locale=None)
    assert outcome.replies[0].text == "done"
