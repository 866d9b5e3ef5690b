"""Welcome on install, help, and the MSP technician's choice of customer."""
from __future__ import annotations

from typing import Any

from cards.welcome import CustomerChoice, choose_customer_card, help_card, welcome_card
from dialogs.base import FlowContext, Outcome, Reply, Verb
from services import tenancy


async def welcome(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    replies = [Reply(card=welcome_card(ctx.person))]
    if ctx.identity.is_partner_staff and ctx.identity.customer_id is None:
        replies += (await choose_customer(ctx)).replies
    return Outcome(replies)


async def help_(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    return Outcome([Reply(card=help_card(ctx.person))])


async def not_understood(ctx: FlowContext) -> Outcome:
    return Outcome([Reply(card=help_card(ctx.person, not_understood=True))])


async def choose_customer(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    if not ctx.identity.is_partner_staff:
        return Outcome([Reply(text=ctx.text("partner.only_staff"))])
    async with ctx.db() as session:
        customers = await tenancy.served_customers(session)
    choices = [CustomerChoice(key=c.key, name=c.name) for c in customers]
    return Outcome([Reply(card=choose_customer_card(ctx.identity.home_customer_name, choices, ctx.locale))])


async def act_for(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    if not ctx.identity.is_partner_staff:
        return Outcome([Reply(text=ctx.text("partner.only_staff"))])
    key = data.get("customer")
    if not isinstance(key, str) or not key:
        return Outcome([Reply(text=ctx.text("partner.unknown_customer"))])
    async with ctx.db() as session, session.begin():
        customer = await tenancy.act_for(session, ctx.identity, key)
    if customer is None:
        return Outcome([Reply(text=ctx.text("partner.unknown_customer"))])
    ctx.identity = tenancy.Identity(**{**ctx.identity.__dict__, "customer_id": customer.id, "customer_name": customer.name})
    return Outcome([Reply(card=welcome_card(ctx.person))])


VERBS = {
    "welcome": Verb(welcome, needs_customer=False),
    "help": Verb(help_, needs_customer=False),
    "customer.choose": Verb(choose_customer, needs_customer=False),
    "customer.act_for": Verb(act_for, needs_customer=False),
}
PHRASES = {
    "help": ("help", "what can you do", "commands", "menu"),
    "welcome": ("hi", "hello", "hey", "start", "good morning"),
    "customer.choose": ("switch customer", "change customer", "customers", "choose customer"),
}
