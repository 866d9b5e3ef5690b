"""Building blocks for Adaptive Cards 1.5 (Teams' newest supported version)."""
from __future__ import annotations

from typing import Any

Card = dict[str, Any]

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


def card(body: list[dict], actions: list[dict] | None = None) -> Card:
    out: Card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5", "body": body}
    if actions:
        out["actions"] = actions
    return out


def execute(title: str, verb: str, data: dict[str, Any] | None = None, *, style: str | None = None) -> dict:
    """A Universal Action button; clients without Action.Execute fall back to Action.Submit with the same data."""
    payload = {"verb": verb, **(data or {})}
    action: dict[str, Any] = {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": payload,
        "fallback": {"type": "Action.Submit", "title": title, "data": payload},
    }
    if style:
        action["style"] = style
    return action


def heading(value: str) -> dict:
    return {"type": "TextBlock", "text": value, "size": "Large", "weight": "Bolder", "wrap": True, "style": "heading"}


def line(value: str, *, subtle: bool = False, weight: str | None = None, size: str | None = None, spacing: str | None = None) -> dict:
    block: dict[str, Any] = {"type": "TextBlock", "text": value, "wrap": True}
    if subtle:
        block["isSubtle"] = True
    if weight:
        block["weight"] = weight
    if size:
        block["size"] = size
    if spacing:
        block["spacing"] = spacing
    return block


def facts(pairs: list[tuple[str, str]]) -> dict:
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in pairs]}


def action_set(actions: list[dict]) -> dict:
    return {"type": "ActionSet", "actions": actions}


def plain(value: str) -> str:
    """User-supplied text shown as text: Adaptive Cards' markdown must not turn it into markup."""
    out = "".join("\\" + ch if ch in _MARKUP else ch for ch in value)
    return "\\" + out if out[:1] in _LINE_START else out


_MARKUP = set("\\`*_[]<>~")
_LINE_START = set("#-+>")


def with_refresh(body_card: Card, verb: str, data: dict[str, Any], user_ids: list[str]) -> Card:
    """Teams asks the bot for a personal version of this card when one of `user_ids` views it
    (at most 60); everybody else sees `body_card` as it is."""
    refreshed = dict(body_card)
    refreshed["refresh"] = {
        "action": {"type": "Action.Execute", "title": "Refresh", "verb": verb, "data": {"verb": verb, **data}},
        "userIds": user_ids[:60],
    }
    return refreshed
