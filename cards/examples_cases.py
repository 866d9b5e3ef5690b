"""Example support-case and outage cards for the gallery and the renderer check."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cards.cases import case_card, case_form_card, case_list_card, case_notice_card, form_cancelled_card
from cards.common import Card
from cards.outages import outage_status_card, past_outages_card
from services.cases import AttachmentView, CaseLine, CasePage, CaseView, CommentView, ProductChoice, Question
from services.models import CasePriority, CaseStatus, OutageKind, QuestionKind
from services.outages import OutageStatus, OutageView, PastPage

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)
FORM_ID = "k3J9xQ2mVb7TzR1wYp4a"

QUESTIONS = [
    Question("device", "Which device/OS is affected?", QuestionKind.CHOICE, False, ("Windows", "macOS", "iPhone / iPad", "Android", "Web browser", "Other")),
    Question("affected_users", "How many users are affected?", QuestionKind.CHOICE, True, ("Just me", "2-10 users", "More than 10 users", "Everyone")),
    Question("since", "Since when does the problem occur?", QuestionKind.DATE, False),
    Question("remote", "Can we connect remotely?", QuestionKind.YES_NO, False),
    Question("cost_centre", "Cost centre (Kostenstelle)", QuestionKind.TEXT, True),
]
PRODUCTS = [ProductChoice(1, "Microsoft 365 E3"), ProductChoice(2, "Visio Plan 2"), ProductChoice(3, "Power BI Pro")]


def _case(status: CaseStatus = CaseStatus.IN_PROGRESS, **over) -> CaseView:
    values = dict(
        id=1,
        number="CS-2026-000123",
        customer_id=1,
        customer_name="Fabrikam GmbH",
        owner_id=5,
        owner_name="Lukas Schneider",
        title="I can't sign in to Outlook",
        description="Since this morning Outlook asks for my password again and again. Error 0x800CCC0E. <Teams> works.",
        priority=CasePriority.HIGH,
        status=status,
        product_name="Microsoft 365 E3",
        answers=(
            ("How many users are affected?", "choice", "Just me"),
            ("Since when does the problem occur?", "date", "2026-11-21"),
            ("Cost centre (Kostenstelle)", "text", "4711"),
        ),
        created_at=NOW - timedelta(days=1, hours=2),
        updated_at=NOW - timedelta(hours=1),
        resolved_at=None,
        reopen_until=None,
        can_reopen=False,
        comments=(
            CommentView("Priya Raman", "Thanks, Lukas. Could you try signing in at outlook.office.com and tell me whether that works?", NOW - timedelta(hours=20), False),
            CommentView("Lukas Schneider", "The web works. Only the desktop app keeps asking.", NOW - timedelta(hours=19), True),
            CommentView("Priya Raman", "We reset your Outlook profile remotely. Please restart Outlook.", NOW - timedelta(hours=1), False),
        ),
        attachments=(AttachmentView(1, "outlook-error.png", "image/png", 184_320, NOW - timedelta(days=1)),),
    )
    values.update(over)
    return CaseView(**values)


def _lines(n: int, start: int = 123) -> tuple[CaseLine, ...]:
    titles = ["I can't sign in to Outlook", "Teams calls drop after 5 minutes", "New starter needs a licence", "Shared mailbox not visible", "OneDrive stops syncing"]
    statuses = [CaseStatus.IN_PROGRESS, CaseStatus.NEW, CaseStatus.WAITING_FOR_CUSTOMER, CaseStatus.IN_PROGRESS, CaseStatus.NEW]
    owners = ["Lukas Schneider", "Anna Müller", "Thomas Wagner", "Katrin Vogel", "Lukas Schneider"]
    return tuple(
        CaseLine(f"CS-2026-{start - i:06d}", titles[i % 5], statuses[i % 5], CasePriority.NORMAL, NOW - timedelta(hours=3 * i), owners[i % 5], "Fabrikam GmbH")
        for i in range(n)
    )


def _outages() -> tuple[OutageView, ...]:
    return (
        OutageView(
            "incident-shared-mailboxes",
            OutageKind.INCIDENT,
            "Outlook cannot open shared mailboxes",
            "Since this morning Outlook for Windows shows \"cannot expand the folder\" for shared mailboxes. Outlook on the web works.",
            ("Exchange Online", "Outlook"),
            NOW - timedelta(hours=2),
            None,
            False,
        ),
        OutageView(
            "maint-backup",
            OutageKind.MAINTENANCE,
            "Planned maintenance of the Microsoft 365 backup service",
            "Backups and restores are paused during the window; mail and files keep working.",
            ("Microsoft 365 backup", "Exchange Online", "OneDrive"),
            NOW + timedelta(days=7, hours=11),
            NOW + timedelta(days=7, hours=14, minutes=30),
            True,
        ),
        OutageView("past-teams", OutageKind.INCIDENT, "Teams calls dropped after a few minutes", "Resolved. A faulty firewall update dropped calls.", ("Teams Phone",), NOW - timedelta(days=10), NOW - timedelta(days=10) + timedelta(hours=3, minutes=25), True),
    )


def examples() -> dict[str, Card]:
    outages = _outages()
    resolved = _case(CaseStatus.RESOLVED, resolved_at=NOW - timedelta(hours=2), reopen_until=NOW + timedelta(days=14) - timedelta(hours=2), can_reopen=True)
    return {
        "case-form": case_form_card(company="Fabrikam GmbH", form_id=FORM_ID, questions=QUESTIONS, products=PRODUCTS),
        "case-form-prefilled": case_form_card(
            company="Fabrikam GmbH",
            form_id=FORM_ID,
            questions=QUESTIONS[:3],
            products=PRODUCTS,
            values={"title": "Visio keeps crashing when I open a drawing", "product": "2"},
            prefilled=True,
        ),
        "case-form-errors": case_form_card(
            company="Fabrikam GmbH",
            form_id=FORM_ID,
            questions=QUESTIONS,
            products=PRODUCTS,
            values={"title": "", "priority": "high", "q_since": "31.12.2026"},
            errors={
                "title": ("case.error.required", {}),
                "q_affected_users": ("case.error.required", {}),
                "q_since": ("case.error.invalid_date", {}),
                "q_cost_centre": ("case.error.required", {}),
            },
        ),
        "case-opened": case_card(
            _case(CaseStatus.NEW, comments=(), attachments=(), updated_at=NOW, created_at=NOW),
            opened=True,
            banner="Thank you. The helpdesk has your case; I'll message you here when they answer or change its status.",
        ),
        "case-details": case_card(_case()),
        "case-details-resolved": case_card(resolved),
        "case-list": case_list_card(CasePage(_lines(10), 1, 2, 12, active=True, all_company=False), company="Fabrikam GmbH", can_see_all=False),
        "case-list-company": case_list_card(CasePage(_lines(5), 2, 3, 25, active=True, all_company=True), company="Fabrikam GmbH", can_see_all=True),
        "case-list-empty": case_list_card(CasePage((), 1, 1, 0, active=False, all_company=False), company="Fabrikam GmbH", can_see_all=False),
        "case-notice-status": case_notice_card(_case(CaseStatus.WAITING_FOR_CUSTOMER, comments=()), old_status=CaseStatus.IN_PROGRESS),
        "case-notice-comment": case_notice_card(_case(), comment=_case().comments[-1]),
        "case-notice-resolved": case_notice_card(resolved, old_status=CaseStatus.IN_PROGRESS),
        "case-form-cancelled": form_cancelled_card(),
        "outages": outage_status_card("Northwind Traders", OutageStatus(outages[:1], outages[1:2]), now=NOW),
        "outages-none": outage_status_card("Fabrikam GmbH", OutageStatus((), ()), now=NOW),
        "outages-past": past_outages_card("Northwind Traders", PastPage(outages[2:], 1, 1, 1), days=180),
    }
