"""Support cases: the form, the case with its comment thread, the list, and the update notice.

Every sentence is added to the catalogue in `cards.text.MESSAGES` below. Everything a person or
the helpdesk typed goes through `plain()`: HTML or markdown in it is shown as text.
"""
from __future__ import annotations

import json
from typing import Any

from cards import format as fmt
from cards.common import Card, action_set, card, execute, facts, heading, line, plain
from cards.text import MESSAGES, text
from services.cases import (
    ANSWER_MAX,
    COMMENT_MAX,
    DESCRIPTION_MAX,
    TITLE_MAX,
    CasePage,
    CaseView,
    CommentView,
    ProductChoice,
    Question,
)
from services.models import CasePriority, CaseStatus, QuestionKind

MESSAGES["en"].update(
    {
        # the form
        "case.form.title": "Open a support case",
        "case.form.intro": "Tell your IT partner's helpdesk what is wrong at {company}. Fields marked with * are required.",
        "case.form.prefilled": "I filled in what you told me; please check it.",
        "case.form.summary": "Summary",
        "case.form.summary_placeholder": "For example: I can't sign in to Outlook",
        "case.form.description": "What happened? Any error message?",
        "case.form.product": "Product",
        "case.form.no_product": "Not about one product",
        "case.form.priority": "Priority",
        "case.form.priorities": "What the priorities mean",
        "case.form.submit": "Open case",
        "case.form.cancel": "Cancel",
        "case.form.fix": "Please check the fields marked below; the case was not opened yet.",
        "case.form.cancelled": "No case was opened. Type \"open a case\" when you need one.",
        "case.form.no_permission": "Your role can't open cases. Please ask {contact}.",
        "case.priority.low": "Low",
        "case.priority.normal": "Normal",
        "case.priority.high": "High",
        "case.priority.critical": "Critical",
        "case.priority.low.definition": "A question or a small problem with a workaround; no deadline.",
        "case.priority.normal.definition": "One person or a few are affected but can keep working.",
        "case.priority.high.definition": "Several people or an important function are affected; work is seriously hindered.",
        "case.priority.critical.definition": "The business is stopped: many people cannot work (for example nobody can sign in or receive mail).",
        "case.answer.yes": "Yes",
        "case.answer.no": "No",
        # errors next to fields, and refusals
        "case.error.required": "This field is required.",
        "case.error.too_long": "Please keep this under {limit} characters.",
        "case.error.invalid_choice": "Please choose one of the options.",
        "case.error.invalid_value": "This value is not valid.",
        "case.error.invalid_date": "Please enter a date as YYYY-MM-DD.",
        "case.error.not_found": "I can't find case {number} among {company}'s cases.",
        "case.error.not_open": "Case {number} is not open any more, so nothing was changed. Reopen it first if you need to.",
        "case.error.already_open": "Case {number} is still open.",
        "case.error.reopen_expired": "Case {number} can no longer be reopened (that is possible for {days} days after it was resolved). Please open a new case.",
        "case.error.comment_empty": "Please write a comment first.",
        "case.error.comment_too_long": "Please keep the comment under {limit} characters.",
        "case.error.too_many_files": "Case {number} already has {limit} files, the most a case can hold.",
        "case.error.bad_number": "That is not a case number I know. Case numbers look like CS-2026-000123.",
        # the case
        "case.opened.title": "Case {number} is open",
        "case.opened.banner": "Thank you. The helpdesk has your case; I'll message you here when they answer or change its status.",
        "case.opened.again": "You already sent this form: this is the case it opened.",
        "case.title": "Case {number}",
        "case.status": "Status",
        "case.priority": "Priority",
        "case.product": "Product",
        "case.opened_by": "Opened by",
        "case.opened_at": "Opened",
        "case.updated_at": "Last update",
        "case.description": "Description",
        "case.answers": "Your answers",
        "case.files": "Files",
        "case.file_line": "{name} ({size})",
        "case.comments": "Comments",
        "case.comments_none": "No comments yet.",
        "case.comments_earlier": "{count} earlier comments are not shown.",
        "case.comment_line": "{author} · {when}",
        "case.comment.label": "Add a comment",
        "case.comment.placeholder": "Your comment for the helpdesk",
        "case.comment.added": "Your comment was added to case {number}.",
        "case.resolved_until": "Resolved. You can reopen it until {until}.",
        "case.resolved_final": "Resolved.",
        "case.closed_note": "Closed.",
        "case.resolved.banner": "Case {number} is resolved. Thank you!",
        "case.reopened.banner": "Case {number} is open again.",
        "case.helpdesk": "Helpdesk",
        "case.action.comment": "Add comment",
        "case.action.resolve": "Close as resolved",
        "case.action.reopen": "Reopen",
        "case.action.file": "Add a file",
        "case.action.details": "Details",
        "case.action.open": "Open a case",
        "case.action.my_cases": "My cases",
        "case.action.company_cases": "Company cases",
        "case.action.active": "Active cases",
        "case.action.resolved": "Resolved cases",
        "case.action.reply": "Send reply",
        "case.action.view": "Open case",
        "case.status.new": "New",
        "case.status.in_progress": "In progress",
        "case.status.waiting_for_customer": "Waiting for you",
        "case.status.resolved": "Resolved",
        "case.status.closed": "Closed",
        # the list
        "cases.title.mine": "My cases",
        "cases.title.company": "{company}: all cases",
        "cases.filter.active": "Active",
        "cases.filter.resolved": "Resolved",
        "cases.page": "{filter} · page {number} of {count} · {total} cases",
        "cases.page_one": "{filter} · page {number} of {count} · 1 case",
        "cases.empty.active": "No active cases.",
        "cases.empty.resolved": "No resolved cases.",
        "cases.line": "{status} · updated {when}",
        "cases.line_owner": "{status} · updated {when} · {owner}",
        "cases.only_own": "Only admins see all of the company's cases; here are yours.",
        # files
        "case.file.ask": "To add a screenshot or a file to case {number}, send it here in this chat within {minutes} minutes (up to {limit}: images, PDF, text and log files, Office documents, zip).",
        "case.file.stored": "I added {name} ({size}) to case {number}.",
        "case.file.refused_type": "I can't take {name}: only images, PDF, text and log files, Office documents and zip files can be added. Case {number} is unchanged.",
        "case.file.refused_too_big": "{name} is larger than {limit}, so I didn't add it. Case {number} is unchanged; please send a smaller file or a zip.",
        "case.file.refused_download": "I couldn't download {name} from Teams, so it is not on case {number} yet. The case itself is fine; please send the file again.",
        "case.file.no_case": "Which case is this file for? Open the case and click \"Add a file\", then send it again.",
        "case.file.working": "I'm adding {names} to case {number}. The download takes a moment: I'll tell you here what was added.",
        # notices
        "case.notice.title": "Update on case {number}",
        "case.notice.status": "The status changed from {old} to **{new}**.",
        "case.notice.comment": "{author} wrote:",
        "case.notice.reply_label": "Your reply",
    }
)

