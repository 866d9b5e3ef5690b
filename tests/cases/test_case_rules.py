"""The pure rules of cases: numbers, transitions, the reopen window, field limits, pre-fill."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services import cases
from services.cases import CaseDraft, Invalid, ProductChoice, Question
from services.models import CasePriority, CaseStatus, QuestionKind

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)
QUESTIONS = [
    Question("device", "Device", QuestionKind.CHOICE, False, ("Windows", "macOS")),
    Question("users", "Users", QuestionKind.CHOICE, True, ("Just me", "Everyone")),
    Question("since", "Since", QuestionKind.DATE, False),
    Question("remote", "Remote?", QuestionKind.YES_NO, True),
    Question("cost", "Cost centre", QuestionKind.TEXT, True),
]
PRODUCTS = [ProductChoice(7, "Visio Plan 2", ("Visio", "Visio P2")), ProductChoice(8, "Microsoft 365 E3", ("E3", "M365 E3")), ProductChoice(9, "Office 365 E3", ("E3", "O365 E3"))]


def test_case_numbers_are_formatted_and_parsed_leniently():
    assert cases.format_number(2026, 123) == "CS-2026-000123"
    assert cases.format_number(2026, 1_234_567) == "CS-2026-1234567"
    for said in ("CS-2026-000123", "cs-2026-123", " CS 2026 000123 ", "cs2026-000123"):
        assert cases.parse_number(said) == "CS-2026-000123", said
    for bad in ("CS-26-1", "2026-000123", "CS-2026-", "CS-2026-1; drop", None, 5, "x" * 100):
        assert cases.parse_number(bad) is None, bad


@pytest.mark.parametrize(
    "old,new,allowed",
    [
        (CaseStatus.NEW, CaseStatus.IN_PROGRESS, True),
        (CaseStatus.IN_PROGRESS, CaseStatus.WAITING_FOR_CUSTOMER, True),
        (CaseStatus.WAITING_FOR_CUSTOMER, CaseStatus.IN_PROGRESS, True),
        (CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED, True),
        (CaseStatus.RESOLVED, CaseStatus.IN_PROGRESS, True),
        (CaseStatus.RESOLVED, CaseStatus.CLOSED, True),
        (CaseStatus.IN_PROGRESS, CaseStatus.NEW, False),
        (CaseStatus.RESOLVED, CaseStatus.WAITING_FOR_CUSTOMER, False),
        (CaseStatus.CLOSED, CaseStatus.IN_PROGRESS, False),
        (CaseStatus.CLOSED, CaseStatus.RESOLVED, False),
    ],
)
def test_status_transitions(old, new, allowed):
    assert cases.can_transition(old, new) is allowed


def test_reopen_window_is_inclusive_to_the_second():
    resolved = T0
    assert cases.can_reopen(CaseStatus.RESOLVED, resolved, T0 + timedelta(days=14), 14)
    assert not cases.can_reopen(CaseStatus.RESOLVED, resolved, T0 + timedelta(days=14, seconds=1), 14)
    assert not cases.can_reopen(CaseStatus.CLOSED, resolved, T0, 14)
    assert not cases.can_reopen(CaseStatus.RESOLVED, None, T0, 14)
    assert not cases.can_reopen(CaseStatus.RESOLVED, resolved, T0 + timedelta(seconds=1), 0)


def test_idempotency_key_is_stable_per_form_and_person():
    key = cases.idempotency_key(1, 2, "form-abcdefghijklmnop")
    assert key == cases.idempotency_key(1, 2, "form-abcdefghijklmnop") and len(key) == 64
    assert key != cases.idempotency_key(1, 3, "form-abcdefghijklmnop")
    assert key != cases.idempotency_key(2, 2, "form-abcdefghijklmnop")
    assert cases.FORM_ID.match(cases.new_form_id())


def _valid(**over):
    data = {"title": "  Outlook   crashes ", "priority": "high", "product": "7", "q_users": "Everyone", "q_remote": "no", "q_cost": "4711", "q_since": "2026-11-20"}
    data.update(over)
    return data


def test_a_valid_form_becomes_a_draft():
    draft = cases.validate_form(_valid(), QUESTIONS, PRODUCTS)
    assert draft == CaseDraft(
        title="Outlook crashes",
        description="",
        priority=CasePriority.HIGH,
        product_id=7,
        answers={
            "users": {"label": "Users", "kind": "choice", "value": "Everyone"},
            "since": {"label": "Since", "kind": "date", "value": "2026-11-20"},
            "remote": {"label": "Remote?", "kind": "yes_no", "value": "no"},
            "cost": {"label": "Cost centre", "kind": "text", "value": "4711"},
        },
    )


@pytest.mark.parametrize(
    "over,field,key",
    [
        ({"title": ""}, "title", "case.error.required"),
        ({"title": "x" * 201}, "title", "case.error.too_long"),
        ({"title": ["a"]}, "title", "case.error.required"),
        ({"description": "x" * 4001}, "description", "case.error.too_long"),
        ({"description": 5}, "description", "case.error.invalid_value"),
        ({"priority": "urgent"}, "priority", "case.error.invalid_choice"),
        ({"priority": 3}, "priority", "case.error.invalid_choice"),
        ({"product": "99"}, "product", "case.error.invalid_choice"),  # not one of theirs
        ({"q_users": "Half"}, "q_users", "case.error.invalid_choice"),
        ({"q_users": ""}, "q_users", "case.error.required"),
        ({"q_remote": "maybe"}, "q_remote", "case.error.invalid_choice"),
        ({"q_since": "2026-02-30"}, "q_since", "case.error.invalid_date"),
        ({"q_since": "1999-12-31"}, "q_since", "case.error.invalid_date"),
        ({"q_cost": "x" * 501}, "q_cost", "case.error.too_long"),
        ({"q_cost": "\u200b \x00"}, "q_cost", "case.error.required"),
        ({"q_cost": {"$gt": ""}}, "q_cost", "case.error.invalid_value"),
    ],
)
def test_each_field_has_limits(over, field, key):
    result = cases.validate_form(_valid(**over), QUESTIONS, PRODUCTS)
    assert isinstance(result, Invalid) and result.errors[field][0] == key


def test_optional_questions_may_stay_empty_and_unknown_fields_are_ignored():
    draft = cases.validate_form(_valid(q_since="", q_device=None, is_admin=True, owner_id=1), QUESTIONS, PRODUCTS)
    assert isinstance(draft, CaseDraft) and "since" not in draft.answers and "device" not in draft.answers


def test_customer_questions_replace_global_ones_with_the_same_key():
    from services.models import CaseQuestion

    rows = [
        CaseQuestion(id=1, customer_id=None, key="device", label="Device", kind=QuestionKind.CHOICE, required=False, choices=["A"], position=0),
        CaseQuestion(id=2, customer_id=None, key="since", label="Since", kind=QuestionKind.DATE, required=False, choices=[], position=1),
        CaseQuestion(id=3, customer_id=5, key="device", label="Which laptop?", kind=QuestionKind.TEXT, required=True, choices=[], position=0),
        CaseQuestion(id=4, customer_id=6, key="other", label="Other customer's", kind=QuestionKind.TEXT, required=True, choices=[], position=0),
    ]
    merged = cases.merge_questions(rows, 5)
    assert [(q.key, q.label) for q in merged] == [("since", "Since"), ("device", "Which laptop?")]


@pytest.mark.parametrize(
    "said,problem",
    [
        ("i can t sign in to outlook", True),
        ("teams is not working", True),
        ("excel crashes on startup", True),
        ("open a ticket about printers", True),
        ("what do we have", False),
        ("subscriptions", False),
        ("how many seats do we have", False),
    ],
)
def test_what_reads_as_a_problem(said, problem):
    assert cases.looks_like_a_problem(said) is problem


def test_summary_and_product_from_what_was_said():
    assert cases.summary_from("open a case: Visio crashes") == "Visio crashes"
    assert cases.summary_from("Please create a ticket about E3 licences") == "E3 licences"
    assert cases.summary_from("my printer doesn't work") == "My printer doesn't work"
    assert len(cases.summary_from("x" * 500)) == cases.TITLE_MAX
    assert cases.product_mentioned("Visio crashes", PRODUCTS).id == 7
    assert cases.product_mentioned("Office 365 E3 activation fails", PRODUCTS).id == 9
    assert cases.product_mentioned("E3 activation fails", PRODUCTS) is None  # two products answer to E3
    assert cases.product_mentioned("Outlook crashes", PRODUCTS) is None


def test_the_largest_case_card_stays_under_teams_message_limit():
    """Every field at its limit, full of characters that need escaping: still under ~28 KB."""
    import json

    from cards.cases import case_card, case_form_card, case_notice_card
    from services.cases import ANSWER_MAX, COMMENT_MAX, DESCRIPTION_MAX, TITLE_MAX, AttachmentView, CaseView, CommentView

    worst = "*_<>[]" * 1000
    view = CaseView(
        id=1, number="CS-2026-000001", customer_id=1, customer_name="C" * 200, owner_id=1, owner_name="O" * 200,
        title=worst[:TITLE_MAX], description=worst[:DESCRIPTION_MAX], priority=CasePriority.CRITICAL, status=CaseStatus.IN_PROGRESS,
        product_name="P" * 200, answers=tuple((f"Question {i} " + "q" * 280, "text", worst[:ANSWER_MAX]) for i in range(6)),
        created_at=T0, updated_at=T0, resolved_at=None, reopen_until=None, can_reopen=False,
        comments=tuple(CommentView("A" * 200, worst[:COMMENT_MAX], T0, i % 2 == 0) for i in range(40)),
        attachments=tuple(AttachmentView(i, "f" * 255, "image/png", 10**7, T0) for i in range(10)),
    )
    for card in (case_card(view), case_notice_card(view, comment=view.comments[0])):
        size = len(json.dumps(card).encode())
        assert size < 28_000, size
    form = case_form_card(company="C" * 200, form_id="f" * 20, questions=QUESTIONS * 3, products=PRODUCTS * 30, values={"title": worst, "description": worst})
    assert len(json.dumps(form).encode()) < 28_000


@pytest.mark.parametrize(
    "message,verb",
    [
        ("I can't sign in to Outlook", "case.open"),
        ("Outlook keeps crashing", "case.open"),
        ("Why can't I cancel my licence any more?", None),  # a question: the knowledge base's
        ("How do I fix an error in Teams", None),
        ("Can you open a case about the printer?", None),
        ("open a case: can't print?", "case.open"),
        ("CS-2026-000123", "case.details"),
        ("show cs-2026-123", "case.details"),
        ("dashboard", None),
    ],
)
def test_what_the_case_flow_claims_from_free_text(message, verb):
    from dialogs import cases as flow
    from dialogs.router import normalize

    found = flow.match_text(normalize(message), message)
    assert (found[0] if found else None) == verb
