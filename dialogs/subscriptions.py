"""Overview (dashboard), the subscription list and a subscription's details."""
from __future__ import annotations

from typing import Any

from cards.changes import detail_actions
from cards.common import with_refresh
from cards.subscriptions import overview_card, subscription_details_card, subscription_list_card
from dialogs.base import FlowContext, Outcome, Reply, Verb, int_field
from services import subscriptions
from services.permissions import Permission


async def overview(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    now = ctx.clock.now()
    async with ctx.reading() as conn:
        data_ = await subscriptions.overview(conn, ctx.identity.customer_id, now)
    card = overview_card(
        ctx.identity.customer_name, data_, as_of=now, show_cost=ctx.identity.can(Permission.VIEW_PRICES), locale=ctx.locale
    )
    return Outcome([Reply(card=card)])


async def list_page(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    data = data or {}
    page = int_field(data, "page", default=1, high=100_000)
    async with ctx.reading() as conn:
        views = await subscriptions.load_views(conn, ctx.identity.customer_id, ctx.clock.now())
    result = subscriptions.paginate(subscriptions.group_with_addons(views), page, ctx.page_size)
    card = subscription_list_card(ctx.identity.customer_name, result, locale=ctx.locale)
    return Outcome([Reply(card=card)])


async def details(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    subscription_id = int_field(data, "id", high=2**31 - 1)
    async with ctx.db() as session:
        view = await subscriptions.details(session, ctx.identity.customer_id, subscription_id, ctx.clock.now())
    if view is None:
        return Outcome([Reply(text=ctx.text("details.not_found", company=ctx.identity.customer_name))])
    can = ctx.identity.can
    if ctx.shared and ctx.user_mri and not data.get("personal"):
        # Several people see this card: everyone gets the plain view, the asker a personal one with their buttons.
        plain_view = subscription_details_card(view, show_prices=False, locale=ctx.locale)
        return Outcome([Reply(card=with_refresh(plain_view, "subscription.details", {"id": view.id, "personal": True}, [ctx.user_mri]))])
    actions = detail_actions(
        view,
        can_change_seats=can(Permission.CHANGE_QUANTITY),
        can_auto_renew=can(Permission.CHANGE_AUTO_RENEW),
        can_cancel=can(Permission.CANCEL),
        locale=ctx.locale,
    )
    card = subscription_details_card(view, show_prices=can(Permission.VIEW_PRICES), locale=ctx.locale, change_actions=actions)
    if ctx.shared and ctx.user_mri:
        card = with_refresh(card, "subscription.details", {"id": view.id, "personal": True}, [ctx.user_mri])
    return Outcome([Reply(card=card)])


VERBS = {
    "overview": Verb(overview, Permission.VIEW_SUBSCRIPTIONS),
    "subscriptions.list": Verb(list_page, Permission.VIEW_SUBSCRIPTIONS),
    "subscription.details": Verb(details, Permission.VIEW_SUBSCRIPTIONS),
}
PHRASES = {
    "overview": ("dashboard", "overview", "what do we have", "what have we got", "what do i have", "summary", "home", "status"),
    "subscriptions.list": ("subscriptions", "list", "my subscriptions", "show subscriptions", "list subscriptions", "licenses", "licences", "products"),
}