_ASSOCIATED_NONE = {"associatedInputs": "none"}
# Teams refuses messages above ~28 KB: long texts are clipped on the card (the helpdesk keeps them whole).
SHOWN_COMMENT_CHARS = 800
SHOWN_DESCRIPTION_CHARS = 1500
SHOWN_ANSWER_CHARS = 300
SHOWN_COMMENTS = 8
CARD_BUDGET = 24_000


def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _button(title: str, verb: str, data: dict[str, Any] | None = None, *, style: str | None = None, inputs: bool = False) -> dict:
    """An Action.Execute; buttons that don't send the card's inputs must not be blocked by their validation."""
    action = execute(title, verb, data, style=style)
    if not inputs:
        action.update(_ASSOCIATED_NONE)
        action["fallback"].update(_ASSOCIATED_NONE)
    return action


def size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size} B"


def status_text(status: CaseStatus, loc: str | None) -> str:
    return text(loc, "case.status." + status.value)


def priority_text(priority: CasePriority, loc: str | None) -> str:
    return text(loc, "case.priority." + priority.value)


def priority_definitions(custom: dict[str, str], loc: str | None) -> list[tuple[str, str]]:
    """The reseller's own definitions where it gave them, else the catalogue's."""
    return [
        (priority_text(p, loc), plain(custom[p.value]) if custom.get(p.value) else text(loc, f"case.priority.{p.value}.definition"))
        for p in CasePriority
    ]


