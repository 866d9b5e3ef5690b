"""Database connections: SQLite statements run on the event loop when they need no wait and never block it
on a lock; pooled PostgreSQL connections are pinged when they sat idle, not on every checkout."""
from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from sqlalchemy import text

from services import db as database


@pytest.fixture
async def sqlite_engine(tmp_path):
    path = tmp_path / "driver.db"
    engine = database.create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    yield engine, path
    await engine.dispose()


def _hold_write_lock(path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (2)")
    return other


async def test_a_statement_without_a_wait_runs_on_the_loop_thread(sqlite_engine):
    engine, _ = sqlite_engine
    seen = []
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.create_function("where_am_i", 0, lambda: seen.append(threading.get_ident()) or 1)
        assert (await conn.execute(text("SELECT where_am_i()"))).scalar() == 1
    assert seen == [threading.get_ident()]


async def test_reads_go_on_while_another_process_holds_the_write_lock(sqlite_engine):
    engine, path = sqlite_engine
    other = _hold_write_lock(path)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 1  # WAL: the committed row
    finally:
        other.rollback()
        other.close()


async def test_a_write_waits_for_the_lock_in_its_thread_while_the_loop_keeps_serving(sqlite_engine):
    engine, path = sqlite_engine
    other = _hold_write_lock(path)

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (3)"))

    task = asyncio.create_task(write())
    try:
        for _ in range(20):
            await asyncio.sleep(0)  # the loop comes back to this test: the waiting write does not block it
        assert not task.done()
    finally:
        other.commit()
        other.close()
    await task
    async with engine.connect() as conn:
        assert sorted((await conn.execute(text("SELECT x FROM t"))).scalars()) == [1, 2, 3]
        # back on the loop, the connection waits for nobody again
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 0


async def test_a_statement_that_fails_for_another_reason_fails_at_once(sqlite_engine):
    engine, _ = sqlite_engine
    async with engine.connect() as conn:
        with pytest.raises(Exception, match="no such table"):
            await conn.execute(text("SELECT * FROM missing"))
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 1


# -- PostgreSQL: pooled connections are pinged when they sat idle, not on every checkout ---------------
class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def pg_engine(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL pool (SEATDESK_TEST_DATABASE_URL)")
    clock = _Clock()
    engine = database.create_engine(db_url, ping_after_idle_seconds=1.0, clock=clock)
    yield engine, clock
    await engine.dispose()


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()


async def test_a_connection_in_steady_use_is_not_pinged(pg_engine, monkeypatch):
    engine, clock = pg_engine
    pings = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(1) or ping(conn))
    first = await _backend_pid(engine)
    assert await _backend_pid(engine) == first and pings == []  # back in the pool a moment ago
    clock.now += 5
    assert await _backend_pid(engine) == first and pings == [1]  # idle for 5 s: pinged, alive


async def test_an_idle_connection_the_server_dropped_is_replaced_not_an_error(pg_engine):
    engine, clock = pg_engine
    dead = await _backend_pid(engine)
    async with database.create_engine(str(engine.url.render_as_string(hide_password=False))).connect() as admin:
        assert (await admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": dead})).scalar()
    clock.now += 5  # e.g. the server restarted while the pool sat idle
    assert await _backend_pid(engine) != dead
