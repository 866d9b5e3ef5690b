"""`python -m bot helpdesk ...` and `python -m bot helpdesk-key ...`: the helpdesk API's operations
from the command line, for the reseller's staff and for scripts."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from bot.config import Settings


@contextlib.asynccontextmanager
async def _notifier(settings: Settings, db):
    """The bot's own proactive sender, so notices from the command line look like those from the API."""
    from bot.adapter import SeatdeskAdapter
    from bot.app import make_connector
    from bot.proactive import ProactiveNotifier

    adapter = SeatdeskAdapter(make_connector(settings), settings.app_id)
    try:
        yield ProactiveNotifier(adapter, db, settings.app_id)
    finally:
        await adapter.close()


def _run(settings: Settings, work) -> Any:
    from services import db as database

    database.migrate(settings.database_url)

    async def main():
        engine = database.create_engine(settings.database_url)
        try:
            return await work(database.session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _clock():
    from services.clock import SystemClock

    return SystemClock()


def _fail(message: str, code: int = 2) -> int:
    print(message, file=sys.stderr)
    return code


# -- keys -----------------------------------------------------------------------------------
def cmd_key_create(settings: Settings, args) -> int:
    from sqlalchemy.exc import IntegrityError

    from services.cases import create_key

    name = " ".join(args.name.split())
    if not name or len(name) > 100:
        return _fail("the key's name must be 1 to 100 characters")

    async def work(db):
        async with db() as session, session.begin():
            return await create_key(session, name, _clock().now())

    try:
        raw = _run(settings, work)
    except IntegrityError:
        return _fail(f"a key named '{name}' exists already; revoke it or choose another name")
    print(f"API key for '{name}' (shown once; only its hash is stored):\n{raw}")
    return 0


def cmd_key_list(settings: Settings, args) -> int:
    from sqlalchemy import select

    from services.cases import HelpdeskKey

    async def work(db):
        async with db() as session:
            return (await session.execute(select(HelpdeskKey).order_by(HelpdeskKey.name))).scalars().all()

    for key in _run(settings, work):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"last used {key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
        print(f"{key.name}  {key.prefix}…  {state}  {used}")
    return 0


def cmd_key_revoke(settings: Settings, args) -> int:
    from sqlalchemy import select

    from services.cases import HelpdeskKey

    async def work(db):
        async with db() as session, session.begin():
            key = (await session.execute(select(HelpdeskKey).where(HelpdeskKey.name == args.name))).scalar_one_or_none()
            if key is None:
                return False
            key.revoked_at = key.revoked_at or _clock().now()
            return True

    if not _run(settings, work):
        return _fail(f"no key named '{args.name}'")
    print(f"revoked '{args.name}'")
    return 0


# -- cases ----------------------------------------------------------------------------------
def cmd_cases(settings: Settings, args) -> int:
    from services.cases import CaseError, DatabaseHelpdesk
    from services.models import CaseStatus

    try:
        statuses = tuple(CaseStatus(s) for s in args.status.split(",") if s)
    except ValueError:
        return _fail("--status takes: " + ", ".join(s.value for s in CaseStatus))

    async def work(db):
        return await DatabaseHelpdesk(db, _clock()).staff_list(customer_key=args.customer, statuses=statuses, page=args.page, page_size=25)

    try:
        page = _run(settings, work)
    except CaseError:
        return _fail(f"unknown customer '{args.customer}'")
    if args.json:
        print(json.dumps([{"number": c.number, "customer": c.customer_name, "title": c.title, "status": c.status.value, "priority": c.priority.value, "updated_at": c.updated_at.isoformat()} for c in page.lines], indent=2))
        return 0
    if not page.lines:
        print("no cases")
    for c in page.lines:
        print(f"{c.number}  {c.status.value:<20} {c.priority.value:<8} {c.updated_at:%Y-%m-%d %H:%M}  {c.customer_name}: {c.title}")
    if page.count > 1:
        print(f"page {page.number} of {page.count} ({page.total} cases); --page N for more")
    return 0


def cmd_show(settings: Settings, args) -> int:
    from bot.helpdesk_api import case_json
    from services.cases import DatabaseHelpdesk, parse_number

    number = parse_number(args.number)
    if number is None:
        return _fail("a case number looks like CS-2026-000123")
    view = _run(settings, lambda db: DatabaseHelpdesk(db, _clock()).staff_get(number))
    if view is None:
        return _fail(f"no case {number}", 1)
    print(json.dumps(case_json(view, internal=True), indent=2, ensure_ascii=False))
    return 0


def cmd_status(settings: Settings, args) -> int:
    from bot.helpdesk_api import notify_owner
    from services.cases import CaseError, DatabaseHelpdesk, parse_number
    from services.models import CaseStatus

    number = parse_number(args.number)
    if number is None:
        return _fail("a case number looks like CS-2026-000123")
    try:
        status = CaseStatus(args.status)
    except ValueError:
        return _fail("status is one of: " + ", ".join(s.value for s in CaseStatus))

    async def work(db):
        desk = DatabaseHelpdesk(db, _clock())
        changed = await desk.set_status(number, status, args.author)
        notified = False
        if not args.no_notify:
            async with _notifier(settings, db) as notifier:
                notified = await notify_owner(desk, db, notifier, changed.case, old=changed.old)
        return changed, notified

    try:
        changed, notified = _run(settings, work)
    except CaseError as error:
        return _fail({"not_found": f"no case {number}", "same_status": f"{number} is already {status.value}"}.get(error.code, f"{number} cannot go from {error.values.get('old')} to {status.value}"))
    print(f"{number}: {changed.old.value} → {changed.new.value}" + ("; the owner was notified in Teams" if notified else "; no notice sent"))
    return 0


def cmd_comment(settings: Settings, args) -> int:
    from bot.helpdesk_api import notify_owner
    from services.cases import CaseError, DatabaseHelpdesk, parse_number, validate_comment

    number = parse_number(args.number)
    if number is None:
        return _fail("a case number looks like CS-2026-000123")
    body = validate_comment(args.text)
    if isinstance(body, CaseError):
        return _fail("the comment is empty or too long")

    async def work(db):
        desk = DatabaseHelpdesk(db, _clock())
        view = await desk.staff_comment(number, body, internal=args.internal, author=args.author)
        notified = False
        if not args.internal and not args.no_notify:
            async with _notifier(settings, db) as notifier:
                notified = await notify_owner(desk, db, notifier, view, comment=view.comments[-1])
        return notified

    try:
        notified = _run(settings, work)
    except CaseError:
        return _fail(f"no case {number}", 1)
    kind = "internal comment" if args.internal else "public comment"
    print(f"{kind} added to {number}" + ("; the owner was notified in Teams" if notified else ""))
    return 0


def cmd_outage(settings: Settings, args) -> int:
    from services import outages

    data: dict[str, Any] = {}
    for name in ("key", "kind", "title", "description", "customer", "starts_at", "ends_at"):
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    if args.service:
        data["services"] = args.service
    if args.action == "create":
        data.setdefault("customer", None)
    key = None if args.action == "create" else data.pop("key")

    async def work(db):
        async with db() as session, session.begin():
            return await outages.save(session, data, key=key)

    try:
        view = _run(settings, work)
    except LookupError:
        return _fail(f"no outage '{key}'", 1)
    except outages.OutageError as error:
        return _fail(str(error))
    print(f"outage {view.key}: {view.kind.value} '{view.title}' {view.starts_at:%Y-%m-%d %H:%M} – {view.ends_at:%Y-%m-%d %H:%M}" if view.ends_at else f"outage {view.key}: {view.kind.value} '{view.title}' since {view.starts_at:%Y-%m-%d %H:%M}, open-ended")
    return 0


def cmd_policy(settings: Settings, args) -> int:
    from sqlalchemy import select

    from services.cases import set_policy
    from services.models import CasePriority, Customer

    definitions: dict[str, str] = {}
    for item in args.priority or []:
        level, _, meaning = item.partition("=")
        if level not in {p.value for p in CasePriority} or not meaning.strip() or len(meaning) > 300:
            return _fail("--priority takes LEVEL=MEANING, LEVEL one of low, normal, high, critical (meaning ≤ 300 characters)")
        definitions[level] = meaning.strip()

    async def work(db):
        async with db() as session, session.begin():
            customer_id = None
            if args.customer:
                customer = (await session.execute(select(Customer).where(Customer.key == args.customer))).scalar_one_or_none()
                if customer is None:
                    return False
                customer_id = customer.id
            await set_policy(session, customer_id, reopen_days=args.reopen_days, definitions=definitions, now=_clock().now())
            return True

    if not _run(settings, work):
        return _fail(f"unknown customer '{args.customer}'")
    print("case settings saved for " + (args.customer or "every customer"))
    return 0


def _days(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 365:
        raise argparse.ArgumentTypeError("between 0 and 365")
    return value


def register(subparsers) -> None:
    """Add `helpdesk-key` and `helpdesk` to `python -m bot`'s subcommands."""
    keys = subparsers.add_parser("helpdesk-key", help="create, list and revoke API keys of the helpdesk API")
    key_sub = keys.add_subparsers(dest="key_command", required=True)
    p = key_sub.add_parser("create", help="create a key (printed once)")
    p.add_argument("name")
    p.set_defaults(run=cmd_key_create)
    key_sub.add_parser("list", help="list keys (names, prefixes, last use)").set_defaults(run=cmd_key_list)
    p = key_sub.add_parser("revoke", help="revoke a key")
    p.add_argument("name")
    p.set_defaults(run=cmd_key_revoke)

    desk = subparsers.add_parser("helpdesk", help="work the built-in helpdesk: cases, comments, outages, settings")
    sub = desk.add_subparsers(dest="helpdesk_command", required=True)
    p = sub.add_parser("cases", help="list cases")
    p.add_argument("--status", default="new,in_progress,waiting_for_customer", help="comma-separated statuses")
    p.add_argument("--customer", help="a customer key")
    p.add_argument("--page", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_cases)
    p = sub.add_parser("show", help="one case with every comment (internal ones too)")
    p.add_argument("number")
    p.set_defaults(run=cmd_show)
    p = sub.add_parser("status", help="change a case's status; the owner gets a notice in Teams")
    p.add_argument("number")
    p.add_argument("status", help="new, in_progress, waiting_for_customer, resolved or closed")
    p.add_argument("--author", default="Helpdesk")
    p.add_argument("--no-notify", action="store_true")
    p.set_defaults(run=cmd_status)
    p = sub.add_parser("comment", help="add a comment; a public one is sent to the owner in Teams")
    p.add_argument("number")
    p.add_argument("text")
    p.add_argument("--internal", action="store_true", help="only the helpdesk sees it")
    p.add_argument("--author", default="Helpdesk")
    p.add_argument("--no-notify", action="store_true")
    p.set_defaults(run=cmd_comment)
    for action in ("create", "update"):
        p = sub.add_parser(f"outage-{action}", help=f"{action} an outage (maintenance or incident)")
        p.add_argument("key")
        p.add_argument("--kind", choices=["maintenance", "incident"], required=action == "create")
        p.add_argument("--title", required=action == "create")
        p.add_argument("--description")
        p.add_argument("--customer", help="a customer key; none = every customer")
        p.add_argument("--service", action="append", help="an affected service (repeat)")
        p.add_argument("--starts-at", dest="starts_at", required=action == "create", help="ISO 8601 with zone, e.g. 2026-11-29T20:00:00Z")
        p.add_argument("--ends-at", dest="ends_at", help="ISO 8601 with zone")
        p.set_defaults(run=cmd_outage, action=action)
    p = sub.add_parser("policy", help="case settings: reopen window and priority definitions (per customer or for all)")
    p.add_argument("--customer", help="a customer key; none = the default for every customer")
    p.add_argument("--reopen-days", dest="reopen_days", type=_days)
    p.add_argument("--priority", action="append", metavar="LEVEL=MEANING")
    p.set_defaults(run=cmd_policy)
