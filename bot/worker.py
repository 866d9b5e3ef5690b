"""The background worker: carries out due scheduled changes and renewals, then tells people."""
from __future__ import annotations

import asyncio
import logging

from cards.text import text
from dialogs.base import Notifier, Reply
from services import scheduler
from services.models import User

log = logging.getLogger("seatdesk.worker")


async def run_once(db, provider, clock, notifier: Notifier) -> int:
    """One pass: apply what is due, then send the notices. Returns how many notices were sent."""
    notices = await scheduler.run_due(db, provider, clock.now())
    sent = 0
    for notice in notices:
        async with db() as session:
            user = await session.get(User, notice.user_id)
        locale = user.locale if user else None
        if await notifier.send(notice.user_id, [Reply(text=text(locale, notice.key, **notice.values))]):
            sent += 1
    return sent


class Worker:
    def __init__(self, db, provider, clock, notifier: Notifier, interval_seconds: float) -> None:
        self._args = (db, provider, clock, notifier)
        self._interval = interval_seconds
        self._task: asyncio.Task | None = None

    async def _loop(self) -> None:
        while True:
            try:
                await run_once(*self._args)
            except Exception:  # noqa: BLE001 - one bad pass must not stop the worker
                log.exception("worker pass failed; trying again in %s s", self._interval)
            await asyncio.sleep(self._interval)

    async def start(self, app=None) -> None:
        self._task = asyncio.create_task(self._loop(), name="seatdesk-worker")

    async def stop(self, app=None) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
