"""Bot state in the database: e-tags refuse conflicting writes, and state survives a restart."""
from __future__ import annotations

import asyncio

import pytest
from botbuilder.core import ConversationState, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount

from bot.storage import SeatdeskConversationState, SqlStorage, StateConflict
from services import db as database


async def test_write_then_read_returns_data_and_an_etag(db, clock):
    storage = SqlStorage(db, clock)
    await storage.write({"conv/1": {"step": "confirm", "quantity": 30}})
    item = (await storage.read(["conv/1", "missing"]))["conv/1"]
    assert item["step"] == "confirm" and item["quantity"] == 30
    assert item["e_tag"]
    assert "missing" not in await storage.read(["missing"])


async def test_a_write_with_a_stale_etag_is_refused_and_the_newer_data_kept(db, clock):
    storage = SqlStorage(db, clock)
    await storage.write({"conv/1": {"quantity": 10}})
    first = (await storage.read(["conv/1"]))["conv/1"]
    second = (await storage.read(["conv/1"]))["conv/1"]
    await storage.write({"conv/1": {**first, "quantity": 20}})
    with pytest.raises(StateConflict):
        await storage.write({"conv/1": {**second, "quantity": 30}})
    assert (await storage.read(["conv/1"]))["conv/1"]["quantity"] == 20


async def test_concurrent_writers_with_the_same_etag_one_wins(db, clock):
    storage = SqlStorage(db, clock)
    await storage.write({"conv/2": {"n": 0}})
    base = (await storage.read(["conv/2"]))["conv/2"]
    results = await asyncio.gather(
        *(storage.write({"conv/2": {**base, "n": i}}) for i in range(1, 6)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, StateConflict) for r in results if r is not None)
    winner = results.index(None) + 1
    assert (await storage.read(["conv/2"]))["conv/2"]["n"] == winner


async def test_star_etag_and_missing_etag_overwrite(db, clock):
    storage = SqlStorage(db, clock)
    await storage.write({"k": {"v": 1}})
    await storage.write({"k": {"v": 2, "e_tag": "*"}})
    await storage.write({"k": {"v": 3}})
    assert (await storage.read(["k"]))["k"]["v"] == 3


async def test_delete(db, clock):
    storage = SqlStorage(db, clock)
    await storage.write({"a": {"v": 1}, "b": {"v": 2}})
    await storage.delete(["a"])
    assert set(await storage.read(["a", "b"])) == {"b"}


async def test_conversation_state_survives_a_restart(db_url, clock):
    """A new engine and storage (a restarted process) sees what the previous one saved."""

    def turn(adapter):
        activity = Activity(
            type="message",
            channel_id="msteams",
            conversation=ConversationAccount(id="conv-restart"),
            from_property=ChannelAccount(id="user"),
            recipient=ChannelAccount(id="bot"),
            text="hi",
        )
        return TurnContext(adapter, activity)

    engine = database.create_engine(db_url)
    state = SeatdeskConversationState(SqlStorage(database.session_factory(engine), clock))
    pending = state.create_property("pending")
    context = turn(TestAdapter())
    await state.load(context)
    await pending.set(context, {"flow": "quantity", "new": 30})
    await state.save_changes(context)
    await engine.dispose()

    engine = database.create_engine(db_url)
    state = ConversationState(SqlStorage(database.session_factory(engine), clock))
    pending = state.create_property("pending")
    context = turn(TestAdapter())
    await state.load(context)
    assert await pending.get(context) == {"flow": "quantity", "new": 30}
    await engine.dispose()


async def test_claims_are_given_once_and_old_ones_forgotten(db, clock):
    from datetime import timedelta

    storage = SqlStorage(db, clock)
    assert await storage.claim("seen/a")
    assert not await storage.claim("seen/a")
    clock.advance(timedelta(days=3))
    assert await storage.claim("seen/b")
    assert await storage.forget_claims("seen/", clock.now() - timedelta(days=2)) == 1
    assert await storage.claim("seen/a") and not await storage.claim("seen/b")


class _CountingStorage(SqlStorage):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.reads = self.writes = 0

    async def read(self, keys):
        self.reads += 1
        return await super().read(keys)

    async def write(self, changes):
        self.writes += 1
        return await super().write(changes)


async def test_seatdesk_state_reads_once_writes_only_changes_and_takes_any_keys(db, clock):
    """An empty state counts as read (botbuilder reads it again), an unchanged one is not written, and a
    state holding an int key (JSON makes it a string when stored) is compared without an error."""
    storage = _CountingStorage(db, clock)
    state = SeatdeskConversationState(storage)
    flow = state.create_property("flow")
    activity = Activity(
        type="message", channel_id="msteams", conversation=ConversationAccount(id="conv-hash"),
        from_property=ChannelAccount(id="user"), recipient=ChannelAccount(id="bot"), text="hi",
    )
    context = TurnContext(TestAdapter(), activity)
    await flow.get(context, dict)
    await flow.get(context, dict)
    await state.save_changes(context)
    assert (storage.reads, storage.writes) == (1, 1)  # botbuilder saves the new property once

    context = TurnContext(TestAdapter(), activity)
    state.preload(context, await storage.read([state.get_storage_key(context)]))
    await flow.get(context, dict)
    await state.save_changes(context)
    assert (storage.reads, storage.writes) == (2, 1)  # preloaded and unchanged: nothing read or written again

    (await flow.get(context, dict))[7] = {"seats": 3}
    await state.save_changes(context)
    assert storage.writes == 2
    context = TurnContext(TestAdapter(), activity)
    assert await flow.get(context, dict) == {"7": {"seats": 3}}
