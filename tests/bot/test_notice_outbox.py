"""The notice outbox: a notice is written in the transaction of the change it reports and delivered by
the worker afterwards, so a process killed between the commit and the send loses none (it used to:
notices were sent after the commit, at most once). Delivered once also by two workers at the same
moment; a failed send is tried again at a later pass, with backoff, and given up after a few tries;
a person Seatdesk cannot reach is marked undeliverable rather than tried for ever."""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.worker import run_once
from cards.text import text as sentence
from dialogs.notices import deliver
from services import db as database
from services import notices, scheduler
from services.models import Customer, OutboxNotice, User
from services.providers import LedgerProvider


class Meeting:
    """Holds each sender until every one of them is in the middle of a send (so their claims overlap)."""

    def __init__(self, parties: int) -> None:
        self.parties, self.here, self.everyone = parties, set(), asyncio.Event()

    async def arrive(self, who) -> None:
        self.here.add(id(who))
        if len(self.here) == self.parties:
            self.everyone.set()
        await asyncio.wait_for(self.everyone.wait(), 10)


class Recorder:
    """A Notifier that keeps what it sent. The first `failures` sends fail (an empty answer, as the
    proactive notifier gives when Teams does not take the message, or an exception with `raises`)."""

    def __init__(self, *, failures: int = 0, raises: bool = False, unreachable: tuple[int, ...] = (), meeting: Meeting | None = None) -> None:
        self.sent: list[tuple[int, list]] = []
        self.updates: list[tuple[int, str]] = []
        self.tries = 0
        self.failures, self.raises, self.unreachable, self.meeting = failures, raises, set(unreachable), meeting

    async def send(self, user_id, replies):
        self.tries += 1
        if self.meeting is not None:
            await self.meeting.arrive(self)
        await asyncio.sleep(0)  # let another worker run in between, as a real send does
        if self.failures:
            self.failures -= 1
            if self.raises:
                raise RuntimeError("connector exploded")
            return []
        self.sent.append((user_id, replies))
        return [f"activity-{len(self.sent)}"]

    async def update(self, user_id, activity_id, reply):
        self.updates.append((user_id, activity_id))
        return True

    async def reachable(self, user_ids):
        return set(user_ids) - self.unreachable

    def texts(self) -> list[str]:
        return [r.text for _, replies in self.sent for r in replies if r.text]


async def _outbox(db) -> list[OutboxNotice]:
    async with db() as session:
        return list((await session.execute(select(OutboxNotice).order_by(OutboxNotice.id))).scalars())


async def _users(db, count: int) -> list[User]:
    async with db() as session:
        return list((await session.execute(select(User).order_by(User.id).limit(count))).scalars())


async def _owe(db, user: User, number: str, now) -> None:
    """One notice, as a step of the worker writes it (here on its own, without a change)."""
    async with db() as session, session.begin():
        notices.add_text(session, customer_id=user.customer_id, user_id=user.id, key="order.provisioned", values={"number": number}, locale=None, now=now)


def _ready(number: str) -> str:
    return sentence(None, "order.provisioned", number=number)


async def _daniel(db) -> User:
    async with db() as session:
        return (
            await session.execute(select(User).join(Customer, Customer.id == User.customer_id).where(Customer.key == "northwind", User.name == "Daniel Brooks"))
        ).scalar_one()


async def test_a_notice_survives_a_crash_between_the_commit_and_the_send(demo_db, clock):
    """The worker carries out a due change and "dies" before it sends anything: the notice is in the
    database with the change, and the next pass (a restarted instance) delivers it, exactly once."""
    clock.advance(timedelta(days=14))  # SC-NW-0001, scheduled by Daniel Brooks, is due
    told = await scheduler.run_due(demo_db, LedgerProvider(), clock.now())  # the domain step; then the kill
    daniel = await _daniel(demo_db)
    assert [(n.user_id, n.key) for n in told if n.values["reference"] == "SC-NW-0001"] == [(daniel.id, "notice.scheduled_applied")]
    [owed] = [n for n in await _outbox(demo_db) if n.payload["values"]["reference"] == "SC-NW-0001"]
    assert owed.status == notices.PENDING and owed.user_id == daniel.id and owed.sent_at is None

    restarted = Recorder()
    delivered = await run_once(demo_db, LedgerProvider(), clock, restarted)
    about = [(user_id, r.text) for user_id, replies in restarted.sent for r in replies if "SC-NW-0001" in (r.text or "")]
    assert len(about) == 1 and about[0][0] == daniel.id
    assert about[0][1].startswith("Your scheduled change SC-NW-0001 was carried out:") and "now has 25 seats" in about[0][1]
    # Nothing is owed any more: the next pass sends nothing again.
    assert await run_once(demo_db, LedgerProvider(), clock, restarted) == 0
    assert len(restarted.sent) == delivered
    [owed] = [n for n in await _outbox(demo_db) if n.id == owed.id]
    assert owed.status == notices.SENT and owed.sent_at == clock.now() and owed.attempts == 1


