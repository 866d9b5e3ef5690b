"""Support cases in chat: open one (a form with the reseller's questions), list, details with the
comment thread, comment, resolve, reopen, and files sent into the chat for a case."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from cards import cases as case_cards
from cards.common import plain
from cards.cases import case_card, case_form_card, case_list_card, form_cancelled_card, size_text
from dialogs.base import BadActionData, FlowContext, IncomingFile, Outcome, Reply, Verb, int_field
from dialogs.slow import within_deadline
from services import attachments
from services.cases import (
    FORM_ID,
    TITLE_MAX,
    CaseError,
    CaseView,
    DatabaseHelpdesk,
    Helpdesk,
    Invalid,
    Viewer,
    idempotency_key,
    asks_for_a_case,
    looks_like_a_problem,
    new_form_id,
    parse_number,
    product_mentioned,
    summary_from,
    validate_comment,
    validate_form,
)
from services.permissions import Permission

FILE_WINDOW = timedelta(minutes=30)
FILES_PER_MESSAGE = 5
STATE_KEY = "case_file"
# A question ("why can't I cancel?") is for the knowledge base; a statement of a problem opens a case.
QUESTION_WORDS = frozenset("why how what when where which who can could is are do does did should will would wie was warum wann wo kann".split())
_NUMBER_SAID = re.compile(r"^(?:case|details|show|open|status)?\s*(cs\s*-?\s*\d{4}\s*-?\s*\d{1,9})$")

assert case_cards  # the catalogue of case sentences is registered on import


def helpdesk(ctx: FlowContext) -> Helpdesk:
    """The helpdesk the flows talk to: the built-in one unless the turn carries another (a PSA connector)."""
    return getattr(ctx, "helpdesk", None) or DatabaseHelpdesk(ctx.db, ctx.clock)


def viewer(ctx: FlowContext) -> Viewer:
    ident = ctx.identity
    return Viewer(customer_id=ident.customer_id, user_id=ident.user_id, name=ident.name, sees_all=ident.can(Permission.VIEW_ALL_CASES))


def _number(ctx: FlowContext, data: dict[str, Any]) -> str:
    number = parse_number(data.get("number"))
    if number is None:
        raise BadActionData("number")
    return number


def _refusal(ctx: FlowContext, error: CaseError, number: str | None = None) -> Outcome:
    values = {"number": number or "", "company": ctx.identity.customer_name, **error.values}
    return Outcome([Reply(text=ctx.text("case.error." + error.code, **values))])


def _card(ctx: FlowContext, view: CaseView, **kw: Any) -> Reply:
    return Reply(card=case_card(view, locale=ctx.locale, **kw))


# -- opening a case -----------------------------------------------------------------------
async def open_form(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    data = data or {}
    desk = helpdesk(ctx)
    customer_id = ctx.identity.customer_id
    questions = await desk.questions(customer_id)
    products = await desk.products(customer_id)
    policy = await desk.policy(customer_id)
    values: dict[str, Any] = {}
    summary = data.get("summary")
    if isinstance(summary, str) and summary.strip():
        values["title"] = summary.strip()[:TITLE_MAX]
        mentioned = product_mentioned(summary, products)
        if mentioned is not None:
            values["product"] = str(mentioned.id)
    card = case_form_card(
        company=ctx.identity.customer_name,
        form_id=new_form_id(),
        questions=questions,
        products=products,
        definitions=policy.priority_definitions,
        values=values,
        prefilled=bool(values),
        locale=ctx.locale,
    )
    return Outcome([Reply(card=card)])


async def submit(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    form_id = data.get("form_id")
    if not isinstance(form_id, str) or not FORM_ID.match(form_id):
        raise BadActionData("form_id")
    desk = helpdesk(ctx)
    who = viewer(ctx)
    key = idempotency_key(who.customer_id, who.user_id, form_id)
    customer_id = ctx.identity.customer_id
    questions = await desk.questions(customer_id)
    products = await desk.products(customer_id)
    draft = validate_form(data, questions, products)
    if isinstance(draft, Invalid):
        existing = await desk.find_submission(who, key)
        if existing is not None:  # a retry of a form that was already sent: show its case
            return Outcome([_card(ctx, existing, banner=ctx.text("case.opened.again"))])
        policy = await desk.policy(customer_id)
        card = case_form_card(
            company=ctx.identity.customer_name,
            form_id=form_id,
            questions=questions,
            products=products,
            definitions=policy.priority_definitions,
            values=data,
            errors=draft.errors,
            locale=ctx.locale,
        )
        return Outcome([Reply(card=card)])
    try:
        opened = await desk.open_case(who, draft, key)
    except CaseError as error:
        return _refusal(ctx, error)
    if not opened.created:
        return Outcome([_card(ctx, opened.case, opened=True, banner=ctx.text("case.opened.again"))])
    _await_file(ctx, opened.case.number)
    return Outcome(
        [
            _card(ctx, opened.case, opened=True, banner=ctx.text("case.opened.banner")),
            Reply(text=_file_ask(ctx, opened.case.number)),
        ]
    )


async def cancel(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    return Outcome([Reply(card=form_cancelled_card(ctx.locale))])


# -- lists and details --------------------------------------------------------------------
async def list_page(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    data = data or {}
    page = int_field(data, "page", default=1, high=100_000)
    scope = data.get("scope", "mine")
    filter_ = data.get("filter", "active")
    if scope not in ("mine", "company") or filter_ not in ("active", "resolved"):
        raise BadActionData("scope")
    who = viewer(ctx)
    replies: list[Reply] = []
    if scope == "company" and not who.sees_all:
        replies.append(Reply(text=ctx.text("cases.only_own")))
    result = await helpdesk(ctx).list_cases(who, all_company=scope == "company", active=filter_ == "active", page=page, page_size=ctx.page_size)
    card = case_list_card(result, company=ctx.identity.customer_name, can_see_all=who.sees_all, locale=ctx.locale)
    return Outcome([Reply(card=card), *replies])


async def company_list(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    return await list_page(ctx, {"scope": "company", "filter": "active", "page": 1})


async def resolved_list(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    return await list_page(ctx, {"scope": "mine", "filter": "resolved", "page": 1})


async def details(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    raw = data.get("number")
    number = parse_number(raw)
    if number is None:
        if isinstance(raw, str):
            return Outcome([Reply(text=ctx.text("case.error.bad_number"))])
        raise BadActionData("number")
    view = await helpdesk(ctx).get_case(viewer(ctx), number)
    if view is None:
        return _refusal(ctx, CaseError("not_found"), number)
    return Outcome([_card(ctx, view)])


async def comment(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    number = _number(ctx, data)
    body = validate_comment(data.get("comment"))
    if isinstance(body, CaseError):
        return _refusal(ctx, body, number)
    try:
        view = await helpdesk(ctx).add_comment(viewer(ctx), number, body)
    except CaseError as error:
        return _refusal(ctx, error, number)
    return Outcome([_card(ctx, view, banner=ctx.text("case.comment.added", number=number))])


async def resolve(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    number = _number(ctx, data)
    try:
        view = await helpdesk(ctx).resolve(viewer(ctx), number)
    except CaseError as error:
        return _refusal(ctx, error, number)
    return Outcome([_card(ctx, view, banner=ctx.text("case.resolved.banner", number=number))])


async def reopen(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    number = _number(ctx, data)
    try:
        view = await helpdesk(ctx).reopen(viewer(ctx), number)
    except CaseError as error:
        return _refusal(ctx, error, number)
    return Outcome([_card(ctx, view, banner=ctx.text("case.reopened.banner", number=number))])


# -- files --------------------------------------------------------------------------------
def _file_ask(ctx: FlowContext, number: str) -> str:
    return ctx.text("case.file.ask", number=number, minutes=int(FILE_WINDOW.total_seconds() // 60), limit=size_text(attachments.MAX_BYTES))


def _await_file(ctx: FlowContext, number: str) -> None:
    ctx.state[STATE_KEY] = {"number": number, "until": (ctx.clock.now() + FILE_WINDOW).isoformat()}


def _awaited(ctx: FlowContext) -> str | None:
    entry = ctx.state.get(STATE_KEY)
    if not isinstance(entry, dict):
        return None
    try:
        until = datetime.fromisoformat(str(entry.get("until")))
    except ValueError:
        return None
    if until < ctx.clock.now():
        ctx.state.pop(STATE_KEY, None)
        return None
    return parse_number(entry.get("number"))


async def ask_for_file(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    number = _number(ctx, data)
    view = await helpdesk(ctx).get_case(viewer(ctx), number)
    if view is None:
        return _refusal(ctx, CaseError("not_found"), number)
    _await_file(ctx, number)
    return Outcome([Reply(text=_file_ask(ctx, number))])


async def files_received(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    number = _awaited(ctx)
    if number is None:
        return Outcome([Reply(text=ctx.text("case.file.no_case"))])
    if ctx.activity_id and ctx.state.get(STATE_KEY, {}).get("last_activity") == ctx.activity_id:
        return Outcome([])  # Teams delivered the same message again: its files are stored already
    ctx.state[STATE_KEY]["last_activity"] = ctx.activity_id
    desk, who = helpdesk(ctx), viewer(ctx)
    if await desk.get_case(who, number) is None:
        ctx.state.pop(STATE_KEY, None)
        return _refusal(ctx, CaseError("not_found"), number)
    files = ctx.files[:FILES_PER_MESSAGE]
    names = ", ".join(plain(attachments.safe_filename(f.name)) for f in files)
    # Each download may take up to 10 s: past the turn's deadline the person hears what was added afterwards.
    return await within_deadline(
        ctx, f"files/{ctx.activity_id or uuid.uuid4().hex}", lambda: _attach(ctx, number, files), working=Reply(text=ctx.text("case.file.working", names=names, number=number))
    )


async def _token(ctx: FlowContext, incoming: IncomingFile) -> str | None:
    """A pasted image is fetched with the bot's own token; a file upload's downloadUrl is pre-authenticated."""
    if incoming.kind != "image" or ctx.file_token is None:
        return None
    return await ctx.file_token(incoming.download_url)


async def _attach(ctx: FlowContext, number: str, files: tuple[IncomingFile, ...]) -> Outcome:
    desk, who = helpdesk(ctx), viewer(ctx)
    replies: list[Reply] = []
    limit = size_text(attachments.MAX_BYTES)
    for incoming in files:
        got = await attachments.download(
            incoming.download_url, incoming.name, incoming.content_type, token=await _token(ctx, incoming), max_bytes=attachments.MAX_BYTES
        )
        if isinstance(got, attachments.Refused):
            key = {"type": "case.file.refused_type", "too_big": "case.file.refused_too_big"}.get(got.why.value, "case.file.refused_download")
            replies.append(Reply(text=ctx.text(key, name=plain(got.filename), number=number, limit=limit)))
            continue
        try:
            stored = await desk.attach(who, number, got.filename, got.content_type, got.data)
        except CaseError as error:
            replies.append(_refusal(ctx, error, number).replies[0])
            break
        replies.append(Reply(text=ctx.text("case.file.stored", name=plain(stored.filename), size=size_text(stored.size), number=number)))
    return Outcome(replies)


# -- what people type ---------------------------------------------------------------------
def match_text(said: str, message: str) -> tuple[str, dict[str, Any]] | None:
    """For the router, after its fixed phrases: a case number, or a problem described in words."""
    found = _NUMBER_SAID.match(said)
    if found:
        return "case.details", {"number": found.group(1)}
    asked = message.strip().endswith("?") or said.split(" ", 1)[0] in QUESTION_WORDS
    if looks_like_a_problem(said) and (not asked or asks_for_a_case(said)):
        return "case.open", {"summary": summary_from(message)}
    return None


VERBS = {
    "case.open": Verb(open_form, Permission.OPEN_CASES),
    "case.new": Verb(open_form, Permission.OPEN_CASES),  # the knowledge flow's "not helpful → open a case"
    "case.submit": Verb(submit, Permission.OPEN_CASES),
    "case.cancel": Verb(cancel, Permission.OPEN_CASES),
    "cases.list": Verb(list_page, Permission.VIEW_OWN_CASES),
    "cases.company": Verb(company_list, Permission.VIEW_OWN_CASES),
    "cases.resolved": Verb(resolved_list, Permission.VIEW_OWN_CASES),
    "case.details": Verb(details, Permission.VIEW_OWN_CASES),
    "case.comment": Verb(comment, Permission.VIEW_OWN_CASES),
    "case.resolve": Verb(resolve, Permission.VIEW_OWN_CASES),
    "case.reopen": Verb(reopen, Permission.VIEW_OWN_CASES),
    "case.file": Verb(ask_for_file, Permission.VIEW_OWN_CASES),
    "files.received": Verb(files_received, Permission.VIEW_OWN_CASES),
}
PHRASES = {
    "case.open": (
        "open a case", "open case", "new case", "create a case", "create case", "open a ticket", "new ticket",
        "raise a ticket", "report a problem", "report an issue", "support", "i need support", "contact support",
    ),
    "cases.list": ("my cases", "cases", "my tickets", "tickets", "show my cases", "active cases", "open cases", "case status"),
    "cases.company": ("company cases", "all cases", "our cases", "all company cases"),
    "cases.resolved": ("resolved cases", "closed cases", "my resolved cases"),
}
