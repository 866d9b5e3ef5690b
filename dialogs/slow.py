"""Slow work in a turn (a provider or Graph call, file downloads, a model's answer) is waited for
until the turn's deadline at most; what is not done by then carries on in the background and is
reported in the conversation afterwards.

Teams waits 15 s for the bot's HTTP answer and then retries the same activity, and an invoke
cannot be answered late. So a turn answers by its deadline (SEATDESK_TURN_DEADLINE_SECONDS,
counted from when the flow starts): with the result, or with an honest "working on it". The work
runs in a task of its own, kept referenced, which a cancelled turn does not cancel. When it ends,
its result goes to the conversation the request came from: the clicked card is updated and the
rest is posted (`FollowUp`, which the bot provides: nothing here knows botbuilder).

Exactly once: running work is registered under a key (a confirmation's operation id). A Teams
retry or a second click while it runs waits on the same task instead of starting another, and
is told "still working" if the deadline passes again. Once the work has finished, the Operation
table gives the first receipt (services/subscription_changes.py). The registry is per process;
another instance that gets the retry relies on the Operation table and the provider's own
idempotency keys, as for any concurrent double click.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from cards.common import card, heading, line
from dialogs.base import BadActionData, Outcome, Reply

if TYPE_CHECKING:
    from dialogs.base import FlowContext

log = logging.getLogger("seatdesk.slow")

DEADLINE_SECONDS = 5.0

Work = Callable[[], Awaitable[Outcome]]


class FollowUp(Protocol):
    """Where a result that missed its turn goes: the turn's conversation, and the card that was clicked."""

    async def deliver(self, outcome: Outcome, locale: str | None, *, on_card: bool) -> None:
        """`on_card`: the "working" answer replaced the clicked card, so the result replaces it in turn."""
        ...


async def _guarded(work: Work, failed: Callable[[str], Outcome]) -> Outcome:
    try:
        return await work()
    except Exception:  # noqa: BLE001 - the person gets a sentence with a reference, the log gets the traceback
        reference = uuid.uuid4().hex[:12]
        log.exception("slow work failed [%s]", reference)
        return failed(reference)


class SlowWork:
    """One per bot: the deadline, the work still running (by key), and the tasks kept referenced."""

    def __init__(
        self,
        deadline_seconds: float = DEADLINE_SECONDS,
        *,
        tasks: set[asyncio.Task] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.deadline_seconds = deadline_seconds
        # Shared with the bot's own background set, so `SeatdeskBot.idle()` waits for these too.
        self.tasks: set[asyncio.Task] = tasks if tasks is not None else set()
        self._monotonic = monotonic
        self._sleep = sleep
        self._running: dict[str, asyncio.Task[Outcome]] = {}

    def turn(self, follow_up: FollowUp | None) -> "TurnDeadline":
        """The deadline of one turn, starting now; `follow_up` is where late results go."""
        return TurnDeadline(self, follow_up, self._monotonic())

    def running(self, key: str) -> bool:
        return key in self._running

    def _keep(self, task: asyncio.Task) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _start(self, key: str, work: Work, failed: Callable[[str], Outcome]) -> asyncio.Task[Outcome]:
        task = asyncio.create_task(_guarded(work, failed), name=f"seatdesk-slow {key}")
        self._running[key] = task
        self._keep(task)

        def finished(done: asyncio.Task) -> None:
            if self._running.get(key) is done:
                del self._running[key]

        task.add_done_callback(finished)
        return task

    async def _finishes_within(self, task: asyncio.Task, seconds: float) -> bool:
        """Whether `task` ends within `seconds`; the task itself is never cancelled here."""
        if task.done():
            return True
        timer = asyncio.ensure_future(self._sleep(max(seconds, 0.0)))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        return task.done()

    def _report_when_done(self, task: asyncio.Task[Outcome], follow_up: FollowUp, locale: str | None, on_card: bool) -> None:
        async def report() -> None:
            outcome = await task
            try:
                await follow_up.deliver(outcome, locale, on_card=on_card)
            except Exception:  # noqa: BLE001 - nothing else could tell the person; the log must
                log.exception("could not report the result of slow work %s", task.get_name())

        self._keep(asyncio.create_task(report(), name=f"seatdesk-report {task.get_name()}"))


class TurnDeadline:
    """The deadline of one turn (FlowContext.slow)."""

    def __init__(self, slow: SlowWork, follow_up: FollowUp | None, started: float) -> None:
        self._slow = slow
        self._follow_up = follow_up
        self._started = started

    def remaining(self) -> float:
        return self._slow.deadline_seconds - (self._slow._monotonic() - self._started)

    async def run(
        self, key: str, work: Work, *, working: Outcome, still_working: Outcome, failed: Callable[[str], Outcome], locale: str | None
    ) -> Outcome:
        slow = self._slow
        task = slow._running.get(key)
        first = task is None
        if task is None:
            task = slow._start(key, work, failed)
        if self._follow_up is None:
            return await asyncio.shield(task)  # nowhere to report later: the turn waits, as it always did
        on_card = any(reply.card is not None for reply in working.replies)
        try:
            finished = await slow._finishes_within(task, self.remaining())
        except asyncio.CancelledError:
            if first:  # the turn is gone (the request was dropped); the work is not
                slow._report_when_done(task, self._follow_up, locale, on_card)
            raise
        if finished:
            return task.result()
        if first:
            slow._report_when_done(task, self._follow_up, locale, on_card)
            return working
        return still_working  # the first turn reports the result


def working_card(ctx: FlowContext, sentence: str) -> Reply:
    """The clicked card while the work carries on: what is happening, and no buttons to click again."""
    return Reply(card=card([heading(ctx.text("slow.title")), line(sentence)]))


async def within_deadline(ctx: FlowContext, key: str, work: Work, *, working: Reply, still_working: Reply | None = None) -> Outcome:
    """`work`'s outcome if it is ready by the turn's deadline, else `working` (or `still_working` for
    a repeat of work already running under `key`) and the outcome later, in the conversation.

    `work` must not touch `ctx.state`: the conversation state is saved when the turn ends."""
    slow = getattr(ctx, "slow", None)
    if slow is None:
        return await work()

    async def checked() -> Outcome:
        try:
            return await work()
        except BadActionData:  # as the router answers it
            return Outcome([Reply(text=ctx.text("error.bad_action"))])

    def failed(reference: str) -> Outcome:
        return Outcome([Reply(text=ctx.text("error.apology", contact=ctx.support_contact, ref=reference))])

    return await slow.run(
        f"{ctx.identity.customer_id}/{key}",
        checked,
        working=Outcome([working]),
        still_working=Outcome([still_working or working]),
        failed=failed,
        locale=ctx.locale,
    )
