"""`python -m bot` (or `seatdesk`): serve the bot and administer its data."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from bot.config import Settings, SettingsError

log = logging.getLogger("seatdesk")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


async def _with_db(settings: Settings, work):
    from services import db as database

    engine = database.create_engine(settings.database_url)
    try:
        return await work(database.session_factory(engine))
    finally:
        await engine.dispose()


def cmd_migrate(settings: Settings, args) -> int:
    from services import db as database

    database.migrate(settings.database_url)
    print("database schema is up to date")
    return 0


def cmd_import(settings: Settings, args) -> int:
    from services import db as database
    from services.clock import SystemClock
    from services.importer import ImportFileError, import_file

    database.migrate(settings.database_url)
    try:
        report = asyncio.run(_with_db(settings, lambda db: import_file(db, Path(args.file), clock=SystemClock())))
    except ImportFileError as error:
        print(f"import refused, nothing was changed: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    print(report)
    return 0


def cmd_demo(settings: Settings, args) -> int:
    from services import db as database
    from services.clock import SystemClock
    from services.importer import load_demo

    database.migrate(settings.database_url)
    report = asyncio.run(_with_db(settings, lambda db: load_demo(db, clock=SystemClock())))
    print(report)
    return 0


def cmd_users(settings: Settings, args) -> int:
    from services import db as database
    from services.directory import list_users

    database.migrate(settings.database_url)
    users = asyncio.run(_with_db(settings, list_users))
    if args.json:
        print(json.dumps([u.as_dict() for u in users], indent=2))
        return 0
    if not users:
        print("no users yet: run `python -m bot demo` or `python -m bot import FILE`")
        return 0
    rows = [("customer", "role", "name", "e-mail", "tenant id", "entra object id")]
    rows += [(u.customer, u.role + (" (partner staff)" if u.partner_staff else ""), u.name, u.email, u.tenant_id, u.aad_object_id) for u in users]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def cmd_serve(settings: Settings, args) -> int:
    from aiohttp import web

    from bot.app import create_app
    from services import db as database
    from services.clock import SystemClock
    from services.importer import database_is_empty, load_demo

    settings.check_can_serve()
    database.migrate(settings.database_url)
    if settings.load_demo:
        async def _demo_if_empty(db):
            if await database_is_empty(db):
                await load_demo(db, clock=SystemClock())
                log.info("the database was empty: loaded the demo data")

        asyncio.run(_with_db(settings, _demo_if_empty))
    if not settings.auth_enabled:
        log.warning("!!! AUTHENTICATION IS OFF: anonymous development mode (SEATDESK_ALLOW_ANONYMOUS=1). Never expose this to a network. !!!")
    app = create_app(settings, worker_interval=settings.worker_interval_seconds)
    log.info("Seatdesk listening on http://%s:%s/api/messages", settings.host, settings.port)
    web.run_app(app, host=settings.host, port=settings.port, print=None, handle_signals=True)
    return 0


def cmd_sync(settings: Settings, args) -> int:
    from services import db as database
    from services.clock import SystemClock
    from services.partnercenter import PartnerCenter, sync_now

    config = settings.partner_center_config()
    if config is None:
        print("nothing to synchronise: SEATDESK_PROVIDER is not partnercenter (the built-in ledger is the system of record)", file=sys.stderr)
        return 2
    database.migrate(settings.database_url)

    async def run(db):
        pc = PartnerCenter.connect(config)
        try:
            return await sync_now(db, pc, SystemClock().now(), args.what)
        finally:
            await pc.close()

    for report in asyncio.run(_with_db(settings, run)):
        print(report)
    return 0


def cmd_package(settings: Settings, args) -> int:
    from bot.package import build_package, uses_placeholder_app_id

    out = build_package(settings, Path(args.out))
    if uses_placeholder_app_id(settings):
        print("warning: MicrosoftAppId is not set; the package carries a placeholder id that Teams will not accept", file=sys.stderr)
    print(f"wrote {out}")
    return 0


def cmd_gallery(settings: Settings, args) -> int:
    from bot.gallery import run_gallery

    return run_gallery()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Seatdesk: Microsoft 365 self-service for your customers, in Teams.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="migrate, load the demo data into an empty database, and serve /api/messages").set_defaults(run=cmd_serve)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(run=cmd_migrate)
    p = sub.add_parser("import", help="load catalogs, customers, users, subscriptions and outages from a YAML or JSON file")
    p.add_argument("file")
    p.set_defaults(run=cmd_import)
    sub.add_parser("demo", help="load the demo data (safe to repeat)").set_defaults(run=cmd_demo)
    p = sub.add_parser("users", help="list the people Seatdesk knows, with their tenant and Entra object ids")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=cmd_users)
    p = sub.add_parser("sync", help="synchronise with Partner Center now: subscriptions, catalog, or both")
    p.add_argument("what", nargs="?", choices=["all", "subscriptions", "catalog"], default="all")
    p.set_defaults(run=cmd_sync)
    p = sub.add_parser("package", help="write the Teams app package (manifest and icons)")
    p.add_argument("--out", default="build/seatdesk.zip")
    p.set_defaults(run=cmd_package)
    sub.add_parser("gallery", help="render every card with the official Adaptive Cards renderer into docs/cards/").set_defaults(run=cmd_gallery)
    from bot.helpdesk_cli import register as register_helpdesk

    register_helpdesk(sub)
    from bot.eval_cli import register as register_eval

    register_eval(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    _setup_logging(settings)
    from sqlalchemy.exc import DBAPIError, OperationalError

    from services.db import describe

    try:
        return args.run(settings, args)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except (OperationalError, DBAPIError) as error:
        print(f"cannot use the database {describe(settings.database_url)}: {error.orig}", file=sys.stderr)
        return 3
    except OSError as error:
        print(f"cannot use {error.filename or 'a file'}: {error.strerror}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