def _error(errors: dict[str, tuple[str, dict[str, object]]], field: str, loc: str | None) -> list[dict]:
    if field not in errors:
        return []
    key, values = errors[field]
    return [{"type": "TextBlock", "text": text(loc, key, **values), "color": "Attention", "wrap": True, "size": "Small", "spacing": "None"}]


def _str(values: dict[str, Any], key: str, limit: int) -> str | None:
    value = values.get(key)
    return value[:limit] if isinstance(value, str) and value else None


def _question_input(question: Question, value: str | None, loc: str | None) -> dict:
    # Input labels are drawn as plain text (no markdown), so the reseller's label is used as it is.
    base: dict[str, Any] = {"id": question.input_id, "label": question.label, "isRequired": question.required}
    if question.required:
        base["errorMessage"] = text(loc, "case.error.required")
    if question.kind == QuestionKind.TEXT:
        base.update({"type": "Input.Text", "maxLength": ANSWER_MAX})
    elif question.kind == QuestionKind.CHOICE:
        base.update({"type": "Input.ChoiceSet", "style": "compact", "choices": [{"title": c, "value": c} for c in question.choices]})
    elif question.kind == QuestionKind.YES_NO:
        base.update(
            {
                "type": "Input.ChoiceSet",
                "style": "expanded",
                "choices": [{"title": text(loc, "case.answer.yes"), "value": "yes"}, {"title": text(loc, "case.answer.no"), "value": "no"}],
            }
        )
    else:
        base.update({"type": "Input.Date"})
        if question.required:
            base["errorMessage"] = text(loc, "case.error.invalid_date")
    if value:
        base["value"] = value[:ANSWER_MAX]
    return base


