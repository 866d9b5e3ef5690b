"""From a typed message or a card button to a flow: one table of verbs, handled in one place."""
from __future__ import annotations

import re
from typing import Any

from dialogs import cases, changes, knowledge, orders, outages, subscriptions, welcome
from dialogs.base import BadActionData, FlowContext, Outcome, Reply, Verb
from services import subscriptions as subscription_queries
from services.permissions import Permission

FLOWS = (welcome, subscriptions, changes, orders, cases, outages, knowledge)


def _collect() -> tuple[dict[str, Verb], dict[str, str]]:
    verbs: dict[str, Verb] = {}
    lookup: dict[str, str] = {}
    for flow in FLOWS:
        for name, verb in flow.VERBS.items():
            if name in verbs:
                raise ValueError(f"verb {name} is defined twice")
            verbs[name] = verb
        for name, phrases in getattr(flow, "PHRASES", {}).items():
            for phrase in phrases:
                if phrase in lookup:
                    raise ValueError(f"phrase {phrase!r} is claimed twice")
                lookup[phrase] = name
    return verbs, lookup


VERBS, _LOOKUP = _collect()
_DETAILS = re.compile(r"^(?:details?|show|open)\s+(?:of\s+|for\s+)?(?P<name>.+)$")
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)


def normalize(message: str) -> str:
    message = _MENTION.sub(" ", message)
    message = re.sub(r"[^\w\s+-]", " ", message.lower())
    return " ".join(message.split())


async def handle_text(ctx: FlowContext, message: str) -> Outcome:
    said = normalize(message)
    verb = _LOOKUP.get(said)
    if verb:
        return await dispatch(ctx, verb, {})
    if ctx.identity.customer_id is not None:
        for flow in FLOWS:
            understand = getattr(flow, "understand", None)
            if understand is None:
                continue
            understood = await understand(ctx, said)
            if isinstance(understood, Outcome):
                return understood
            if understood is not None:
                return await dispatch(ctx, *understood)
    match = _DETAILS.match(said)
    if match and ctx.identity.customer_id is not None and ctx.identity.can(Permission.VIEW_SUBSCRIPTIONS):
        async with ctx.db() as session:
            views = await subscription_queries.load_views(session, ctx.identity.customer_id, ctx.clock.now())
        found = subscription_queries.find_by_name(views, match.group("name"))
        if len(found) == 1:
            return await dispatch(ctx, "subscription.details", {"id": found[0].id})
    for flow in FLOWS:
        match_text = getattr(flow, "match_text", None)
        matched = match_text(said, message) if match_text else None
        if matched:
            return await dispatch(ctx, *matched)
    if knowledge.looks_like_question(message):
        return await dispatch(ctx, "kb.ask", {"question": message, "typed": True})
    return await welcome.not_understood(ctx)


async def handle_files(ctx: FlowContext) -> Outcome:
    """Files sent without a recognised request go to the flow that accepts them, if any."""
    if "files.received" in VERBS:
        return await dispatch(ctx, "files.received", {})
    return await welcome.not_understood(ctx)


async def dispatch(ctx: FlowContext, verb_name: str, data: dict[str, Any]) -> Outcome:
    verb = VERBS.get(verb_name)
    if verb is None:
        return Outcome([Reply(text=ctx.text("error.bad_action"))])
    if verb.needs_customer and ctx.identity.customer_id is None:
        return await welcome.choose_customer(ctx)
    if verb.permission is not None and not ctx.identity.can(verb.permission):
        return await _not_allowed(ctx, verb.permission)
    try:
        return await verb.handler(ctx, data)
    except BadActionData:
        return Outcome([Reply(text=ctx.text("error.bad_action"))])


async def _not_allowed(ctx: FlowContext, permission: Permission) -> Outcome:
    """Say what this role can't do and whom to ask (the people of this company who can)."""
    from sqlalchemy import select

    from services.models import Role, User, UserStatus
    from services.permissions import roles_with

    roles = [r for r in roles_with(permission) if r != Role.VIEW]
    async with ctx.db() as session:
        people = (
            await session.execute(
                select(User.name)
                .where(User.customer_id == ctx.identity.customer_id, User.role.in_(roles), User.status == UserStatus.ACTIVE, User.is_partner_staff.is_(False))
                .order_by(User.role.desc(), User.name)
                .limit(3)
            )
        ).scalars().all()
    what_key = "refusal.what." + permission.value
    what = ctx.text(what_key) if what_key in _known_keys() else permission.value.replace("_", " ")
    who = ", ".join(people) if people else ctx.text("refusal.nobody")
    role = ctx.text("role." + ctx.identity.role.value)
    return Outcome([Reply(text=ctx.text("refusal.not_allowed", role=role, what=what, who=who))])


def _known_keys() -> set[str]:
    from cards.text import MESSAGES

    return set(MESSAGES["en"])
