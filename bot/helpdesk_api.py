"""The reseller's helpdesk API (/api/helpdesk/...): list and read cases, change their status, add
public or internal comments, create and update outages. Documented in docs/helpdesk-openapi.yaml.

Every request needs `X-Api-Key` (created with `python -m bot helpdesk-key create NAME`; only its
hash is stored). A status change or a public comment sends the case's owner a notice in Teams.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web
from sqlalchemy import select

from cards.cases import case_notice_card
from dialogs.base import Reply
from services import db as database
from services import outages
from services.cases import (
    AUTHOR_MAX,
    CaseError,
    CaseView,
    CommentView,
    DatabaseHelpdesk,
    Helpdesk,
    Viewer,
    check_key,
    parse_number,
    validate_comment,
)
from services.models import CaseStatus, User

log = logging.getLogger("seatdesk.helpdesk")

OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "helpdesk-openapi.yaml"
PAGE_SIZE_MAX = 100

Handler = Callable[[web.Request, "Context"], Awaitable[web.Response]]


class Context:
    """What a helpdesk request works with: the runtime's database, clock and notifier, and the key's name."""

    def __init__(self, request: web.Request, key_name: str) -> None:
        from bot.app import RUNTIME  # bot.app imports this module to add the routes

        runtime = request.app[RUNTIME]
        self.db = database.session_factory(runtime.engine)
        self.clock = runtime.clock
        self.notifier = runtime.bot.notifier
        self.key_name = key_name
        self.helpdesk: Helpdesk = DatabaseHelpdesk(self.db, self.clock)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _authenticated(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapper(request: web.Request) -> web.Response:
        from bot.app import RUNTIME

        runtime = request.app[RUNTIME]
        db = database.session_factory(runtime.engine)
        async with db() as session, session.begin():
            key = await check_key(session, request.headers.get("X-Api-Key"), runtime.clock.now())
            name = key.name if key else None
        if name is None:
            return web.json_response({"error": "a valid X-Api-Key header is required"}, status=401, headers={"WWW-Authenticate": "ApiKey"})
        return await handler(request, Context(request, name))

    return wrapper


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    if "application/json" not in request.headers.get("Content-Type", ""):
        return _error(415, "Content-Type must be application/json")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    return body


def _time(value) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def case_json(view: CaseView, *, internal: bool) -> dict[str, Any]:
    return {
        "number": view.number,
        "customer": view.customer_name,
        "owner": view.owner_name,
        "title": view.title,
        "description": view.description,
        "priority": view.priority.value,
        "status": view.status.value,
        "product": view.product_name,
        "answers": [{"label": label, "kind": kind, "value": value} for label, kind, value in view.answers],
        "created_at": _time(view.created_at),
        "updated_at": _time(view.updated_at),
        "resolved_at": _time(view.resolved_at),
        "reopen_until": _time(view.reopen_until),
        "comments": [
            {"author": c.author, "body": c.body, "at": _time(c.at), "internal": c.internal, "from_customer": c.from_customer}
            for c in view.comments
            if internal or not c.internal
        ],
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size, "at": _time(a.at)} for a in view.attachments
        ],
    }


def _int_query(request: web.Request, name: str, default: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 1 <= value <= high else None


def _number(request: web.Request) -> str | None:
    return parse_number(request.match_info["number"])


async def notify_owner(helpdesk: Helpdesk, db, notifier, view: CaseView, *, old: CaseStatus | None = None, comment: CommentView | None = None) -> bool:
    """Tell the case's owner in Teams, with the case as they see it (never internal comments)."""
    owner_view = await helpdesk.get_case(Viewer(view.customer_id, view.owner_id, view.owner_name), view.number)
    if owner_view is None:
        return False
    async with db() as session:
        owner = await session.get(User, view.owner_id)
        locale = owner.locale if owner else None
    card = case_notice_card(owner_view, old_status=old, comment=comment, locale=locale)
    sent = await notifier.send(view.owner_id, [Reply(card=card)])
    return bool(sent)


# -- cases ----------------------------------------------------------------------------------
async def list_cases(request: web.Request, ctx: Context) -> web.Response:
    raw_status = request.query.get("status", "new,in_progress,waiting_for_customer")
    try:
        statuses = tuple(CaseStatus(s.strip()) for s in raw_status.split(",") if s.strip())
    except ValueError:
        return _error(400, "status must be a comma-separated list of: " + ", ".join(s.value for s in CaseStatus))
    page = _int_query(request, "page", 1, 100_000)
    page_size = _int_query(request, "page_size", 25, PAGE_SIZE_MAX)
    if page is None or page_size is None:
        return _error(400, f"page must be ≥ 1 and page_size between 1 and {PAGE_SIZE_MAX}")
    try:
        result = await ctx.helpdesk.staff_list(customer_key=request.query.get("customer"), statuses=statuses, page=page, page_size=page_size)
    except CaseError:
        return _error(404, "unknown customer")
    return web.json_response(
        {
            "page": result.number,
            "pages": result.count,
            "total": result.total,
            "cases": [
                {
                    "number": line.number,
                    "customer": line.customer_name,
                    "owner": line.owner_name,
                    "title": line.title,
                    "status": line.status.value,
                    "priority": line.priority.value,
                    "updated_at": _time(line.updated_at),
                }
                for line in result.lines
            ],
        }
    )


async def get_case(request: web.Request, ctx: Context) -> web.Response:
    number = _number(request)
    view = await ctx.helpdesk.staff_get(number) if number else None
    if view is None:
        return _error(404, "no such case")
    return web.json_response(case_json(view, internal=True))