async def test_a_worker_killed_holding_a_claim_leaves_it_to_another_pass_after_the_lease(demo_db, clock):
    """Killed after claiming, before sending: the lease keeps other workers off it meanwhile (it may
    still be sending), then another pass delivers it, once."""
    [user] = await _users(demo_db, 1)
    await _owe(demo_db, user, "ORD-LEASE", clock.now())
    [claimed] = await notices.claim(demo_db, clock.now())  # ... and the process dies

    other = Recorder()
    assert await deliver(demo_db, other, clock.now()) == 0 and other.tries == 0
    clock.advance(notices.LEASE)
    assert await deliver(demo_db, other, clock.now()) == 1
    assert other.texts() == [_ready("ORD-LEASE")]
    assert await deliver(demo_db, other, clock.now() + notices.LEASE) == 0
    [row] = await _outbox(demo_db)
    assert row.id == claimed.id and row.status == notices.SENT and row.attempts == 2


async def test_a_claim_takes_one_batch_oldest_first_and_the_next_claim_the_next(demo_db, db_url, clock, monkeypatch):
    """Guards a claim that took every due notice at once: as a plain IN (subquery ... LIMIT) PostgreSQL ran
    the LIMIT again per row and leased all of them to one worker."""
    monkeypatch.setattr(notices, "BATCH", 3)
    users = await _users(demo_db, 2)
    for i in range(8):
        await _owe(demo_db, users[i % 2], f"ORD-{i}", clock.now())
    second = database.create_engine(db_url)
    try:
        first = await notices.claim(demo_db, clock.now())
        other = await notices.claim(database.session_factory(second), clock.now())
        last = await notices.claim(demo_db, clock.now())
    finally:
        await second.dispose()
    ids = [n.id for n in await _outbox(demo_db)]
    assert [[c.id for c in batch] for batch in (first, other, last)] == [ids[0:3], ids[3:6], ids[6:8]]
    assert await notices.claim(demo_db, clock.now()) == []
    assert await notices.claim(demo_db, clock.now() + notices.LEASE) != []  # leases run out


async def test_two_workers_delivering_at_once_send_each_notice_once(demo_db, db_url, clock, monkeypatch):
    """Two instances (two engines on one database) deliver the same outbox at the same moment, in small
    batches: each notice goes out once. On PostgreSQL the claims skip each other's locked rows; on
    SQLite the conditional update of the lease decides."""
    monkeypatch.setattr(notices, "BATCH", 3)
    users = await _users(demo_db, 4)
    numbers = [f"ORD-{i:03d}" for i in range(30)]
    for i, number in enumerate(numbers):
        await _owe(demo_db, users[i % len(users)], number, clock.now())
    second = database.create_engine(db_url)
    try:
        # Each worker's first send waits until the other is sending too: both hold claimed batches at once.
        meeting = Meeting(2)
        first_worker, second_worker = Recorder(meeting=meeting), Recorder(meeting=meeting)
        counts = await asyncio.gather(
            deliver(demo_db, first_worker, clock.now()), deliver(database.session_factory(second), second_worker, clock.now())
        )
    finally:
        await second.dispose()
    sent = sorted(first_worker.texts() + second_worker.texts())
    assert sent == sorted(_ready(n) for n in numbers)  # every one, none twice
    assert sum(counts) == len(numbers) and min(counts) > 0
    assert {n.status for n in await _outbox(demo_db)} == {notices.SENT}


