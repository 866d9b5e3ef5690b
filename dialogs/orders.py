"""Ordering from the catalog: search, offers, cart, checkout, approvals and order history.

Checkout writes the order once (keyed by the checkout card's operation id); approval cards go
to the customer's approvers proactively and the first valid decision wins; approved orders
are provisioned by the outbox (now, in the background, and by the worker after a restart).

Notices to other people go out after the turn's answer (`ctx.after_turn`): a proactive send may
wait on Teams' pacing or a Retry-After, which must not hold the clicker's turn near Teams' 15 s.
The approval cards, and a decision's notices (the requester's message and card, the other
approvers' cards), are written to the notice outbox with the order or the decision and delivered
right after the turn; the worker delivers what a stop, a crash or a failed send left. Only the
first checkout of an operation and the first decision of an order (both settled in the database)
owe notices."""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from cards import orders as cards
from dialogs.base import BadActionData, FlowContext, Outcome, Reply, Verb, int_field
from dialogs.notices import deliver
from services import ordering
from services.audit import Actor
from services.changes import parse_quantity
from services.models import Customer, OrderStatus, User
from services.permissions import Permission
from services.subscription_changes import new_op


async def _user(ctx: FlowContext) -> User:
    async with ctx.db() as session:
        return await session.get(User, ctx.identity.user_id)


async def _catalog(ctx: FlowContext) -> list[ordering.ProductView]:
    async with ctx.db() as session:
        return await ordering.catalog(session, ctx.identity.customer_id)


async def _cart(ctx: FlowContext) -> ordering.Cart:
    async with ctx.db() as session:
        return await ordering.cart(session, ctx.identity.customer_id, ctx.identity.user_id)


def _problem(ctx: FlowContext, problem: ordering.CartProblem) -> str:
    return ctx.text(problem.key, **problem.values)


