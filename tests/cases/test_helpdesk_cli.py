"""`python -m bot helpdesk-key ...` and `python -m bot helpdesk ...`: the API's operations from the command line."""
from __future__ import annotations

import argparse
import asyncio

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy import inspect, select

from bot.config import Settings
from bot.helpdesk_cli import register
from services.cases import CaseDraft, DatabaseHelpdesk, HelpdeskKey, Viewer, check_key, hash_key, idempotency_key, new_form_id
from services.clock import FixedClock
from services.models import CasePriority, Customer, Outage, Role, User


def _cli(db_url: str, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(Settings(database_url=db_url), args)


@pytest.fixture
def seeded(demo_db, db_url):
    """A Fabrikam case (its owner never talked to Seatdesk, so no notice can be delivered)."""

    async def seed():
        from services import db as database

        engine = database.create_engine(db_url)
        db = database.session_factory(engine)
        try:
            async with db() as session:
                user, customer = (
                    await session.execute(select(User, Customer).join(Customer, Customer.id == User.customer_id).where(Customer.key == "fabrikam", User.role == Role.VIEW))
                ).first()
            opened = await DatabaseHelpdesk(db, FixedClock()).open_case(
                Viewer(customer.id, user.id, user.name), CaseDraft("VPN drops", "", CasePriority.NORMAL, None, {}), idempotency_key(customer.id, user.id, new_form_id())
            )
            return opened.case.number
        finally:
            await engine.dispose()

    return asyncio.run(seed())


def _query(db_url: str, statement):
    async def run():
        engine = create_async_engine(db_url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(statement)).all()
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(db_url: str) -> set[str]:
    async def run():
        engine = create_async_engine(db_url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_keys_are_created_once_stored_hashed_and_revoked(db_url, capsys):
    assert _cli(db_url, "helpdesk-key", "create", "Contoso helpdesk") == 0
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    assert raw.startswith("sdk_") and len(raw) > 40
    [(name, key_hash, prefix)] = _query(db_url, select(HelpdeskKey.name, HelpdeskKey.key_hash, HelpdeskKey.prefix))
    assert name == "Contoso helpdesk" and key_hash == hash_key(raw) and raw not in key_hash and prefix == raw[:10]
    assert _cli(db_url, "helpdesk-key", "create", "Contoso helpdesk") == 2
    assert "exists already" in capsys.readouterr().err
    assert _cli(db_url, "helpdesk-key", "list") == 0 and "active" in capsys.readouterr().out
    assert _cli(db_url, "helpdesk-key", "revoke", "Contoso helpdesk") == 0
    assert _cli(db_url, "helpdesk-key", "list") == 0 and "revoked" in capsys.readouterr().out
    assert _cli(db_url, "helpdesk-key", "revoke", "nobody") == 2


def test_cases_status_comment_and_outages_from_the_command_line(db_url, seeded, capsys):
    number = seeded
    assert _cli(db_url, "helpdesk", "cases", "--customer", "fabrikam") == 0
    out = capsys.readouterr().out
    assert number in out and "VPN drops" in out and "Fabrikam GmbH" in out
    assert _cli(db_url, "helpdesk", "status", number, "in_progress") == 0
    assert f"{number}: new → in_progress; no notice sent" in capsys.readouterr().out
    assert _cli(db_url, "helpdesk", "status", number, "new") == 2
    assert "cannot go from in_progress to new" in capsys.readouterr().err
    assert _cli(db_url, "helpdesk", "comment", number, "Checked the gateway.", "--internal") == 0
    assert "internal comment added" in capsys.readouterr().out
    assert _cli(db_url, "helpdesk", "show", number) == 0
    assert '"internal": true' in capsys.readouterr().out
    assert _cli(db_url, "helpdesk", "show", "CS-2026-999999") == 1
    assert _cli(db_url, "helpdesk", "cases", "--status", "bogus") == 2

    assert _cli(db_url, "helpdesk", "outage-create", "vpn-maint", "--kind", "maintenance", "--title", "VPN gateway update", "--customer", "fabrikam", "--service", "VPN", "--starts-at", "2026-11-29T20:00:00Z", "--ends-at", "2026-11-29T22:00:00Z") == 0
    assert _cli(db_url, "helpdesk", "outage-update", "vpn-maint", "--ends-at", "2026-11-29T23:00:00Z") == 0
    [(ends_at,)] = _query(db_url, select(Outage.ends_at).where(Outage.key == "vpn-maint"))
    assert str(ends_at).startswith("2026-11-29 23:00")
    assert _cli(db_url, "helpdesk", "outage-create", "bad", "--kind", "incident", "--title", "x", "--starts-at", "yesterday") == 2
    assert _cli(db_url, "helpdesk", "outage-update", "nope", "--title", "x") == 1

    assert _cli(db_url, "helpdesk", "policy", "--customer", "fabrikam", "--reopen-days", "3", "--priority", "critical=Production stopped") == 0
    assert _cli(db_url, "helpdesk", "policy", "--priority", "urgent=x") == 2
    assert _cli(db_url, "helpdesk", "policy", "--customer", "nope", "--reopen-days", "3") == 2


def test_the_migration_goes_down_and_up_again(db_url):
    from alembic import command

    from services import db as database

    config = database._alembic_config(db_url)
    tables = lambda: _tables(db_url)  # noqa: E731
    assert {"helpdesk_keys", "helpdesk_policies"} <= tables()
    command.downgrade(config, "0001")
    assert not {"helpdesk_keys", "helpdesk_policies"} & tables() and "support_cases" in tables()
    command.upgrade(config, "head")
    assert {"helpdesk_keys", "helpdesk_policies"} <= tables()


async def test_a_key_is_checked_by_its_hash_and_records_its_use(demo_db, clock):
    from services.cases import create_key

    async with demo_db() as session, session.begin():
        raw = await create_key(session, "ops", clock.now())
    async with demo_db() as session, session.begin():
        assert (await check_key(session, raw, clock.now())).name == "ops"
        assert await check_key(session, raw + "x", clock.now()) is None
        assert await check_key(session, None, clock.now()) is None
        assert await check_key(session, "x" * 500, clock.now()) is None
    async with demo_db() as session:
        assert (await session.execute(select(HelpdeskKey.last_used_at))).scalar_one() == clock.now()