async def change_status(request: web.Request, ctx: Context) -> web.Response:
    number = _number(request)
    if number is None:
        return _error(404, "no such case")
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    try:
        status = CaseStatus(body.get("status"))
    except ValueError:
        return _error(422, "status must be one of: " + ", ".join(s.value for s in CaseStatus))
    try:
        changed = await ctx.helpdesk.set_status(number, status, _author(body, ctx))
    except CaseError as error:
        if error.code == "not_found":
            return _error(404, "no such case")
        if error.code == "same_status":
            return _error(409, f"the case is already {status.value}")
        return _error(409, f"a case cannot go from {error.values.get('old')} to {error.values.get('new')}")
    notified = await notify_owner(ctx.helpdesk, ctx.db, ctx.notifier, changed.case, old=changed.old)
    return web.json_response({"case": case_json(changed.case, internal=True), "notified": notified})


def _author(body: dict[str, Any], ctx: Context) -> str:
    author = body.get("author")
    if isinstance(author, str) and author.strip():
        return " ".join(author.split())[:AUTHOR_MAX]
    return ctx.key_name


async def add_comment(request: web.Request, ctx: Context) -> web.Response:
    number = _number(request)
    if number is None:
        return _error(404, "no such case")
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    internal = body.get("internal", False)
    if not isinstance(internal, bool):
        return _error(422, "internal must be true or false")
    text = validate_comment(body.get("body"))
    if isinstance(text, CaseError):
        return _error(422, "body is required" if text.code == "comment_empty" else f"body is longer than {text.values['limit']} characters")
    if "author" in body and not isinstance(body["author"], str):
        return _error(422, "author must be text")
    try:
        view = await ctx.helpdesk.staff_comment(number, text, internal=internal, author=_author(body, ctx))
    except CaseError:
        return _error(404, "no such case")
    notified = False
    if not internal:
        notified = await notify_owner(ctx.helpdesk, ctx.db, ctx.notifier, view, comment=view.comments[-1])
    return web.json_response({"case": case_json(view, internal=True), "notified": notified}, status=201)


async def get_attachment(request: web.Request, ctx: Context) -> web.Response:
    number = _number(request)
    try:
        attachment_id = int(request.match_info["attachment"])
    except ValueError:
        return _error(404, "no such attachment")
    found = await ctx.helpdesk.attachment(number, attachment_id) if number else None
    if found is None:
        return _error(404, "no such attachment")
    meta, data = found
    safe = meta.filename.replace('"', "").replace("\\", "")
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{safe}"', "X-Content-Type": meta.content_type, "X-Content-Type-Options": "nosniff"},
    )


# -- outages --------------------------------------------------------------------------------
def outage_json(view: outages.OutageView, customer_key: str | None) -> dict[str, Any]:
    return {
        "key": view.key,
        "customer": customer_key,
        "kind": view.kind.value,
        "title": view.title,
        "description": view.description,
        "services": list(view.services),
        "starts_at": _time(view.starts_at),
        "ends_at": _time(view.ends_at),
    }


async def list_outages(request: web.Request, ctx: Context) -> web.Response:
    include_past = request.query.get("include_past", "false").lower() in ("1", "true", "yes")
    async with ctx.db() as session:
        found = await outages.all_outages(session, ctx.clock.now(), include_past=include_past)
    return web.json_response({"outages": [outage_json(v, key) for v, key in found]})


async def _save_outage(request: web.Request, ctx: Context, key: str | None) -> web.Response:
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    try:
        async with ctx.db() as session, session.begin():
            view = await outages.save(session, body, key=key)
            customer_key = await _customer_key(session, view.key)
    except LookupError:
        return _error(404, "no such outage")
    except outages.OutageError as error:
        return _error(422, str(error))
    return web.json_response(outage_json(view, customer_key), status=201 if key is None else 200)


async def _customer_key(session, outage_key: str) -> str | None:
    from services.models import Customer, Outage

    return (
        await session.execute(select(Customer.key).join(Outage, Outage.customer_id == Customer.id).where(Outage.key == outage_key))
    ).scalar_one_or_none()


async def create_outage(request: web.Request, ctx: Context) -> web.Response:
    return await _save_outage(request, ctx, None)


async def update_outage(request: web.Request, ctx: Context) -> web.Response:
    return await _save_outage(request, ctx, request.match_info["key"])


async def openapi(request: web.Request) -> web.Response:
    return web.FileResponse(OPENAPI, headers={"Content-Type": "application/yaml"})


def add_routes(app: web.Application) -> None:
    """Mount /api/helpdesk/ on Seatdesk's app (which must carry bot.app.RUNTIME by the first request)."""
    app.router.add_get("/api/helpdesk/openapi.yaml", openapi)
    app.router.add_get("/api/helpdesk/cases", _authenticated(list_cases))
    app.router.add_get("/api/helpdesk/cases/{number}", _authenticated(get_case))
    app.router.add_post("/api/helpdesk/cases/{number}/status", _authenticated(change_status))
    app.router.add_post("/api/helpdesk/cases/{number}/comments", _authenticated(add_comment))
    app.router.add_get("/api/helpdesk/cases/{number}/attachments/{attachment}", _authenticated(get_attachment))
    app.router.add_get("/api/helpdesk/outages", _authenticated(list_outages))
    app.router.add_post("/api/helpdesk/outages", _authenticated(create_outage))
    app.router.add_patch("/api/helpdesk/outages/{key}", _authenticated(update_outage))
