"""Seatdesk in the Agents Playground's web UI, in headless Chromium, as a person would use it.

Open the Playground, see the welcome card, type "dashboard", type "subscriptions", press a
"Details" button and see the details card take the list card's place; change that
subscription's seats (form, confirmation, receipt); describe a problem and open a support case,
then find it in "my cases"; ask a question, get an answer with its sources and say it did not
help. Each step is saved as a screenshot under build/e2e/ (01-welcome.png … 12-knowledge-no-case.png;
failure.png when a step fails); look at them after a change.
Inputs are filled and buttons pressed by their labels and titles, as a person does; which inputs a
form requires is read from the card the bot sent (the log panel's feed).
Chromium is Debian's /usr/bin/chromium, never a downloaded one; the page may reach 127.0.0.1 only.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from playwright.async_api import Locator, Page, async_playwright, expect

from bot.cardcheck import CHROMIUM, CHROMIUM_FLAGS
from tests.e2e.browser import keep_log_panel, labelled, only_loopback, say, shoot, titled
from tests.e2e.playground import (
    SCREENSHOTS,
    card_inputs,
    expected_overview,
    required_case_questions,
    subscription_names,
    subscription_quantity,
    support_case,
)

STEP_TIMEOUT_MS = 15_000


def _card(page: Page, heading: str) -> Locator:
    """The rendered Adaptive Card whose text includes `heading`."""
    return page.locator(".ac-adaptiveCard").filter(has_text=heading)


def _figure(card: Locator, label: str) -> Locator:
    """The column of a big figure: the innermost container holding its label."""
    return card.locator(".ac-container").filter(has=card.page.get_by_text(label, exact=True)).last


def _value_over(label: str, value: object) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(str(value))}\s*{re.escape(label)}\s*$")


async def _pick(page: Page, card: Locator, label: str, choice: str) -> None:
    """Choose `choice` in a compact Input.ChoiceSet (a drop-down), as a person does."""
    await card.get_by_role("combobox", name=labelled(label)).click()
    await page.get_by_role("option", name=choice, exact=True).click()
    await expect(card.get_by_role("combobox", name=labelled(label))).to_have_value(choice)


async def _fill_required(page: Page, card: Locator, sent: dict) -> dict[str, str]:
    """Fill every required input the bot's card left empty, by its label; {label: what was entered}."""
    entered = {}
    for element in card_inputs(sent).values():
        if not element.get("isRequired") or element.get("value"):
            continue
        label = element["label"]
        if element["type"] == "Input.ChoiceSet" and element.get("style") == "expanded":
            entered[label] = element["choices"][0]["title"]
            await card.get_by_role("radiogroup", name=labelled(label)).get_by_role("radio", name=entered[label], exact=True).check()
        elif element["type"] == "Input.ChoiceSet":
            entered[label] = element["choices"][0]["title"]
            await _pick(page, card, label, entered[label])
        elif element["type"] == "Input.Text":
            entered[label] = "4711"
            await card.get_by_role("textbox", name=labelled(label)).fill(entered[label])
        else:
            raise AssertionError(f"the test does not know how to fill a required {element['type']} ({label!r})")
    return entered