# -- catalog -------------------------------------------------------------------------------------
async def catalog_search(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    query = data.get("query") if isinstance(data.get("query"), str) else ""
    query = " ".join(query.split())[:100]
    products = await _catalog(ctx)
    async with ctx.db() as session:
        owned = set(await ordering.owned_products(session, ctx.identity.customer_id))
    if query:
        found = ordering.search(products, query)
        if not found:
            return Outcome([Reply(text=ctx.text("catalog.none", query=query, company=ctx.identity.customer_name))])
        if len(found) == 1:
            return Outcome([Reply(card=cards.offers_card(found[0], locale=ctx.locale))])
        title = ctx.text("catalog.title", query=query)
    else:
        found, title = products, ctx.text("catalog.title_all", company=ctx.identity.customer_name)
    return Outcome([Reply(card=cards.catalog_card(title, found, owned=owned, locale=ctx.locale))])


async def catalog_product(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    product_id = int_field(data, "product", high=2**31 - 1)
    product = next((p for p in await _catalog(ctx) if p.id == product_id), None)
    if product is None:
        return Outcome([Reply(text=ctx.text("order.not_in_catalog"))])
    return Outcome([Reply(card=cards.offers_card(product, locale=ctx.locale))])


# -- cart ----------------------------------------------------------------------------------------
async def cart_add(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    products = await _catalog(ctx)
    offer_id = int_field(data, "offer", high=2**31 - 1)
    product = next((p for p in products if any(o.id == offer_id for o in p.offers)), None)
    if product is None or ("product" in data and int_field(data, "product", high=2**31 - 1) != product.id):
        return Outcome([Reply(text=ctx.text("order.not_in_catalog"))])
    quantity, problem = parse_quantity(data.get("quantity"))
    if problem is not None:
        return Outcome([Reply(card=cards.offers_card(product, locale=ctx.locale, error=ctx.text("refusal." + problem.value, raw=str(data.get("quantity")), max=10000)))])
    separate = data.get("separate") is True
    if not separate:
        async with ctx.db() as session:
            owned = (await ordering.owned_products(session, ctx.identity.customer_id)).get(product.id)
        if owned:
            sub = max(owned, key=lambda s: s.quantity)
            card = cards.duplicate_card(
                company=ctx.identity.customer_name, name=product.name, subscription_name=sub.display_name, subscription_id=sub.id,
                seats=sub.quantity, offer_id=offer_id, quantity=quantity, locale=ctx.locale,
            )
            return Outcome([Reply(card=card)])
    try:
        async with ctx.db() as session, session.begin():
            await ordering.add_to_cart(
                session, customer_id=ctx.identity.customer_id, user_id=ctx.identity.user_id, offer_id=offer_id, quantity=quantity,
                separate=separate, now=ctx.clock.now(),
            )
    except ordering.CartProblem as problem_:
        return Outcome([Reply(card=cards.offers_card(product, locale=ctx.locale, error=_problem(ctx, problem_)))])
    note = ctx.text("cart.added", quantity=quantity, name=product.name)
    return Outcome([Reply(card=cards.cart_card(await _cart(ctx), locale=ctx.locale, note=note))])


async def cart_show(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    return Outcome([Reply(card=cards.cart_card(await _cart(ctx), locale=ctx.locale))])


async def cart_update(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    current = await _cart(ctx)
    try:
        async with ctx.db() as session, session.begin():
            for line in current.lines:
                raw = data.get(f"qty_{line.id}")
                if raw in (None, ""):
                    continue
                quantity, problem = parse_quantity(raw)
                if problem is not None:
                    raise ordering.CartProblem("order.quantity_range", min=line.offer.min_quantity, max=line.offer.max_quantity)
                await ordering.set_quantity(session, customer_id=ctx.identity.customer_id, user_id=ctx.identity.user_id, item_id=line.id, quantity=quantity)
    except ordering.CartProblem as problem:
        return Outcome([Reply(card=cards.cart_card(await _cart(ctx), locale=ctx.locale, note=_problem(ctx, problem)))])
    return Outcome([Reply(card=cards.cart_card(await _cart(ctx), locale=ctx.locale, note=ctx.text("cart.updated")))])


async def cart_remove(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    async with ctx.db() as session, session.begin():
        await ordering.remove_from_cart(session, customer_id=ctx.identity.customer_id, user_id=ctx.identity.user_id, item_id=int_field(data, "item", high=2**31 - 1))
    return await cart_show(ctx, data)


async def cart_clear(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    async with ctx.db() as session, session.begin():
        await ordering.remove_from_cart(session, customer_id=ctx.identity.customer_id, user_id=ctx.identity.user_id)
    return await cart_show(ctx, data)


# -- checkout ------------------------------------------------------------------------------------
async def _approval_roles(ctx: FlowContext, current: ordering.Cart) -> list[str]:
    async with ctx.db() as session:
        customer = await session.get(Customer, ctx.identity.customer_id)
    decision = ordering.approval_needed(ordering.Policy.from_json(customer.approval_policy), ctx.identity.role, current.total_monthly)
    return [ctx.text("role." + r.value) for r in decision.approver_roles] if decision.needed else []


async def _checkout_card(ctx: FlowContext, current: ordering.Cart, *, note: str | None = None, error: str | None = None) -> Outcome:
    if not current.lines:
        return Outcome([Reply(card=cards.cart_card(current, locale=ctx.locale))])
    user = await _user(ctx)
    card = cards.checkout_card(
        current, op=new_op(), name=user.name, email=user.email, approval_roles=await _approval_roles(ctx, current), locale=ctx.locale, note=note, error=error
    )
    return Outcome([Reply(card=card)])


async def checkout_start(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    return await _checkout_card(ctx, await _cart(ctx))


def _start_date(data: dict[str, Any]) -> date | None:
    raw = data.get("start_date")
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise BadActionData("start_date")
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise BadActionData("start_date") from None


async def _order(ctx: FlowContext, order_id: int) -> ordering.OrderView | None:
    async with ctx.db() as session:
        found = await ordering.order_views(session, ctx.identity.customer_id, order_id=order_id, limit=1)
    return found[0] if found else None


async def checkout_confirm(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    op, fp = data.get("op"), data.get("fp")
    if not isinstance(op, str) or not 8 <= len(op) <= 64 or not isinstance(fp, str) or len(fp) > 64:
        raise BadActionData("op")
    accept_raw = data.get("accept")
    request = ordering.CheckoutRequest(
        op=op, fingerprint=fp,
        acceptance_name=data.get("accept_name") if isinstance(data.get("accept_name"), str) else None,
        acceptance_email=data.get("accept_email") if isinstance(data.get("accept_email"), str) else None,
        accepted=accept_raw is True or accept_raw == "true", start_date=_start_date(data),
    )
    user = await _user(ctx)
    result = await ordering.checkout(
        ctx.db, customer_id=ctx.identity.customer_id, user=user, actor=Actor(user.name, user.id, ctx.identity.customer_id), request=request, now=ctx.clock.now()
    )
    if isinstance(result, ordering.CartChanged):
        return await _checkout_card(ctx, result.cart, note=ctx.text("checkout.changed"))
    if isinstance(result, ordering.CheckoutProblem):
        if result.key == "order.acceptance_needed":
            return await _checkout_card(ctx, await _cart(ctx), error=ctx.text(result.key))
        return Outcome([Reply(text=ctx.text(result.key, company=ctx.identity.customer_name, **result.values))])
    order = await _order(ctx, result.order_id)
    if result.again:
        message = ctx.text("order.already", number=order.number)
    elif result.status == OrderStatus.AWAITING_APPROVAL:
        names = await _approvers_in_teams(ctx, result.approvers)
        message = ctx.text("order.awaiting", approvers=", ".join(names)) if names else ctx.text("order.awaiting_nobody")
        if ctx.reply_to_id:
            # The checkout card becomes the requester's order card: it shows the decision later.
            await ordering.remember_card(ctx.db, order.id, ctx.identity.user_id, ctx.reply_to_id, requester=True)
        ctx.after_turn.append(deliver_now)  # the approval cards, owed in the outbox with the order
    else:
        message = ctx.text("order.ordered")
        ctx.after_turn.append(provision_now)
    return Outcome([Reply(card=cards.order_placed_card(order, message=message, locale=ctx.locale))], update_original=True)


async def _approvers_in_teams(ctx: FlowContext, approver_ids: tuple[int, ...]) -> list[str]:
    """The names of the approvers Seatdesk can send the approval card to (read now; sent after the turn)."""
    reachable = await ctx.notifier.reachable(approver_ids)
    async with ctx.db() as session:
        approvers = [await session.get(User, uid) for uid in approver_ids if uid in reachable]
    return [approver.name for approver in approvers if approver is not None]


async def deliver_now(ctx: FlowContext) -> None:
    """Deliver what the outbox owes (a checkout's approval cards, a decision's notices) right after the
    turn; the worker delivers what this misses."""
    await deliver(ctx.db, ctx.notifier, ctx.clock.now())


async def provision_now(ctx: FlowContext) -> None:
    """Submit approved orders right after the turn; the worker retries what this misses."""
    await provision(ctx.db, ctx.order_submitter, ctx.notifier, ctx.clock.now())


async def provision(db, submitter, notifier, now) -> int:
    """Submit approved orders and poll submitted ones; each outcome is recorded with its notices (the
    outbox), which are then delivered. Returns how many notices were delivered."""
    await ordering.provision(db, submitter, now)
    return await deliver(db, notifier, now)


# -- approvals -----------------------------------------------------------------------------------
async def approval_decide(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    order_id = int_field(data, "order", high=2**31 - 1)
    decision = data.get("decision")
    if decision not in ("approve", "reject"):
        raise BadActionData("decision")
    comment = data.get("comment") if isinstance(data.get("comment"), str) else None
    user = await _user(ctx)
    result = await ordering.decide(
        ctx.db, customer_id=ctx.identity.customer_id, user=user, order_id=order_id, approve=decision == "approve", comment=comment, now=ctx.clock.now()
    )
    if isinstance(result, ordering.DecisionRefused):
        return Outcome([Reply(text=ctx.text(result.key, company=ctx.identity.customer_name))])
    order = await _order(ctx, order_id)
    decided = cards.approval_card(order, reason="", decided=True, locale=ctx.locale)
    if not result.first:
        return Outcome([Reply(card=decided, text=ctx.text("approval.already", state=""))])
    # Only the first decision gets here (settled in the database, its notices owed in the outbox with
    # it): they go out after the answer, and the worker delivers what a stop or a failure leaves.
    ctx.after_turn.append(deliver_now)
    if decision == "approve":
        ctx.after_turn.append(provision_now)
    return Outcome([Reply(card=decided)], update_original=True)


# -- orders --------------------------------------------------------------------------------------
PAGE = 8


async def _orders(ctx: FlowContext, data: dict[str, Any], *, mine: bool) -> Outcome:
    page = int_field(data, "page", default=1, high=10_000)
    async with ctx.db() as session:
        found = await ordering.order_views(
            session, ctx.identity.customer_id, requester_id=ctx.identity.user_id if mine else None, limit=PAGE + 1, offset=(page - 1) * PAGE
        )
    title = ctx.text("orders.title_mine") if mine else ctx.text("orders.title_company", company=ctx.identity.customer_name)
    card = cards.orders_card(title, found[:PAGE], page=page, has_more=len(found) > PAGE, verb="orders.list" if mine else "orders.company", locale=ctx.locale)
    return Outcome([Reply(card=card)])


async def orders_mine(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    return await _orders(ctx, data, mine=True)


async def orders_company(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    return await _orders(ctx, data, mine=False)


async def order_details(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    order = await _order(ctx, int_field(data, "order", high=2**31 - 1))
    if order is None or (order.requester_id != ctx.identity.user_id and not ctx.identity.can(Permission.VIEW_COMPANY_ORDERS)):
        return Outcome([Reply(text=ctx.text("order.not_found", company=ctx.identity.customer_name))])
    show = ctx.identity.can(Permission.VIEW_PRICES) or order.requester_id == ctx.identity.user_id
    return Outcome([Reply(card=cards.order_details_card(order, show_prices=show, locale=ctx.locale))])


_ORDER_TEXT = re.compile(r"^(?:order|buy|purchase|catalog|find)\s+(?:(?P<qty>\d{1,5})\s+(?:x\s+)?)?(?:(?:seats?|licen[cs]es?)\s+(?:of\s+)?)?(?P<query>.+)$")


async def understand(ctx: FlowContext, said: str):
    match = _ORDER_TEXT.match(said)
    if not match or not ctx.identity.can(Permission.ORDER):
        return None
    return "catalog.search", {"query": match.group("query")}


VERBS = {
    "catalog.search": Verb(catalog_search, Permission.ORDER),
    "catalog.product": Verb(catalog_product, Permission.ORDER),
    "cart.add": Verb(cart_add, Permission.MANAGE_CART),
    "cart.show": Verb(cart_show, Permission.MANAGE_CART),
    "cart.update": Verb(cart_update, Permission.MANAGE_CART),
    "cart.remove": Verb(cart_remove, Permission.MANAGE_CART),
    "cart.clear": Verb(cart_clear, Permission.MANAGE_CART),
    "checkout.start": Verb(checkout_start, Permission.ORDER),
    "checkout.confirm": Verb(checkout_confirm, Permission.ORDER),
    "approval.decide": Verb(approval_decide, Permission.APPROVE_ORDERS),
    "orders.list": Verb(orders_mine, Permission.VIEW_ORDERS),
    "orders.company": Verb(orders_company, Permission.VIEW_COMPANY_ORDERS),
    "order.details": Verb(order_details, Permission.VIEW_ORDERS),
}
PHRASES = {
    "catalog.search": ("catalog", "catalogue", "shop", "order something", "buy something", "new product", "products we can buy"),
    "cart.show": ("cart", "my cart", "basket", "show cart"),
    "checkout.start": ("checkout", "check out"),
    "orders.list": ("my orders", "orders", "order status", "order history", "what s the status of my order", "status of my order"),
    "orders.company": ("company orders", "all orders", "orders of my company", "our orders"),
}
