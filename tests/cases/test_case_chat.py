"""Support cases through /api/messages: the form, validation, pre-fill, duplicate submits, lists
per role, comments, resolve/reopen, and another tenant's case number."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from services.cases import CaseDraft, DatabaseHelpdesk, Viewer, idempotency_key, new_form_id
from services.models import AuditEntry, CasePriority, CaseStatus, Customer, Product, Role, SupportCase
from tests.cases.conftest import cards_of, teams_for
from tests.conftest import card_input
from tests.conftest import buttons, card_text

CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"


async def _form(teams, phrase: str = "open a case") -> dict:
    cards = cards_of(await teams.say(phrase))
    assert len(cards) == 1, cards
    return cards[0]


def _labels(card: dict) -> list[str]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("label"), str):
                found.append(node["label"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def _submit_button(card: dict) -> dict:
    return next(b for b in buttons(card) if b["verb"] == "case.submit")


async def _submit(teams, card: dict, **inputs) -> tuple[int, dict]:
    button = _submit_button(card)
    return await teams.click("case.submit", {**button["data"], **inputs})


async def _case_count(db, customer_key: str = "fabrikam") -> int:
    async with db() as session:
        return (
            await session.execute(
                select(func.count(SupportCase.id)).join(Customer, Customer.id == SupportCase.customer_id).where(Customer.key == customer_key)
            )
        ).scalar_one()


async def test_form_asks_the_customers_own_questions_and_shows_priority_definitions(bot_client, connector, demo_db):
    fabrikam = await teams_for(bot_client, connector, demo_db, "fabrikam")
    card = await _form(fabrikam)
    text = card_text(card) + "\n" + "\n".join(_labels(card))
    assert "Open a support case" in text
    # Global questions for every customer, and Fabrikam's own required cost centre.
    for label in ("Which device/OS is affected?", "How many users are affected?", "Since when does the problem occur?", "Cost centre (Kostenstelle)"):
        assert label in text, label
    cost = card_input(card, "q_cost_centre")
    assert cost["isRequired"] is True and cost["label"] and cost["errorMessage"]
    assert card_input(card, "q_since")["type"] == "Input.Date"
    assert card_input(card, "title")["isRequired"] is True
    # Priorities with their definitions.
    for word in ("Low", "Normal", "High", "Critical", "The business is stopped"):
        assert word in text
    assert card_input(card, "priority")["value"] == "normal"

    northwind = await teams_for(bot_client, connector, demo_db, "northwind")
    form = await _form(northwind)
    text = card_text(form) + "\n".join(_labels(form))
    assert "How many users are affected?" in text and "Cost centre" not in text


async def test_server_validates_the_form_and_keeps_what_was_typed(bot_client, connector, demo_db):
    teams = await teams_for(bot_client, connector, demo_db, "fabrikam")
    card = await _form(teams)
    status, body = await _submit(
        teams,
        card,
        title="   ",
        description="x" * 4001,
        priority="urgent!!",
        q_affected_users="Half the planet",
        q_since="31.12.2026",
        q_device="Windows",
    )
    assert status == 200 and body["type"] == CARD
    form = body["value"]
    text = card_text(form)
    assert "the case was not opened yet" in text
    assert text.count("This field is required.") >= 2  # summary and cost centre
    assert "Please keep this under 4000 characters." in text
    assert "Please choose one of the options." in text
    assert "Please enter a date as YYYY-MM-DD." in text
    assert card_input(form, "q_device")["value"] == "Windows"  # kept
    assert _submit_button(form)["data"]["form_id"] == _submit_button(card)["data"]["form_id"]
    assert await _case_count(demo_db) == 0
    # A forged form id is refused outright.
    status, body = await teams.click("case.submit", {"form_id": "x", "title": "Hi"})
    assert body["type"] == MESSAGE and "nothing was done" in body["value"]


async def test_what_the_user_said_prefills_the_form(bot_client, connector, demo_db):
    teams = await teams_for(bot_client, connector, demo_db, "fabrikam")
    card = await _form(teams, "Visio keeps crashing when I open a drawing")
    assert card_input(card, "title")["value"] == "Visio keeps crashing when I open a drawing"
    async with demo_db() as session:
        visio = (await session.execute(select(Product).where(Product.key == "visio-p2"))).scalar_one()
    assert card_input(card, "product")["value"] == str(visio.id)
    assert "I filled in what you told me" in card_text(card)

    card = await _form(teams, "I can't sign in to Outlook")
    assert card_input(card, "title")["value"] == "I can't sign in to Outlook"
    assert card_input(card, "product")["value"] == "none"  # Outlook is not one of their products

    # A product they don't have is not pre-selected (Northwind has no Visio).
    northwind = await teams_for(bot_client, connector, demo_db, "northwind")
    card = await _form(northwind, "open a case about Visio crashing")
    assert card_input(card, "title")["value"] == "Visio crashing"
    assert card_input(card, "product") is None or card_input(card, "product")["value"] == "none"


async def test_open_a_case_gets_the_number_at_once_and_a_double_submit_opens_one(bot_client, connector, demo_db):
    teams = await teams_for(bot_client, connector, demo_db, "fabrikam")
    card = await _form(teams, "I can't sign in to Outlook")
    inputs = dict(
        title="I can't sign in to Outlook",
        description="Since this morning: **error** <b>0x800</b> [click](https://evil.example)",
        priority="high",
        q_affected_users="Just me",
        q_cost_centre="4711",
        q_since="2026-11-21",
    )
    status, body = await _submit(teams, card, **inputs)
    assert status == 200 and body["type"] == CARD
    text = card_text(body["value"])
    match = re.search(r"Case (CS-2026-\d{6}) is open", text)
    assert match, text
    number = match.group(1)
    assert "High" in text and "4711" in text and "21 Nov 2026" in text
    # Markup in what the user typed is shown as text.
    assert "\\*\\*error\\*\\* \\<b\\>0x800\\</b\\> \\[click\\](https://evil.example)" in text
    extra = connector.texts()
    assert len(extra) == 1 and f"send it here in this chat" in extra[0] and number in extra[0]

    # Teams retries the invoke / the person double-clicks: the same case, no second one, no second message.
    status, again = await _submit(teams, card, **inputs)
    assert number in card_text(again["value"]) and "You already sent this form" in card_text(again["value"])
    assert connector.take() == []
    # Even if the retry's data would not validate, it is still the same form.
    status, again = await _submit(teams, card, title="")
    assert number in card_text(again["value"])
    assert await _case_count(demo_db) == 1
    # A new form opens a new case with the next number.
    status, body = await _submit(teams, await _form(teams), title="Second", q_affected_users="Everyone", q_cost_centre="1")
    second = re.search(r"Case (CS-2026-\d{6}) is open", card_text(body["value"])).group(1)
    assert int(second[-6:]) == int(number[-6:]) + 1
    async with demo_db() as session:
        audit = (await session.execute(select(func.count(AuditEntry.id)).where(AuditEntry.action == "case.open"))).scalar_one()
    assert audit == 2


async def test_details_comment_resolve_and_reopen_within_the_window(bot_client, connector, demo_db, clock):
    teams = await teams_for(bot_client, connector, demo_db, "fabrikam")
    _, body = await _submit(teams, await _form(teams), title="Printer mapping lost", q_affected_users="Just me", q_cost_centre="9")
    number = re.search(r"CS-2026-\d{6}", card_text(body["value"])).group(0)
    connector.take()

    cards = cards_of(await teams.say(number.lower()))
    assert "Printer mapping lost" in card_text(cards[0]) and "No comments yet." in card_text(cards[0])

    status, body = await teams.click("case.comment", {"number": number, "comment": ""})
    assert body["type"] == MESSAGE and "write a comment first" in body["value"]
    status, body = await teams.click("case.comment", {"number": number, "comment": "It happens after each reboot. <script>x</script>"})
    text = card_text(body["value"])
    assert "Your comment was added" in text and "It happens after each reboot. \\<script\\>x\\</script\\>" in text
    # A double click adds the comment once.
    await teams.click("case.comment", {"number": number, "comment": "It happens after each reboot. <script>x</script>"})
    _, body = await teams.click("case.details", {"number": number})
    assert card_text(body["value"]).count("It happens after each reboot") == 1

    status, body = await teams.click("case.resolve", {"number": number})
    text = card_text(body["value"])
    assert "is resolved" in text and "You can reopen it until" in text
    assert {b["verb"] for b in buttons(body["value"])} >= {"case.reopen"}
    _, body = await teams.click("case.comment", {"number": number, "comment": "more"})
    assert "not open any more" in body["value"]

    status, body = await teams.click("case.reopen", {"number": number})
    assert "is open again" in card_text(body["value"]) and "In progress" in card_text(body["value"])

    await teams.click("case.resolve", {"number": number})
    clock.advance(timedelta(days=15))  # past the default 14-day window
    status, body = await teams.click("case.reopen", {"number": number})
    assert body["type"] == MESSAGE and "can no longer be reopened" in body["value"] and "14 days" in body["value"]


async def test_reopen_window_is_configurable_per_customer(bot_client, connector, demo_db, clock):
    from services.cases import set_policy

    async with demo_db() as session, session.begin():
        fabrikam = (await session.execute(select(Customer).where(Customer.key == "fabrikam"))).scalar_one()
        await set_policy(session, fabrikam.id, reopen_days=2, definitions={"critical": "Production line stopped"}, now=clock.now())
    teams = await teams_for(bot_client, connector, demo_db, "fabrikam")
    card = await _form(teams)
    assert "Production line stopped" in card_text(card)
    _, body = await _submit(teams, card, title="Scanner", q_affected_users="Just me", q_cost_centre="9")
    number = re.search(r"CS-2026-\d{6}", card_text(body["value"])).group(0)
    await teams.click("case.resolve", {"number": number})
    clock.advance(timedelta(days=3))
    _, body = await teams.click("case.reopen", {"number": number})
    assert "2 days" in body["value"]


async def _seed_cases(db, clock, customer_key: str, role: Role, count: int, *, resolved: int = 0) -> list[str]:
    from tests.conftest import person

    who = await person(db, customer_key, role)
    async with db() as session:
        customer = (await session.execute(select(Customer).where(Customer.key == customer_key))).scalar_one()
    viewer = Viewer(customer.id, who.user_id, who.name)
    desk = DatabaseHelpdesk(db, clock)
    numbers = []
    for i in range(count):
        opened = await desk.open_case(viewer, CaseDraft(f"Problem {i + 1} of {who.name}", "", CasePriority.NORMAL, None, {}), idempotency_key(customer.id, who.user_id, new_form_id()))
        numbers.append(opened.case.number)
        clock.advance(timedelta(minutes=1))
    for number in numbers[:resolved]:
        await desk.resolve(viewer, number)
    return numbers


async def test_my_cases_pages_and_filters_and_admins_see_the_whole_company(bot_client, connector, demo_db, clock):
    mine = await _seed_cases(demo_db, clock, "fabrikam", Role.VIEW, 13, resolved=1)
    others = await _seed_cases(demo_db, clock, "fabrikam", Role.MODIFY, 2)
    await _seed_cases(demo_db, clock, "northwind", Role.VIEW, 1)
    viewer = await teams_for(bot_client, connector, demo_db, "fabrikam", Role.VIEW)

    card = cards_of(await viewer.say("my cases"))[0]
    text = card_text(card)
    assert "My cases" in text and "Active · page 1 of 2 · 12 cases" in text
    assert mine[-1] in text and "Problem 13" in text  # newest first
    assert not any(n in text for n in others)
    lines = [b for b in buttons(card) if b["verb"] == "case.details"]
    assert len(lines) == 10
    assert re.search(r"In progress|New", text) and "updated 22 Nov 2026" in text
    next_ = next(b for b in buttons(card) if b["title"] == "Next page")
    _, body = await viewer.click(next_["verb"], next_["data"])
    page2 = card_text(body["value"])
    assert "page 2 of 2" in page2 and mine[0] not in page2 and mine[1] in page2

    resolved = next(b for b in buttons(card) if b["title"] == "Resolved cases")
    _, body = await viewer.click(resolved["verb"], resolved["data"])
    text = card_text(body["value"])
    assert "Resolved · page 1 of 1 · 1 case" in text and mine[0] in text

    # A view user asking for company cases gets their own, with a sentence saying why.
    sent = await viewer.say("company cases")
    assert any("Only admins see all" in (a.get("text") or "") for a in sent)
    assert not any(n in card_text(cards_of(sent)[0]) for n in others)
    # They can't open someone else's case either.
    _, body = await viewer.click("case.details", {"number": others[0]})
    assert body["type"] == MESSAGE and "can't find case" in body["value"]

    admin = await teams_for(bot_client, connector, demo_db, "fabrikam", Role.ADMIN)
    card = cards_of(await admin.say("company cases"))[0]
    text = card_text(card)
    assert "Fabrikam GmbH: all cases" in text and "14 cases" in text and "Northwind" not in text
    assert "Anna Müller" in text or others[0] in text
    _, body = await admin.click("case.details", {"number": others[0]})
    assert body["type"] == CARD and others[0] in card_text(body["value"])


async def test_another_tenants_case_number_answers_like_a_missing_one(bot_client, connector, demo_db, clock):
    [theirs] = await _seed_cases(demo_db, clock, "fabrikam", Role.ADMIN, 1)
    northwind = await teams_for(bot_client, connector, demo_db, "northwind", Role.ADMIN)
    missing = "CS-2026-999999"
    for number in (theirs, missing):
        for verb, extra in (("case.details", {}), ("case.comment", {"comment": "hi"}), ("case.resolve", {}), ("case.reopen", {}), ("case.file", {})):
            status, body = await northwind.click(verb, {"number": number, **extra})
            assert status == 200 and body["type"] == MESSAGE, (verb, body)
            assert body["value"] == f"I can't find case {number} among Northwind Traders's cases.", body["value"]
    sent = await northwind.say(theirs)
    assert sent[0]["text"] == f"I can't find case {theirs} among Northwind Traders's cases."
    assert "Fabrikam" not in str(sent)
    async with demo_db() as session:
        row = (await session.execute(select(SupportCase).where(SupportCase.number == theirs))).scalar_one()
    assert row.status == CaseStatus.NEW


async def test_cancel_and_bad_numbers(bot_client, connector, demo_db):
    teams = await teams_for(bot_client, connector, demo_db, "fabrikam")
    card = await _form(teams)
    cancel = next(b for b in buttons(card) if b["verb"] == "case.cancel")
    assert cancel.get("associatedInputs") == "none"
    _, body = await teams.click(cancel["verb"], cancel["data"])
    assert "No case was opened" in card_text(body["value"])
    for bad in ({"number": "1; DROP TABLE"}, {"number": 5}, {}):
        _, body = await teams.click("case.resolve", bad)
        assert "nothing was done" in (body["value"] if isinstance(body["value"], str) else body["value"]["message"])