async def test_a_claim_skips_rows_another_instance_holds_on_postgresql(demo_db, engine, clock):
    """SKIP LOCKED: a notice another instance's claim has locked is passed over, not waited for."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: its single writer serialises the claims")
    [user] = await _users(demo_db, 1)
    for number in ("ORD-HELD", "ORD-FREE"):
        await _owe(demo_db, user, number, clock.now())
    held_id = (await _outbox(demo_db))[0].id
    async with demo_db() as other_instance, other_instance.begin():
        await other_instance.execute(select(OutboxNotice.id).where(OutboxNotice.id == held_id).with_for_update())
        claimed = await asyncio.wait_for(notices.claim(demo_db, clock.now()), 10)
    assert [c.payload["values"]["number"] for c in claimed] == ["ORD-FREE"]


@pytest.mark.parametrize("raises", [False, True], ids=["not taken", "exception"])
async def test_a_failed_send_is_tried_again_at_a_later_pass_with_backoff(demo_db, clock, raises):
    [user] = await _users(demo_db, 1)
    await _owe(demo_db, user, "ORD-RETRY", clock.now())
    teams = Recorder(failures=2, raises=raises)

    assert await deliver(demo_db, teams, clock.now()) == 0 and teams.tries == 1
    assert await deliver(demo_db, teams, clock.now()) == 0 and teams.tries == 1  # not before its backoff
    clock.advance(notices.retry_after(1) - timedelta(seconds=1))
    assert await deliver(demo_db, teams, clock.now()) == 0 and teams.tries == 1
    clock.advance(timedelta(seconds=1))
    assert await deliver(demo_db, teams, clock.now()) == 0 and teams.tries == 2
    clock.advance(notices.retry_after(2))
    assert await deliver(demo_db, teams, clock.now()) == 1 and teams.tries == 3
    assert teams.texts() == [_ready("ORD-RETRY")]
    [row] = await _outbox(demo_db)
    assert row.status == notices.SENT and row.attempts == 3


async def test_a_notice_that_keeps_failing_is_given_up_after_the_last_attempt_and_logged(demo_db, clock, caplog):
    [user] = await _users(demo_db, 1)
    await _owe(demo_db, user, "ORD-NEVER", clock.now())
    teams = Recorder(failures=1000)
    with caplog.at_level(logging.INFO, logger="seatdesk.notices"):
        for attempt in range(1, notices.ATTEMPTS + 1):
            assert await deliver(demo_db, teams, clock.now()) == 0 and teams.tries == attempt
            clock.advance(notices.retry_after(attempt))
        clock.advance(timedelta(days=1))
        assert await deliver(demo_db, teams, clock.now()) == 0
    assert teams.tries == notices.ATTEMPTS and teams.sent == []
    [row] = await _outbox(demo_db)
    assert row.status == notices.GIVEN_UP and row.attempts == notices.ATTEMPTS and row.sent_at is None
    assert f"given up after {notices.ATTEMPTS} attempts" in caplog.text


async def test_a_person_seatdesk_cannot_reach_is_marked_undeliverable_not_tried_again(demo_db, clock, caplog):
    first, second = await _users(demo_db, 2)
    await _owe(demo_db, first, "ORD-NOBODY", clock.now())
    await _owe(demo_db, second, "ORD-SOMEBODY", clock.now())
    teams = Recorder(unreachable=(first.id,))
    with caplog.at_level(logging.INFO, logger="seatdesk.notices"):
        assert await deliver(demo_db, teams, clock.now()) == 1
    assert teams.texts() == [_ready("ORD-SOMEBODY")] and teams.tries == 1
    assert [r.status for r in await _outbox(demo_db)] == [notices.UNDELIVERABLE, notices.SENT]
    assert "no conversation with Seatdesk" in caplog.text
    clock.advance(timedelta(days=1))
    assert await deliver(demo_db, teams, clock.now()) == 0 and teams.tries == 1


async def test_delivered_notices_are_forgotten_after_a_while_pending_ones_never(demo_db, clock):
    first, second = await _users(demo_db, 2)
    await _owe(demo_db, first, "ORD-OLD", clock.now())
    await deliver(demo_db, Recorder(), clock.now())
    await _owe(demo_db, second, "ORD-WAITING", clock.now())
    clock.advance(notices.KEEP + timedelta(days=1))
    await notices.forget_delivered(demo_db, clock.now() - notices.KEEP)
    assert [r.payload["values"]["number"] for r in await _outbox(demo_db)] == ["ORD-WAITING"]