def case_form_card(
    *,
    company: str,
    form_id: str,
    questions: list[Question],
    products: list[ProductChoice],
    definitions: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, tuple[str, dict[str, object]]] | None = None,
    prefilled: bool = False,
    locale: str | None = None,
) -> Card:
    loc = locale
    values = values or {}
    errors = errors or {}
    body: list[dict] = [heading(text(loc, "case.form.title")), line(text(loc, "case.form.intro", company=plain(company)), subtle=True, spacing="None")]
    if errors:
        body.append({"type": "TextBlock", "text": text(loc, "case.form.fix"), "color": "Attention", "weight": "Bolder", "wrap": True})
    elif prefilled:
        body.append(line(text(loc, "case.form.prefilled"), subtle=True))
    title_input: dict[str, Any] = {
        "type": "Input.Text",
        "id": "title",
        "label": text(loc, "case.form.summary"),
        "placeholder": text(loc, "case.form.summary_placeholder"),
        "maxLength": TITLE_MAX,
        "isRequired": True,
        "errorMessage": text(loc, "case.error.required"),
    }
    if _str(values, "title", TITLE_MAX):
        title_input["value"] = _str(values, "title", TITLE_MAX)
    body += [title_input, *_error(errors, "title", loc)]
    description: dict[str, Any] = {
        "type": "Input.Text",
        "id": "description",
        "label": text(loc, "case.form.description"),
        "isMultiline": True,
        "maxLength": DESCRIPTION_MAX,
    }
    if _str(values, "description", DESCRIPTION_MAX):
        description["value"] = _str(values, "description", DESCRIPTION_MAX)
    body += [description, *_error(errors, "description", loc)]
    if products:
        chosen = values.get("product") if isinstance(values.get("product"), str) else "none"
        body.append(
            {
                "type": "Input.ChoiceSet",
                "id": "product",
                "label": text(loc, "case.form.product"),
                "style": "compact",
                "value": chosen or "none",
                "choices": [{"title": text(loc, "case.form.no_product"), "value": "none"}]
                + [{"title": p.name, "value": str(p.id)} for p in products],
            }
        )
        body += _error(errors, "product", loc)
    priority = values.get("priority") if values.get("priority") in {p.value for p in CasePriority} else CasePriority.NORMAL.value
    body.append(
        {
            "type": "Input.ChoiceSet",
            "id": "priority",
            "label": text(loc, "case.form.priority"),
            "style": "compact",
            "isRequired": True,
            "errorMessage": text(loc, "case.error.invalid_choice"),
            "value": priority,
            "choices": [{"title": priority_text(p, loc), "value": p.value} for p in CasePriority],
        }
    )
    body += _error(errors, "priority", loc)
    body.append(
        {
            "type": "Container",
            "style": "emphasis",
            "spacing": "Small",
            "items": [
                line(text(loc, "case.form.priorities"), weight="Bolder", size="Small"),
                {**facts(priority_definitions(definitions or {}, loc)), "spacing": "None"},
            ],
        }
    )
    for question in questions:
        raw = values.get(question.input_id)
        body.append(_question_input(question, raw if isinstance(raw, str) else None, loc))
        body += _error(errors, question.input_id, loc)
    actions = [
        _button(text(loc, "case.form.submit"), "case.submit", {"form_id": form_id}, style="positive", inputs=True),
        _button(text(loc, "case.form.cancel"), "case.cancel", {"form_id": form_id}),
    ]
    return card(body, actions)


def form_cancelled_card(locale: str | None = None) -> Card:
    return card([line(text(locale, "case.form.cancelled"))], [_button(text(locale, "case.action.my_cases"), "cases.list")])


def _answer_value(kind: str, value: str, loc: str | None) -> str:
    if kind == QuestionKind.YES_NO.value:
        return text(loc, "case.answer." + value) if value in ("yes", "no") else plain(value)
    if kind == QuestionKind.DATE.value:
        try:
            from datetime import date

            return fmt.day(date.fromisoformat(value), loc)
        except ValueError:
            return plain(value)
    return plain(value)


def _comment_block(comment: CommentView, loc: str | None) -> dict:
    author = plain(comment.author) if comment.from_customer else f"{plain(comment.author)} ({text(loc, 'case.helpdesk')})"
    return {
        "type": "Container",
        "separator": True,
        "spacing": "Small",
        "items": [
            line(text(loc, "case.comment_line", author=author, when=fmt.moment(comment.at, loc)), subtle=True, size="Small", weight="Bolder"),
            line(plain(clip(comment.body, SHOWN_COMMENT_CHARS)), spacing="None"),
        ],
    }


def _state_line(view: CaseView, loc: str | None) -> dict | None:
    if view.status == CaseStatus.RESOLVED:
        if view.can_reopen and view.reopen_until is not None:
            return line(text(loc, "case.resolved_until", until=fmt.moment(view.reopen_until, loc)), subtle=True)
        return line(text(loc, "case.resolved_final"), subtle=True)
    if view.status == CaseStatus.CLOSED:
        return line(text(loc, "case.closed_note"), subtle=True)
    return None


def case_card(
    view: CaseView,
    *,
    banner: str | None = None,
    opened: bool = False,
    can_manage: bool = True,
    max_comments: int = SHOWN_COMMENTS,
    locale: str | None = None,
) -> Card:
    """One case with its public comment thread; the comment box and buttons fit what may be done now.

    Fewer comments are shown when the card would not fit into one Teams message."""
    while True:
        built = _case_card(view, banner=banner, opened=opened, can_manage=can_manage, max_comments=max_comments, locale=locale)
        if max_comments <= 1 or len(json.dumps(built).encode()) <= CARD_BUDGET:
            return built
        max_comments -= 1


