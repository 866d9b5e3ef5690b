"""The database: one async engine per process, sessions handed to the services."""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path

import aiosqlite
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _ensure_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


# How long a SQLite statement may wait for another connection's write lock.
SQLITE_PATIENCE_MS = 30_000
_RETRY_UNSAFE = frozenset({"executemany", "executescript"})  # may have run in part when they meet a lock


class LoopFirstSqlite(aiosqlite.Connection):
    """aiosqlite, except that a statement runs on the event loop when it needs no wait.

    aiosqlite hands every call (execute, fetch, commit, close of a cursor) to the connection's own
    thread and back: four to five thread hops per statement, which cost far more than SQLite's
    microseconds of work. In WAL mode readers never wait, and a writer waits only for another
    writer's lock; so each call is tried on the loop with a busy timeout of 0, and only a call that
    meets a lock is handed to the thread, which waits for it with the usual patience. Nothing ever
    blocks the loop on a lock (see docs/architecture.md, "SQLite on the event loop").
    """

    async def _execute(self, fn, *args, **kwargs):
        if self._running and self._connection is not None and getattr(fn, "__name__", "") not in _RETRY_UNSAFE:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                # A busy statement did nothing (SQLite undoes it whole); it is tried again with patience.
                if (getattr(error, "sqlite_errorcode", 0) & 0xFF) != sqlite3.SQLITE_BUSY:
                    raise
        return await super()._execute(self._patiently, fn, *args, **kwargs)

    def _patiently(self, fn, *args, **kwargs):
        """In the connection's thread: wait for the lock as long as SQLite would, then back to no wait."""
        self._conn.execute(f"PRAGMA busy_timeout={SQLITE_PATIENCE_MS}")
        try:
            return fn(*args, **kwargs)
        finally:
            self._conn.execute("PRAGMA busy_timeout=0")


def _connect_loop_first(database, **kwargs) -> LoopFirstSqlite:
    kwargs.pop("timeout", None)
    kwargs["check_same_thread"] = False  # used from the loop and from its own thread, never both at once
    connection = LoopFirstSqlite(partial(sqlite3.connect, str(database), timeout=0, **kwargs), 64)
    connection._thread.daemon = True
    return connection


# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float, clock: Callable[[], float]) -> None:
    """SQLAlchemy's pool_pre_ping, for the connections that can have died unnoticed.

    pool_pre_ping spends three round trips (BEGIN, ";", ROLLBACK with asyncpg) on every checkout: under
    load, twice per turn, on a connection that was in use a millisecond before. A server that closes a
    connection (a restart, an idle timeout) is seen by asyncpg at once (`is_closed`); what can die
    unseen is a connection that sat in the pool, so only one idle for longer than `idle_seconds` is
    pinged. A dead one is replaced by a new connection, as pool_pre_ping does.
    """

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _returned(_dbapi_connection, record) -> None:
        record.info["returned_at"] = clock()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _check(dbapi_connection, record, _proxy) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")
        returned_at = record.info.get("returned_at")
        if returned_at is not None and clock() - returned_at > idle_seconds:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as error:  # noqa: BLE001 - whatever the driver raised, the connection is unusable
                raise DisconnectionError(f"the idle connection did not answer: {error}") from error


def create_engine(url: str, *, ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_folder(url)
        engine = create_async_engine(url, connect_args={"async_creator_fn": _connect_loop_first})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL survives a crash of the process (SIGKILL) and only risks the last
            # commits on a power cut; FULL would fsync on every commit, e.g. every message's dedupe claim.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if parsed.get_driver_name() != "asyncpg":
        return create_async_engine(url, pool_pre_ping=True)
    engine = create_async_engine(url)
    _ping_when_idle(engine, ping_after_idle_seconds, clock)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def engine_of(db: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine behind a session factory, for single Core statements that need neither a session
    nor a transaction around them (a turn's claim and reads). On PostgreSQL each of them commits on
    its own (AUTOCOMMIT), which saves a BEGIN and a ROLLBACK round trip per connection; a read there
    sees committed data either way (READ COMMITTED). SQLite's driver opens no transaction for a read."""
    return _autocommitting(db.kw["bind"])


@lru_cache(maxsize=16)
def _autocommitting(engine: AsyncEngine) -> AsyncEngine:
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema up to date (blocking; call before the event loop serves)."""
    from alembic import command

    _ensure_sqlite_folder(url)
    command.upgrade(_alembic_config(url), "head")


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
