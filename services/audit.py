"""The audit trail: every change and every refused change, appended and never updated."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who did it: a person (user id and name) or Seatdesk itself (the worker)."""

    name: str
    user_id: int | None = None
    customer_id: int | None = None


SEATDESK = Actor(name="Seatdesk")


def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: Actor,
    customer_id: int | None,
    action: str,
    target_type: str,
    target_id: object,
    summary: str,
    source: str,
    before: dict | None = None,
    after: dict | None = None,
    outcome: str = "applied",
    reason: str | None = None,
    reference: str | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        customer_id=customer_id,
        user_id=actor.user_id,
        actor=actor.name,
        at=at,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
        source=source,
        summary=summary,
        outcome=outcome,
        reason=reason,
        reference=reference,
    )
    session.add(entry)
    return entry