def _case_card(view: CaseView, *, banner: str | None, opened: bool, can_manage: bool, max_comments: int, locale: str | None) -> Card:
    loc = locale
    title = text(loc, "case.opened.title" if opened else "case.title", number=view.number)
    body: list[dict] = [heading(title), line(plain(view.title), weight="Bolder", spacing="None")]
    if banner:
        body.append({"type": "TextBlock", "text": banner, "wrap": True, "color": "Good"})
    pairs = [
        (text(loc, "case.status"), status_text(view.status, loc)),
        (text(loc, "case.priority"), priority_text(view.priority, loc)),
    ]
    if view.product_name:
        pairs.append((text(loc, "case.product"), plain(view.product_name)))
    pairs += [
        (text(loc, "case.opened_by"), plain(view.owner_name)),
        (text(loc, "case.opened_at"), fmt.moment(view.created_at, loc)),
        (text(loc, "case.updated_at"), fmt.moment(view.updated_at, loc)),
    ]
    pairs += [(plain(label), _answer_value(kind, clip(value, SHOWN_ANSWER_CHARS), loc)) for label, kind, value in view.answers]
    body.append(facts(pairs))
    state = _state_line(view, loc)
    if state:
        body.append(state)
    if view.description:
        body += [line(text(loc, "case.description"), weight="Bolder", spacing="Medium"), line(plain(clip(view.description, SHOWN_DESCRIPTION_CHARS)), spacing="None")]
    if view.attachments:
        body.append(line(text(loc, "case.files"), weight="Bolder", spacing="Medium"))
        body += [
            line("- " + text(loc, "case.file_line", name=plain(a.filename), size=size_text(a.size)), spacing="None", size="Small")
            for a in view.attachments
        ]
    body.append(line(text(loc, "case.comments"), weight="Bolder", spacing="Medium"))
    shown = view.comments[-max_comments:]
    if len(view.comments) > len(shown):
        body.append(line(text(loc, "case.comments_earlier", count=len(view.comments) - len(shown)), subtle=True, size="Small", spacing="None"))
    if shown:
        body += [_comment_block(c, loc) for c in shown]
    else:
        body.append(line(text(loc, "case.comments_none"), subtle=True, spacing="None"))
    actions: list[dict] = []
    ref = {"number": view.number}
    if view.is_open:
        body.append(
            {
                "type": "Input.Text",
                "id": "comment",
                "label": text(loc, "case.comment.label"),
                "placeholder": text(loc, "case.comment.placeholder"),
                "isMultiline": True,
                "maxLength": COMMENT_MAX,
                "isRequired": True,
                "errorMessage": text(loc, "case.error.comment_empty"),
            }
        )
        # The comment's own buttons sit under the box; the case's actions below, so none is cut short.
        body.append(
            action_set(
                [
                    _button(text(loc, "case.action.comment"), "case.comment", ref, style="positive", inputs=True),
                    _button(text(loc, "case.action.file"), "case.file", ref),
                ]
            )
        )
        if can_manage:
            actions.append(_button(text(loc, "case.action.resolve"), "case.resolve", ref))
    elif view.can_reopen and can_manage:
        actions.append(_button(text(loc, "case.action.reopen"), "case.reopen", ref))
    actions.append(_button(text(loc, "case.action.my_cases"), "cases.list"))
    return card(body, actions)


