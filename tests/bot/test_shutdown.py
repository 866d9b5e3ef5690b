"""A clean stop (SIGTERM → aiohttp's cleanup) lets the work still running after turns finish within
SEATDESK_SHUTDOWN_GRACE_SECONDS before the Bot Connector and the database close; what outlasts the
grace is logged by name and cancelled, and the stop still completes. Guards the regression where
notices and late results in flight were cut off (or failed on a closed connection) at every deploy.
The grace passes when the test says so; the background work waits on Events; nothing sleeps."""
from __future__ import annotations

import asyncio
import logging

import pytest

from bot.app import RUNTIME
from bot.config import Settings
from dialogs.base import Reply
from services.models import Role
from tests.conftest import Teams, person

GRACE = 2.5


@pytest.fixture
def settings(db_url) -> Settings:
    return Settings(database_url=db_url, allow_anonymous=True, support_contact="Contoso IT Services", shutdown_grace_seconds=GRACE)


class Grace:
    """The shutdown grace's timer under the test's control: `asked` is set when the stop starts waiting."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.seconds: list[float] = []
        self.passed = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)
        self.asked.set()
        await self.passed.wait()


async def _stop_until_the_grace(bot_client, grace: Grace) -> asyncio.Task:
    """Start the stop and return once it waits for the background work (or fail if it never does)."""
    stopping = asyncio.create_task(bot_client.close())
    asked = asyncio.create_task(grace.asked.wait())
    await asyncio.wait({stopping, asked}, return_when=asyncio.FIRST_COMPLETED)
    asked.cancel()
    assert grace.asked.is_set(), "the stop closed everything without waiting for the background work"
    return stopping


def _in_background(bot, work, name: str) -> asyncio.Task:
    """Work kept among the bot's background tasks, as after a turn."""
    task = asyncio.create_task(work(), name=name)
    bot.slow_work.tasks.add(task)
    task.add_done_callback(bot.slow_work.tasks.discard)
    return task


async def test_work_in_flight_finishes_during_the_stop_and_its_notice_still_goes_out(bot_client, connector, demo_db):
    runtime = bot_client.server.app[RUNTIME]
    who = await person(demo_db, "fabrikam", Role.ADMIN)
    await Teams(bot_client, connector, who).say("hello")  # so Seatdesk can reach this person
    grace = Grace()
    runtime.bot.sleep = grace.sleep
    release = asyncio.Event()

    async def late_notice():
        await release.wait()
        return await runtime.bot.notifier.send(who.user_id, [Reply(text="Your order is ready.")])

    notice = _in_background(runtime.bot, late_notice, "seatdesk-test late notice")
    stopping = await _stop_until_the_grace(bot_client, grace)
    assert grace.seconds == [GRACE] and not notice.done() and not stopping.done()

    release.set()
    await stopping
    assert notice.result() and connector.texts() == ["Your order is ready."]  # sent before the connector closed


async def test_work_that_outlasts_the_grace_is_logged_cancelled_and_the_stop_completes(bot_client, caplog):
    runtime = bot_client.server.app[RUNTIME]
    grace = Grace()
    runtime.bot.sleep = grace.sleep
    held = _in_background(runtime.bot, asyncio.Event().wait, "seatdesk-after-turn deliver_now")
    quick = asyncio.Event()
    quick.set()
    _in_background(runtime.bot, quick.wait, "seatdesk-test quick")

    with caplog.at_level(logging.WARNING, logger="seatdesk.turn"):
        stopping = await _stop_until_the_grace(bot_client, grace)
        grace.passed.set()
        await stopping
    assert held.cancelled()
    assert "1 background task(s) still running after the 2.5 s grace, cancelled: seatdesk-after-turn deliver_now" in caplog.text
    assert "seatdesk-test quick" not in caplog.text
