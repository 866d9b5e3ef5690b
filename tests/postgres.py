"""Running the suite on PostgreSQL: SEATDESK_TEST_DATABASE_URL=postgresql+asyncpg://... (e.g. the
URL `.ci/postgres` prints). The schema is migrated once into a template database; every test
gets a fresh copy of it (CREATE DATABASE ... TEMPLATE, a file copy) and it is dropped afterwards."""
from __future__ import annotations

import asyncio
import os
import uuid

from sqlalchemy.engine import make_url

ENV = "SEATDESK_TEST_DATABASE_URL"


def test_database_url() -> str | None:
    url = os.environ.get(ENV, "").strip()
    if not url:
        return None
    if make_url(url).get_backend_name() != "postgresql":
        raise ValueError(f"{ENV} must be a postgresql+asyncpg:// URL (got {make_url(url).render_as_string(hide_password=True)})")
    return url


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    import asyncpg

    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, password=parsed.password, database=parsed.database
    )
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _run(coroutine) -> None:
    # Fixtures run outside the test's event loop; alembic's own migrate() does the same.
    asyncio.run(coroutine)


def create_template(url: str) -> str:
    """A migrated, empty database for this test session; returns its name."""
    from services import db as database

    name = f"seatdesk_template_{uuid.uuid4().hex[:10]}"
    _run(_admin(url, f'CREATE DATABASE "{name}"'))
    database.migrate(_with_database(url, name))
    return name


def create_from_template(url: str, template: str) -> str:
    name = f"seatdesk_test_{uuid.uuid4().hex[:12]}"
    _run(_admin(url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return _with_database(url, name)


def drop(url: str, name: str) -> None:
    _run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
