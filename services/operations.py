"""The life of an Operation: a confirmed change or licence assignment, keyed by its card's operation id.

What was asked is recorded as `pending` and committed before the provider (Partner Center, Graph)
is called; the transaction that then calls the provider holds the row (on PostgreSQL a row lock,
taken with SKIP LOCKED) and turns it `done`, with the receipt, in the same commit as the change and
its audit entry. A process killed in between leaves the pending row: whoever finds it next (the same
card clicked again, the worker after `GRACE`) asks the provider how things stand and finishes it.
The change to `done` is conditional, so only one of them records the receipt.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.models import Operation

PENDING = "pending"
DONE = "done"

# Longer than a provider call with its retries takes (Partner Center and Graph: 20 s per attempt and
# at most 45 s of waits): a pending operation older than this was left by a process that died.
GRACE = timedelta(minutes=5)


class Raced(Exception):
    """Another transaction finished (or gave up) this operation first; read it again."""


async def hold(session: AsyncSession, key: str) -> Operation | None:
    """The operation, held for the caller's transaction. On PostgreSQL None when another transaction
    holds it (it is being carried out there); SQLite has no row locks, and the conditional
    `complete` keeps two processes from both recording it."""
    return (await session.execute(select(Operation).where(Operation.key == key).with_for_update(skip_locked=True))).scalar_one_or_none()


async def complete(session: AsyncSession, key: str, result: dict) -> None:
    """Pending → done with `result`, in the caller's transaction; `Raced` if it is no longer pending."""
    done = await session.execute(
        update(Operation)
        .where(Operation.key == key, Operation.status == PENDING)
        .values(status=DONE, result=result)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise Raced(key)


async def left_over(session: AsyncSession, kinds: tuple[str, ...], now: datetime) -> list[Operation]:
    """Pending operations of these kinds older than the grace period, oldest first."""
    return list(
        (
            await session.execute(
                select(Operation)
                .where(Operation.status == PENDING, Operation.kind.in_(kinds), Operation.created_at <= now - GRACE)
                .order_by(Operation.id)
            )
        ).scalars()
    )