async def test_a_person_walks_through_seatdesk(require_browser, playground, seatdesk, identity):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Screenshots of an earlier run would pass for this one's.
    for stale in [SCREENSHOTS / "failure.png", *SCREENSHOTS.glob("[0-9][0-9]-*.png")]:
        stale.unlink(missing_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
            await context.route("**/*", only_loopback)
            page = await context.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.on("websocket", lambda socket: keep_log_panel(socket, playground))
            try:
                await _walk_through(page, playground, seatdesk, identity)
            except BaseException:
                await page.screenshot(path=str(SCREENSHOTS / "failure.png"))
                raise
        finally:
            await browser.close()


async def _walk_through(page: Page, playground, seatdesk, identity) -> None:
    # 1. Opening the personal chat installs the bot: the welcome card.
    await page.goto(playground.url + "/")
    welcome = _card(page, "Welcome to Seatdesk").first
    await expect(welcome).to_be_visible()
    await expect(welcome).to_contain_text(identity.customer)
    await expect(welcome).to_contain_text("Admin")
    await shoot(page, welcome, "01-welcome.png")

    # 2. "dashboard": the overview card with the demo figures.
    await say(page, "dashboard")
    overview = _card(page, f"{identity.customer}: Microsoft 365 at a glance")
    await expect(overview).to_be_visible()
    expected = await expected_overview(seatdesk.database_url, identity.customer)
    await expect(_figure(overview, "Active subscriptions")).to_have_text(_value_over("Active subscriptions", expected.active_subscriptions))
    await expect(_figure(overview, "Active licences")).to_have_text(_value_over("Active licences", f"{expected.active_licenses:,}"))
    await shoot(page, overview, "02-dashboard.png")

    # 3. "subscriptions": the list card, one Details button per subscription.
    await say(page, "subscriptions")
    listing = _card(page, f"{identity.customer}: subscriptions")
    await expect(listing).to_be_visible()
    details_buttons = listing.get_by_role("button", name="Details")
    await expect(details_buttons.first).to_be_visible()
    await shoot(page, listing, "03-subscriptions.png")

    # 4. Details: the invoke response replaces the list card with the subscription's card.
    # The button's row is a ColumnSet: the renderer draws it as the second ac-container around the button.
    row = details_buttons.first.locator("xpath=ancestor::div[contains(@class,'ac-container')][2]")
    name = (await row.locator(".ac-textBlock").first.inner_text()).strip().removeprefix("↳").strip()
    assert name, "the Details button's row shows no subscription name"
    await details_buttons.first.click()
    details = _card(page, "Cancellation window").filter(has_text=name)
    await expect(details).to_be_visible()
    await expect(details).to_contain_text("Status")
    await expect(details).to_contain_text("Seats")
    await expect(listing).to_have_count(0)  # replaced in place, not posted below
    await shoot(page, details, "04-details.png")

    await _change_seats(page, seatdesk, identity, details, name)
    await _open_a_case(page, playground, seatdesk, identity)
    await _ask_a_question(page, playground)


async def _change_seats(page: Page, seatdesk, identity, details: Locator, name: str) -> None:
    # 5. "Change seats" on the details card: the form, filled with two more seats, "Now" kept.
    subscription_id = next(i for i, n in (await subscription_names(seatdesk.database_url, identity.customer)).items() if n == name)
    before = await subscription_quantity(seatdesk.database_url, subscription_id)
    await details.get_by_role("button", name="Change seats").click()
    form = titled(page, f"Change seats: {name}")
    await expect(form).to_be_visible()
    await expect(form).to_contain_text(f"Now: {before:,} seats")
    await form.get_by_role("spinbutton", name=labelled("New number of seats")).fill(str(before + 2))
    await expect(form.get_by_role("radio", name=re.compile(r"^Now\b"))).to_be_checked()
    await shoot(page, form, "05-change-seats-form.png")

    # 6. "Review change": the confirmation with old and new seats and the monthly cost.
    await form.get_by_role("button", name="Review change").click()
    confirm = titled(page, "Please confirm")
    await expect(confirm).to_be_visible()
    await expect(confirm).to_contain_text(f"Change {name} from {before:,} to {before + 2:,} seats.")
    await expect(confirm).to_contain_text("Takes effect now")
    await expect(confirm).to_contain_text("Monthly cost")
    await expect(form).to_have_count(0)
    await shoot(page, confirm, "06-change-seats-confirm.png")

    # 7. "Confirm": the receipt with a reference, and the database has the new quantity.
    await confirm.get_by_role("button", name="Confirm", exact=True).click()
    receipt = titled(page, f"✔ Done: {name}")
    await expect(receipt).to_be_visible()
    await expect(receipt).to_contain_text(f"Seats {before} → {before + 2}, effective now")
    await expect(receipt).to_contain_text(re.compile(r"Reference CHG-\w+"))
    await expect(confirm).to_have_count(0)
    assert await subscription_quantity(seatdesk.database_url, subscription_id) == before + 2
    await shoot(page, receipt, "07-change-seats-receipt.png")


async def _open_a_case(page: Page, playground, seatdesk, identity) -> None:
    # 8. A problem in words: the case form, its summary filled in from what was typed.
    problem = "I can't sign in to Outlook"
    sent_before = len(playground.cards_sent())
    await say(page, problem)
    form = titled(page, "Open a support case")
    await expect(form).to_be_visible()
    await expect(form.get_by_role("textbox", name=labelled("Summary"))).to_have_value(problem)
    sent = await playground.card_sent("Open a support case", after=sent_before)
    entered = await _fill_required(page, form, sent)
    assert sorted(entered) == sorted(await required_case_questions(seatdesk.database_url, identity.customer)), entered
    await shoot(page, form, "08-case-form.png")

    # 9. "Open case": the case, with its number, takes the form's place.
    await form.get_by_role("button", name="Open case", exact=True).click()
    number_heading = re.compile(rf"^Case CS-{datetime.now(timezone.utc).year}-\d{{6}} is open$")
    opened = titled(page, number_heading)
    await expect(opened).to_be_visible()
    await expect(opened).to_contain_text(problem)
    await expect(form).to_have_count(0)
    number = re.search(r"CS-\d{4}-\d{6}", await opened.get_by_role("heading", name=number_heading).inner_text()).group(0)
    stored = await support_case(seatdesk.database_url, number)
    assert stored and stored["title"] == problem, stored
    assert {a["label"]: a["value"] for a in stored["answers"].values()} == entered, stored
    await shoot(page, opened, "09-case-opened.png")

    # 10. "my cases": the list shows the new case with its title.
    await say(page, "my cases")
    mine = titled(page, "My cases")
    await expect(mine).to_be_visible()
    await expect(mine).to_contain_text(f"{number} {problem}")
    await shoot(page, mine, "10-my-cases.png")


async def _ask_a_question(page: Page, playground) -> None:
    # 11. A question: the answer quoted from the knowledge base, its sources, "Did this help?".
    question = "Why can't I cancel my licence any more?"
    await say(page, question)
    answer = titled(page, "Here's what I found")
    await expect(answer).to_be_visible()
    await expect(answer).to_contain_text(f"You asked: “{question}”")
    await expect(answer.get_by_text("Sources", exact=True)).to_be_visible()
    await expect(answer.get_by_role("button", name="Open article").first).to_be_visible()
    await expect(answer.get_by_text("Did this help?", exact=True)).to_be_visible()
    await expect(answer.get_by_role("button", name="Yes", exact=True)).to_be_visible()
    await shoot(page, answer, "11-knowledge-answer.png")

    # 12. "No": an apology and a case form with the question filled in; the answer stays.
    await answer.get_by_role("button", name="No", exact=True).click()
    await expect(page.get_by_role("paragraph").filter(has_text="Sorry that didn't help.")).to_be_visible()
    offer = titled(page, "Open a support case")
    await expect(offer).to_be_visible()
    await expect(offer.get_by_role("textbox", name=labelled("Summary"))).to_have_value(question)
    await expect(answer).to_have_count(1)
    await shoot(page, offer, "12-knowledge-no-case.png")
