"""botbuilder's `Storage` in Seatdesk's database, with e-tags so a conflicting write is refused, not lost."""
from __future__ import annotations

import json
import uuid
from typing import Any

from botbuilder.core import ConversationState, Storage, TurnContext
from botbuilder.core.bot_state import CachedBotState
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from services.clock import Clock, SystemClock
from services.db import engine_of
from services.models import BotState


class StateConflict(Exception):
    """Someone else saved this conversation's state since it was read (e-tag mismatch)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"state {key!r} was changed by another writer")
        self.key = key


def _plain(value: Any) -> Any:
    """State must be JSON; botbuilder models are serialized through their own `serialize()`."""
    if hasattr(value, "serialize") and callable(value.serialize):
        return value.serialize()
    raise TypeError(f"cannot store a {type(value).__name__} in bot state")


# Every turn reads its state and claims its message id: built once, columns not entities (the JSON
# is decoded afresh for each read, so nothing needs copying), a plain INSERT on the table, no ORM.
_READ = select(BotState.key, BotState.data, BotState.etag).where(BotState.key.in_(bindparam("keys", expanding=True)))
_CLAIM = insert(BotState.__table__)


def item(data: dict, etag: str) -> dict:
    """A stored item as botbuilder's state reads it: the data with its e-tag."""
    return {**data, "e_tag": etag}


class SqlStorage(Storage):
    def __init__(self, db: async_sessionmaker[AsyncSession], clock: Clock | None = None) -> None:
        self._db = db
        self._engine = engine_of(db)
        self._clock = clock or SystemClock()

    async def read(self, keys: list[str]) -> dict[str, object]:
        if not keys:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(_READ, {"keys": list(keys)})
            return {row.key: item(row.data, row.etag) for row in rows}

    async def write(self, changes: dict[str, object]) -> None:
        if not changes:
            return
        async with self._db() as session, session.begin():
            for key, change in changes.items():
                item = dict(change) if isinstance(change, dict) else dict(vars(change))
                expected = item.pop("e_tag", None)
                data = json.loads(json.dumps(item, default=_plain))
                await self._write_one(session, key, data, expected)

    async def _write_one(self, session: AsyncSession, key: str, data: dict, expected: str | None) -> None:
        now = self._clock.now()
        etag = uuid.uuid4().hex
        if expected in (None, "", "*"):
            # botbuilder's rule: an item without an e-tag (or "*") is written whatever is stored.
            existing = await session.get(BotState, key)
            if existing is None:
                try:
                    async with session.begin_nested():
                        session.add(BotState(key=key, etag=etag, data=data, updated_at=now))
                    return
                except IntegrityError:
                    pass  # created concurrently: fall through to overwrite
            await session.execute(update(BotState).where(BotState.key == key).values(data=data, etag=etag, updated_at=now))
            return
        result = await session.execute(
            update(BotState)
            .where(BotState.key == key, BotState.etag == expected)
            .values(data=data, etag=etag, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise StateConflict(key)

    async def claim(self, key: str, conn: AsyncConnection | None = None) -> bool:
        """True for the first caller only, whatever runs at the same time (an insert of a new key,
        committed at once), on the given connection (outside a transaction) or a new one."""
        if conn is None:
            async with self._engine.connect() as conn:
                return await self.claim(key, conn)
        try:
            await conn.execute(_CLAIM, {"key": key, "etag": uuid.uuid4().hex, "data": {}, "updated_at": self._clock.now()})
        except IntegrityError:
            await conn.rollback()
            return False
        await conn.commit()
        return True

    async def forget_claims(self, prefix: str, before) -> int:
        """Drop claims under `prefix` made before `before` (retries come within minutes, not days)."""
        async with self._db() as session, session.begin():
            result = await session.execute(delete(BotState).where(BotState.key.startswith(prefix), BotState.updated_at < before))
            return result.rowcount or 0

    async def delete(self, keys: list[str]) -> None:
        if not keys:
            return
        async with self._db() as session, session.begin():
            await session.execute(delete(BotState).where(BotState.key.in_(list(keys))))


class _Cached(CachedBotState):
    """botbuilder's cached state, compared as JSON: its jsonpickle hash cost more than the turn's query."""

    def compute_hash(self, obj: object) -> str:
        return json.dumps(obj, default=repr)  # any keys (an int key too); a reordered dict is merely saved again


class SeatdeskConversationState(ConversationState):
    """botbuilder's conversation state, which the turn may hand over already read (`preload`, with
    the turn's other opening statements on one connection); an empty state counts as read."""

    def preload(self, turn_context: TurnContext, items: dict[str, object]) -> None:
        turn_context.turn_state[self._context_service_key] = _Cached(items.get(self.get_storage_key(turn_context)))

    async def load(self, turn_context: TurnContext, force: bool = False) -> None:
        if force or self.get_cached_state(turn_context) is None:
            self.preload(turn_context, await self._storage.read([self.get_storage_key(turn_context)]))
