"""Outages: the reseller's maintenance windows and incidents, for one customer plus the global ones."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.models import Customer, Outage, OutageKind

UPCOMING_DAYS = 60
PAST_DAYS = 180
TITLE_MAX = 200
DESCRIPTION_MAX = 4000
SERVICE_MAX = 100
SERVICES_MAX = 20
KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class OutageView:
    key: str
    kind: OutageKind
    title: str
    description: str
    services: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime | None
    global_: bool

    def is_current(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or self.ends_at > now)


@dataclass(frozen=True)
class OutageStatus:
    current: tuple[OutageView, ...]
    upcoming: tuple[OutageView, ...]


@dataclass(frozen=True)
class PastPage:
    items: tuple[OutageView, ...]
    number: int
    count: int
    total: int

    @property
    def has_next(self) -> bool:
        return self.number < self.count


def to_view(row: Outage) -> OutageView:
    return OutageView(
        key=row.key,
        kind=row.kind,
        title=row.title,
        description=row.description or "",
        services=tuple(str(s) for s in row.services or ()),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        global_=row.customer_id is None,
    )


def _for_customer(customer_id: int):
    return or_(Outage.customer_id.is_(None), Outage.customer_id == customer_id)


def split(views: list[OutageView], now: datetime, upcoming_days: int = UPCOMING_DAYS) -> OutageStatus:
    """Current ones (incidents first, then by start) and those starting within `upcoming_days`."""
    horizon = now + timedelta(days=upcoming_days)
    current = sorted((v for v in views if v.is_current(now)), key=lambda v: (v.kind != OutageKind.INCIDENT, v.starts_at))
    upcoming = sorted((v for v in views if now < v.starts_at <= horizon), key=lambda v: v.starts_at)
    return OutageStatus(tuple(current), tuple(upcoming))


async def status(session: AsyncSession, customer_id: int, now: datetime) -> OutageStatus:
    rows = (
        await session.execute(
            select(Outage).where(_for_customer(customer_id), or_(Outage.ends_at.is_(None), Outage.ends_at > now))
        )
    ).scalars()
    return split([to_view(r) for r in rows], now)


async def past(session: AsyncSession, customer_id: int, now: datetime, page: int, page_size: int) -> PastPage:
    since = now - timedelta(days=PAST_DAYS)
    rows = (
        await session.execute(
            select(Outage)
            .where(_for_customer(customer_id), Outage.ends_at.is_not(None), Outage.ends_at <= now, Outage.ends_at >= since)
            .order_by(Outage.ends_at.desc(), Outage.id.desc())
        )
    ).scalars().all()
    total = len(rows)
    count = max(1, -(-total // page_size))
    page = min(max(1, page), count)
    items = tuple(to_view(r) for r in rows[(page - 1) * page_size : page * page_size])
    return PastPage(items, page, count, total)


class OutageError(ValueError):
    """Input the reseller's staff must fix; the message says which field and why."""


def _parse_time(name: str, raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise OutageError(f"{name} must be an ISO 8601 date-time with a time zone")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise OutageError(f"{name} must be an ISO 8601 date-time with a time zone") from None
    if value.tzinfo is None:
        raise OutageError(f"{name} must carry a time zone (e.g. 2026-11-22T20:00:00Z)")
    return value


def _text(name: str, raw: Any, limit: int, *, required: bool) -> str:
    if raw is None and not required:
        return ""
    if not isinstance(raw, str) or (required and not raw.strip()):
        raise OutageError(f"{name} is required and must be text")
    value = raw.strip()
    if len(value) > limit:
        raise OutageError(f"{name} is longer than {limit} characters")
    return value


async def save(session: AsyncSession, data: dict[str, Any], *, key: str | None = None) -> OutageView:
    """Create an outage (key None: from data) or update the one with `key` (only the fields given)."""
    if not isinstance(data, dict):
        raise OutageError("the body must be a JSON object")
    allowed = {"key", "customer", "kind", "title", "description", "services", "starts_at", "ends_at"}
    unknown = set(data) - allowed
    if unknown:
        raise OutageError(f"unknown field(s): {', '.join(sorted(unknown))}")
    existing = None
    if key is not None:
        existing = (await session.execute(select(Outage).where(Outage.key == key))).scalar_one_or_none()
        if existing is None:
            raise LookupError(key)
    else:
        key = data.get("key")
        if not isinstance(key, str) or not KEY.match(key):
            raise OutageError("key is required: lowercase letters, digits, '.', '_' or '-', at most 64")
        if (await session.execute(select(Outage.id).where(Outage.key == key))).first():
            raise OutageError(f"an outage with key '{key}' exists already")
    creating = existing is None
    row = existing or Outage(key=key)
    if creating or "kind" in data:
        try:
            row.kind = OutageKind(data.get("kind"))
        except ValueError:
            raise OutageError("kind must be 'maintenance' or 'incident'") from None
    if creating or "title" in data:
        row.title = _text("title", data.get("title"), TITLE_MAX, required=True)
    if creating or "description" in data:
        row.description = _text("description", data.get("description"), DESCRIPTION_MAX, required=False)
    if creating or "services" in data:
        services = data.get("services") or []
        if not isinstance(services, list) or len(services) > SERVICES_MAX or not all(isinstance(s, str) and 0 < len(s.strip()) <= SERVICE_MAX for s in services):
            raise OutageError(f"services must be a list of at most {SERVICES_MAX} names of at most {SERVICE_MAX} characters")
        row.services = [s.strip() for s in services]
    if creating or "customer" in data:
        customer_key = data.get("customer")
        if customer_key is None:
            row.customer_id = None
        else:
            customer = (await session.execute(select(Customer).where(Customer.key == str(customer_key)))).scalar_one_or_none()
            if customer is None:
                raise OutageError(f"unknown customer '{customer_key}'")
            row.customer_id = customer.id
    if creating or "starts_at" in data:
        starts = _parse_time("starts_at", data.get("starts_at"))
        if starts is None:
            raise OutageError("starts_at is required")
        row.starts_at = starts
    if creating or "ends_at" in data:
        row.ends_at = _parse_time("ends_at", data.get("ends_at"))
    if row.ends_at is not None and row.ends_at <= row.starts_at:
        raise OutageError("ends_at must be after starts_at")
    if creating:
        session.add(row)
    await session.flush()
    return to_view(row)


async def all_outages(session: AsyncSession, now: datetime, *, include_past: bool = False) -> list[tuple[OutageView, str | None]]:
    """Every outage with its customer key (staff view)."""
    query = select(Outage, Customer.key).outerjoin(Customer, Customer.id == Outage.customer_id).order_by(Outage.starts_at.desc())
    if not include_past:
        query = query.where(or_(Outage.ends_at.is_(None), Outage.ends_at > now))
    return [(to_view(o), key) for o, key in (await session.execute(query)).all()]
