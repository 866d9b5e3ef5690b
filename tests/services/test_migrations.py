"""The schema's migrations on the database under test (SQLite, or PostgreSQL in the second CI pass)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import delete, func, inspect, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from services import audit
from services import db as database
from services.models import AuditEntry

AT = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = database.create_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_every_migration_goes_down_and_up_again(db_url):
    """Guards a downgrade() that no longer matches its upgrade() (a deploy must be reversible)."""
    config = database._alembic_config(db_url)
    head = ScriptDirectory.from_config(config).get_current_head()
    migrated = _tables(db_url)
    assert {"customers", "subscriptions", "audit_entries", "bot_state", "notices"} <= migrated

    command.downgrade(config, "base")
    assert _tables(db_url) - {"alembic_version"} == set()

    database.migrate(db_url)
    assert _tables(db_url) == migrated
    assert head == "0005"


async def _entry(db) -> int:
    async with db() as session, session.begin():
        entry = audit.record(
            session, at=AT, actor=audit.SEATDESK, customer_id=None, action="seats.change",
            target_type="subscription", target_id=1, summary="10 → 12 seats", source="test",
        )
        await session.flush()
        return entry.id


async def test_the_audit_trail_refuses_updates_and_deletes(db, engine):
    """Append-only for every writer: not even a direct UPDATE, DELETE (or TRUNCATE) through SQL changes history."""
    entry_id = await _entry(db)
    statements = [
        update(AuditEntry).where(AuditEntry.id == entry_id).values(summary="rewritten"),
        delete(AuditEntry).where(AuditEntry.id == entry_id),
    ]
    if engine.dialect.name == "postgresql":
        statements.append(text("TRUNCATE audit_entries"))
    for statement in statements:
        with pytest.raises((IntegrityError, DBAPIError), match="append-only"):
            async with db() as session, session.begin():
                await session.execute(statement)
    async with db() as session:
        kept = (await session.execute(select(AuditEntry.summary).where(AuditEntry.id == entry_id))).scalar_one()
    assert kept == "10 → 12 seats"
    # Appending still works.
    await _entry(db)
    async with db() as session:
        assert (await session.execute(select(func.count(AuditEntry.id)))).scalar_one() == 2

