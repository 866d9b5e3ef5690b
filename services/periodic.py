"""Background work that runs every so often for as long as the server runs."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger("seatdesk.periodic")


class Periodic:
    def __init__(self, name: str, interval_seconds: float, work: Callable[[], Awaitable[object]]) -> None:
        self._name = name
        self._interval = interval_seconds
        self._work = work
        self._task: asyncio.Task | None = None

    async def _loop(self) -> None:
        while True:
            try:
                await self._work()
            except Exception:  # noqa: BLE001 - one bad pass must not stop the next ones
                log.exception("%s failed; trying again in %s s", self._name, self._interval)
            await asyncio.sleep(self._interval)

    async def start(self, app=None) -> None:
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self, app=None) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
