"""Outages: current and upcoming maintenance and incidents for this customer (and global ones), past ones on request."""
from __future__ import annotations

from typing import Any

from cards.outages import outage_status_card, past_outages_card
from dialogs.base import FlowContext, Outcome, Reply, Verb, int_field
from services import outages


async def current(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    now = ctx.clock.now()
    async with ctx.db() as session:
        status = await outages.status(session, ctx.identity.customer_id, now)
    return Outcome([Reply(card=outage_status_card(ctx.identity.customer_name, status, now=now, locale=ctx.locale))])


async def past(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    page = int_field(data or {}, "page", default=1, high=10_000)
    async with ctx.db() as session:
        result = await outages.past(session, ctx.identity.customer_id, ctx.clock.now(), page, ctx.page_size)
    card = past_outages_card(ctx.identity.customer_name, result, days=outages.PAST_DAYS, locale=ctx.locale)
    return Outcome([Reply(card=card)])


VERBS = {
    "outages.status": Verb(current),
    "outages.past": Verb(past),
}
PHRASES = {
    "outages.status": (
        "outages", "outage", "service status", "services status", "status of services", "maintenance",
        "planned maintenance", "incidents", "known issues", "is there an outage", "are there outages", "is anything down",
    ),
    "outages.past": ("past outages", "previous outages", "outage history", "past incidents", "past maintenance"),
}