def case_list_card(page: CasePage, *, company: str, can_see_all: bool, locale: str | None = None) -> Card:
    loc = locale
    title = text(loc, "cases.title.company", company=plain(company)) if page.all_company else text(loc, "cases.title.mine")
    filter_name = text(loc, "cases.filter.active" if page.active else "cases.filter.resolved")
    body: list[dict] = [heading(title)]
    scope = "company" if page.all_company else "mine"
    if not page.lines:
        body.append(line(text(loc, "cases.empty.active" if page.active else "cases.empty.resolved")))
    else:
        key = "cases.page_one" if page.total == 1 else "cases.page"
        body.append(line(text(loc, key, filter=filter_name, number=page.number, count=page.count, total=page.total), subtle=True, spacing="None"))
    for entry in page.lines:
        status = status_text(entry.status, loc)
        when = fmt.day(entry.updated_at, loc)
        sub = (
            text(loc, "cases.line_owner", status=status, when=when, owner=plain(entry.owner_name))
            if page.all_company
            else text(loc, "cases.line", status=status, when=when)
        )
        body.append(
            {
                "type": "ColumnSet",
                "separator": True,
                "columns": [
                    {
                        "type": "Column",
                        "width": "stretch",
                        "items": [
                            line(f"**{entry.number}** {plain(entry.title)}"),
                            line(sub, subtle=True, size="Small", spacing="None"),
                        ],
                    },
                    {
                        "type": "Column",
                        "width": "auto",
                        "verticalContentAlignment": "Center",
                        "items": [{"type": "ActionSet", "actions": [_button(text(loc, "case.action.details"), "case.details", {"number": entry.number})]}],
                    },
                ],
            }
        )
    base = {"scope": scope, "filter": "active" if page.active else "resolved"}
    paging = []
    if page.has_previous:
        paging.append(_button(text(loc, "action.previous"), "cases.list", {**base, "page": page.number - 1}))
    if page.has_next:
        paging.append(_button(text(loc, "action.next"), "cases.list", {**base, "page": page.number + 1}))
    if paging:
        body.append(action_set(paging))
    actions = []
    other = "resolved" if page.active else "active"
    actions.append(_button(text(loc, "case.action." + other), "cases.list", {"scope": scope, "filter": other, "page": 1}))
    if can_see_all:
        if page.all_company:
            actions.append(_button(text(loc, "case.action.my_cases"), "cases.list", {"scope": "mine", "filter": base["filter"], "page": 1}))
        else:
            actions.append(_button(text(loc, "case.action.company_cases"), "cases.list", {"scope": "company", "filter": base["filter"], "page": 1}))
    actions.append(_button(text(loc, "case.action.open"), "case.open"))
    return card(body, actions)


def case_notice_card(
    view: CaseView,
    *,
    old_status: CaseStatus | None = None,
    comment: CommentView | None = None,
    locale: str | None = None,
) -> Card:
    """What the owner gets when the helpdesk changes the status or answers: the update and a reply box."""
    loc = locale
    body: list[dict] = [heading(text(loc, "case.notice.title", number=view.number)), line(plain(view.title), weight="Bolder", spacing="None")]
    if old_status is not None and old_status != view.status:
        body.append(line(text(loc, "case.notice.status", old=status_text(old_status, loc), new=status_text(view.status, loc))))
        state = _state_line(view, loc)
        if state:
            body.append(state)
    if comment is not None:
        author = f"{plain(comment.author)} ({text(loc, 'case.helpdesk')})"
        body.append(line(text(loc, "case.notice.comment", author=author), subtle=True, weight="Bolder", size="Small"))
        body.append({"type": "Container", "style": "emphasis", "spacing": "None", "items": [line(plain(clip(comment.body, SHOWN_COMMENT_CHARS * 3)))]})
    ref = {"number": view.number}
    actions: list[dict] = []
    if view.is_open:
        body.append(
            {
                "type": "Input.Text",
                "id": "comment",
                "label": text(loc, "case.notice.reply_label"),
                "isMultiline": True,
                "maxLength": COMMENT_MAX,
                "isRequired": True,
                "errorMessage": text(loc, "case.error.comment_empty"),
            }
        )
        actions.append(_button(text(loc, "case.action.reply"), "case.comment", ref, style="positive", inputs=True))
    elif view.can_reopen:
        actions.append(_button(text(loc, "case.action.reopen"), "case.reopen", ref))
    actions.append(_button(text(loc, "case.action.view"), "case.details", ref))
    return card(body, actions)
