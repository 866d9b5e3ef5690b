"""Seatdesk's change, case and knowledge flows through the Playground's own (web UI) API.

Like test_playground_api.py, these stand where the Playground's web UI stands: they type into the
chat, and press a card's buttons with the card's inputs filled in as the web UI sends them
(`pressed`). Which inputs a form has, and which it requires, is read from the card the bot sent;
what the bot should show and what it should have stored is read from the database it serves.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from tests.e2e.playground import (
    CARD,
    card_action,
    card_actions,
    card_facts,
    card_inputs,
    card_text,
    card_title,
    pressed,
    required_case_questions,
    subscription_names,
    subscription_quantity,
    support_case,
)

CASE_NUMBER = re.compile(r"CS-(\d{4})-\d{6}")


async def test_change_seats_from_the_details_card(chat, seatdesk, identity):
    """Issue 4: Details → Change seats → two more seats now → Please confirm → Confirm → receipt."""
    await chat.say("subscriptions")
    listed, listing = await chat.wait_for_card(f"{identity.customer}: subscriptions")
    details_button = card_actions(listing, verb="subscription.details")[0]
    subscription_id = details_button["data"]["id"]
    name = (await subscription_names(seatdesk.database_url, identity.customer))[subscription_id]
    before = await subscription_quantity(seatdesk.database_url, subscription_id)

    details = (await chat.click(listed, details_button))["value"]
    assert card_title(details) == name

    # Every answer below replaces the clicked card, so every button is on the listed message.
    answer = await chat.click(listed, card_action(details, "Change seats"))
    assert answer["type"] == CARD, answer
    form = answer["value"]
    assert card_title(form) == f"Change seats: {name}"
    assert f"Now: **{before:,}** seats" in card_text(form)
    inputs = card_inputs(form)
    assert inputs["quantity"]["type"] == "Input.Number" and inputs["quantity"]["label"] == "New number of seats"
    assert inputs["timing"]["value"] == "now", "the form should start on \"Now\""

    answer = await chat.click(listed, pressed(form, card_action(form, "Review change"), {"quantity": str(before + 2)}))
    assert answer["type"] == CARD, answer
    confirm = answer["value"]
    assert card_title(confirm) == "Please confirm", card_text(confirm)
    assert f"from **{before:,}** to **{before + 2:,}** seats" in card_text(confirm)
    assert "Takes effect now" in card_text(confirm)
    assert "Monthly cost" in card_facts(confirm)  # admins see the cost effect
    assert await subscription_quantity(seatdesk.database_url, subscription_id) == before, "reviewing must not change anything"

    answer = await chat.click(listed, pressed(confirm, card_action(confirm, "Confirm")))
    assert answer["type"] == CARD, answer
    receipt = answer["value"]
    assert card_title(receipt) == f"✔ Done: {name}"
    text = card_text(receipt)
    assert f"Seats {before} → {before + 2}, effective now" in text
    assert re.search(r"Reference CHG-\w+", text), text
    assert await subscription_quantity(seatdesk.database_url, subscription_id) == before + 2

    # The receipt also replaces the card for everyone who sees it: the bot updates the listed message.
    def updated_with_receipt() -> bool:
        for exchange in chat.exchanges:
            body = (exchange.get("request") or {}).get("body") or {}
            if exchange.get("from") == "User Application" and body.get("id") == listed.id:
                return [card_title(a["content"]) for a in body.get("attachments") or []] == [card_title(receipt)]
        return False

    await chat.until(updated_with_receipt, what="the bot updating the original card with the receipt")


async def test_open_a_case_and_find_it_in_my_cases(chat, seatdesk, identity):
    """Issue 6: a problem in words → the case form, pre-filled → Open case → the number → "my cases"."""
    problem = "I can't sign in to Outlook"
    before = len(chat.messages)
    await chat.say(problem)
    shown, form = await chat.wait_for_card("Open a support case", after=before)
    inputs = card_inputs(form)
    assert inputs["title"]["value"] == problem, "the summary should be filled in from what was typed"

    # Fill what the card requires and leaves empty: the reseller's questions for this customer.
    values = {}
    for input_id, element in inputs.items():
        if not element.get("isRequired") or element.get("value"):
            continue
        if element["type"] == "Input.ChoiceSet":
            values[input_id] = element["choices"][0]["value"]
        elif element["type"] == "Input.Text":
            values[input_id] = "4711"
        else:
            raise AssertionError(f"the test does not know how to fill a required {element['type']} ({element['label']!r})")
    required = sorted(inputs[i]["label"] for i in values)
    assert required == sorted(await required_case_questions(seatdesk.database_url, identity.customer))

    before = len(chat.messages)
    answer = await chat.click(shown, pressed(form, card_action(form, "Open case"), values))
    assert answer["type"] == CARD, answer
    opened = answer["value"]
    match = CASE_NUMBER.fullmatch(card_title(opened).removeprefix("Case ").removesuffix(" is open"))
    assert match, card_title(opened)
    number = match.group(0)
    assert int(match.group(1)) == datetime.now(timezone.utc).year
    assert problem in card_text(opened)
    facts = card_facts(opened)
    for input_id, value in values.items():
        assert facts[inputs[input_id]["label"]] == value
    # The offer to attach a file comes as a message of its own.
    await chat.wait_for(lambda m: number in m.text, after=before, what=f"a message naming {number}")

    stored = await support_case(seatdesk.database_url, number)
    assert stored is not None and stored["title"] == problem and stored["status"] == "new", stored

    before = len(chat.messages)
    await chat.say("my cases")
    _, mine = await chat.wait_for_card("My cases", after=before)
    assert f"**{number}** {problem}" in card_text(mine)
    assert card_action(mine, "Details")["data"]["number"] == number


async def test_a_question_gets_an_answer_and_no_offers_a_case(chat):
    """Issue 7: a question → the answer with its sources and "Did this help?" → No → a case form with
    the question; the answer card stays (the click posts new messages)."""
    question = "Why can't I cancel my licence any more?"
    before = len(chat.messages)
    await chat.say(question)
    shown, answer_card = await chat.wait_for_card("Here's what I found", after=before)
    text = card_text(answer_card)
    assert f"You asked: “{question}”" in text
    assert "Sources" in text and "Did this help?" in text
    articles = card_actions(answer_card, verb="kb.article")
    assert articles and {a["title"] for a in articles} == {"Open article"}
    no = card_action(answer_card, "No")
    assert card_action(answer_card, "Yes")["verb"] == no["verb"] == "kb.feedback"

    before = len(chat.messages)
    answer = await chat.click(shown, pressed(answer_card, no))
    assert answer.get("type") != CARD, f"the answer card should stay, but the bot replaced it: {answer}"
    await chat.wait_for(lambda m: m.text.startswith("Sorry that didn't help."), after=before, what="the apology")
    _, offer = await chat.wait_for_card("Open a support case", after=before)
    assert card_inputs(offer)["title"]["value"] == question
