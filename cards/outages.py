"""Outages: current and upcoming maintenance and incidents, and past ones on request."""
from __future__ import annotations

from datetime import datetime

from cards import format as fmt
from cards.common import Card, card, execute, heading, line, plain
from cards.text import MESSAGES, text
from services.models import OutageKind
from services.outages import OutageStatus, OutageView, PastPage

MESSAGES["en"].update(
    {
        "outages.title": "{company}: service status",
        "outages.as_of": "As of {when}",
        "outages.current": "Now",
        "outages.upcoming": "Coming up",
        "outages.none": "No known outages and no planned maintenance. If something doesn't work for you, open a case.",
        "outages.none_current": "Nothing is disrupted right now as far as we know.",
        "outages.kind.maintenance": "Maintenance",
        "outages.kind.incident": "Incident",
        "outages.since": "Since {start}, no end known yet",
        "outages.between": "{start} until {end}",
        "outages.affects": "Affects: {services}",
        "outages.global": "All customers",
        "outages.past.title": "{company}: past outages",
        "outages.past.page": "Page {number} of {count} · {total} in the last {days} days",
        "outages.past.none": "No outages in the last {days} days.",
        "outages.action.past": "Past outages",
        "outages.action.current": "Current status",
        "outages.action.open_case": "Open a case",
    }
)


def when_text(view: OutageView, loc: str | None) -> str:
    if view.ends_at is None:
        return text(loc, "outages.since", start=fmt.moment(view.starts_at, loc))
    return text(loc, "outages.between", start=fmt.moment(view.starts_at, loc), end=fmt.moment(view.ends_at, loc))


def _item(view: OutageView, loc: str | None) -> dict:
    incident = view.kind == OutageKind.INCIDENT
    items = [
        {
            "type": "TextBlock",
            "text": text(loc, "outages.kind." + view.kind.value).upper(),
            "size": "Small",
            "weight": "Bolder",
            "color": "Attention" if incident else "Warning",
            "spacing": "None",
        },
        line(plain(view.title), weight="Bolder", spacing="None"),
        line(when_text(view, loc), subtle=True, size="Small", spacing="None"),
    ]
    if view.services:
        items.append(line(text(loc, "outages.affects", services=", ".join(plain(s) for s in view.services)), size="Small", spacing="None"))
    if view.description:
        items.append(line(plain(view.description), size="Small"))
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def outage_status_card(company: str, status: OutageStatus, *, now: datetime, locale: str | None = None) -> Card:
    loc = locale
    body: list[dict] = [heading(text(loc, "outages.title", company=plain(company))), line(text(loc, "outages.as_of", when=fmt.moment(now, loc)), subtle=True, spacing="None")]
    if not status.current and not status.upcoming:
        body.append(line(text(loc, "outages.none")))
    else:
        body.append(line(text(loc, "outages.current"), weight="Bolder", size="Medium", spacing="Medium"))
        if status.current:
            body += [_item(v, loc) for v in status.current]
        else:
            body.append(line(text(loc, "outages.none_current"), subtle=True, spacing="None"))
        if status.upcoming:
            body.append(line(text(loc, "outages.upcoming"), weight="Bolder", size="Medium", spacing="Large"))
            body += [_item(v, loc) for v in status.upcoming]
    actions = [execute(text(loc, "outages.action.past"), "outages.past", {"page": 1}), execute(text(loc, "outages.action.open_case"), "case.open")]
    return card(body, actions)


def past_outages_card(company: str, page: PastPage, *, days: int, locale: str | None = None) -> Card:
    loc = locale
    body: list[dict] = [heading(text(loc, "outages.past.title", company=plain(company)))]
    if not page.items:
        body.append(line(text(loc, "outages.past.none", days=days)))
    else:
        body.append(line(text(loc, "outages.past.page", number=page.number, count=page.count, total=page.total, days=days), subtle=True, spacing="None"))
        body += [_item(v, loc) for v in page.items]
    actions = []
    if page.number > 1:
        actions.append(execute(text(loc, "action.previous"), "outages.past", {"page": page.number - 1}))
    if page.has_next:
        actions.append(execute(text(loc, "action.next"), "outages.past", {"page": page.number + 1}))
    actions.append(execute(text(loc, "outages.action.current"), "outages.status"))
    return card(body, actions)
