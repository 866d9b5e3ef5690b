"""From a typed message or a card button to a flow: one table of verbs, handled in one place."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from dialogs import subscriptions, welcome
from dialogs.base import BadActionData, FlowContext, Outcome, Reply
from services import subscriptions as subscription_queries
from services.permissions import Permission

Handler = Callable[[FlowContext, dict[str, Any]], Awaitable[Outcome]]


@dataclass(frozen=True)
class Verb:
    handler: Handler
    permission: Permission | None = None
    # MSP technicians must have chosen a customer first.
    needs_customer: bool = True


VERBS: dict[str, Verb] = {
    "welcome": Verb(welcome.welcome, needs_customer=False),
    "help": Verb(welcome.help_, needs_customer=False),
    "customer.choose": Verb(welcome.choose_customer, needs_customer=False),
    "customer.act_for": Verb(welcome.act_for, needs_customer=False),
    "overview": Verb(subscriptions.overview, Permission.VIEW_SUBSCRIPTIONS),
    "subscriptions.list": Verb(subscriptions.list_page, Permission.VIEW_SUBSCRIPTIONS),
    "subscription.details": Verb(subscriptions.details, Permission.VIEW_SUBSCRIPTIONS),
}

_PHRASES: dict[str, tuple[str, ...]] = {
    "overview": ("dashboard", "overview", "what do we have", "what have we got", "what do i have", "summary", "home", "status"),
    "subscriptions.list": ("subscriptions", "list", "my subscriptions", "show subscriptions", "list subscriptions", "licenses", "licences", "products"),
    "help": ("help", "what can you do", "commands", "menu"),
    "welcome": ("hi", "hello", "hey", "start", "good morning"),
    "customer.choose": ("switch customer", "change customer", "customers", "choose customer"),
}
_LOOKUP = {phrase: verb for verb, phrases in _PHRASES.items() for phrase in phrases}
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
    match = _DETAILS.match(said)
    if match and ctx.identity.customer_id is not None and ctx.identity.can(Permission.VIEW_SUBSCRIPTIONS):
        async with ctx.db() as session:
            views = await subscription_queries.load_views(session, ctx.identity.customer_id, ctx.clock.now())
        found = subscription_queries.find_by_name(views, match.group("name"))
        if len(found) == 1:
            return await dispatch(ctx, "subscription.details", {"id": found[0].id})
    return await welcome.not_understood(ctx)


async def dispatch(ctx: FlowContext, verb_name: str, data: dict[str, Any]) -> Outcome:
    verb = VERBS.get(verb_name)
    if verb is None:
        return Outcome([Reply(text=ctx.text("error.bad_action"))])
    if verb.needs_customer and ctx.identity.customer_id is None:
        return await welcome.choose_customer(ctx)
    if verb.permission is not None and not ctx.identity.can(verb.permission):
        return Outcome([Reply(text=ctx.text("error.bad_action"))])
    try:
        return await verb.handler(ctx, data)
    except BadActionData:
        return Outcome([Reply(text=ctx.text("error.bad_action"))])
