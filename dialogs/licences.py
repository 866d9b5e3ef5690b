"""Licences in the customer's Microsoft 365 tenant, through Microsoft Graph: "who has Visio?",
"give Megan an E3 licence", "remove Visio from Alex", and seats paid for but not assigned.

Graph is reached through `ctx.graph` (a services.graph.LicencePort); without it every licence verb
answers that licence assignment is not connected. Assignments end on a confirmation card that
carries an operation id and are carried out exactly once (services/licence_assignments.py)."""
from __future__ import annotations

import re
import secrets
from dataclasses import replace
from typing import Any


from cards import licences as cards
from dialogs.base import BadActionData, FlowContext, Handler, Outcome, Reply, Verb
from dialogs.slow import within_deadline, working_card
from services import audit, licence_assignments, subscriptions
from services.graph import MAX_USERS_PER_ASSIGNMENT, GraphUser, LicenceError, LicensedSubscription, SubscribedSku, licence_insights
from services.models import Customer, Product, Subscription
from services.permissions import Permission
from services.subscription_changes import new_op

MAX_NAME = 120


def _graph(ctx: FlowContext):
    return getattr(ctx, "graph", None)


def _say(ctx: FlowContext, key: str, **values: Any) -> Outcome:
    return Outcome([Reply(text=ctx.text(key, **values))])


def _not_connected(ctx: FlowContext) -> Outcome:
    return _say(ctx, "licences.not_connected", contact=ctx.support_contact)


def _licence_error(ctx: FlowContext, error: LicenceError) -> Outcome:
    if error.code == "not_consented":
        return _say(ctx, "licences.not_consented", company=ctx.identity.customer_name, contact=ctx.support_contact)
    if error.code == "unavailable":
        return _say(ctx, "licences.unavailable")
    return _say(ctx, "licences.refused", detail=error.detail or error.code)


async def _tenant(ctx: FlowContext) -> str:
    async with ctx.db() as session:
        return (await session.get(Customer, ctx.identity.customer_id)).tenant_id


async def _licensed(ctx: FlowContext) -> list[tuple[subscriptions.SubscriptionView, Product]]:
    """The customer's subscriptions with their products (for the SKU names Graph knows)."""
    now = ctx.clock.now()
    async with ctx.db() as session:
        rows = await session.execute(subscriptions.FACTS.add_columns(Product).where(Subscription.customer_id == ctx.identity.customer_id))
        return [(subscriptions.to_view(row, now), row.Product) for row in rows]


def _as_licensed(view: subscriptions.SubscriptionView, product: Product) -> LicensedSubscription:
    return LicensedSubscription(view.id, view.name, view.quantity, product.graph_sku_id, product.sku_part_number, view.is_active)


def _sku_of(product: Product, skus: list[SubscribedSku]) -> SubscribedSku | None:
    probe = LicensedSubscription(0, product.name, 0, product.graph_sku_id, product.sku_part_number)
    from services.graph import _matches

    return next((s for s in skus if _matches(probe, s)), None)


async def _product(ctx: FlowContext, data: dict[str, Any]) -> Product | Outcome:
    """The product meant by the card (product_id) or by what was typed (product), among this customer's."""
    licensed = await _licensed(ctx)
    products = {p.id: p for _, p in licensed}
    if "product_id" in data:
        try:
            found = products.get(int(data["product_id"]))
        except (TypeError, ValueError):
            raise BadActionData("product_id") from None
        if found is None:
            raise BadActionData("product_id")
        return found
    name = str(data.get("product") or "")[:MAX_NAME]
    views = [v for v, _ in licensed]
    # A nickname ("M365 E3 Verwaltung") hides the product's name: look under both.
    matches = subscriptions.find_by_name(views, name) or subscriptions.find_by_name([replace(v, name=v.product_name) for v in views], name)
    by_id = {v.id: p for v, p in licensed}
    distinct = {by_id[m.id].id: by_id[m.id] for m in matches}
    if not distinct:
        return _say(ctx, "licences.no_product", name=name, company=ctx.identity.customer_name)
    if len(distinct) > 1:
        from cards.common import card, execute, heading

        verb = data.get("_verb", "licences.who")
        extra = {k: v for k, v in data.items() if k not in ("product", "_verb")}
        actions = [execute(p.name, verb, {**extra, "product_id": p.id}) for p in list(distinct.values())[:6]]
        return Outcome([Reply(card=card([heading(ctx.text("choose.title")), {"type": "ActionSet", "actions": actions}]))])
    return next(iter(distinct.values()))


# -- who has X --------------------------------------------------------------------------------
async def who(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    graph = _graph(ctx)
    if graph is None:
        return _not_connected(ctx)
    product = await _product(ctx, {**data, "_verb": "licences.who"})
    if isinstance(product, Outcome):
        return product
    try:
        tenant = await _tenant(ctx)
        sku = _sku_of(product, await graph.subscribed_skus(tenant))
        if sku is None:
            return _say(ctx, "licences.no_sku", name=product.name, company=ctx.identity.customer_name)
        users = await graph.users_with_sku(tenant, sku.sku_id)
    except LicenceError as error:
        return _licence_error(ctx, error)
    return Outcome([Reply(card=cards.who_has_card(product.name, sorted(users, key=lambda u: u.display_name.lower()), paid=sku.enabled, locale=ctx.locale))])


# -- assign / remove -------------------------------------------------------------------------
def _pick(name: str, found: list[GraphUser]) -> GraphUser | None:
    if len(found) == 1:
        return found[0]
    wanted = name.strip().lower()
    exact = [u for u in found if u.display_name.lower() == wanted or u.user_principal_name.lower() == wanted]
    return exact[0] if len(exact) == 1 else None


async def assign_start(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    graph = _graph(ctx)
    if graph is None:
        return _not_connected(ctx)
    remove = bool(data.get("remove"))
    names = data.get("names") or []
    picked = data.get("picked") or []
    if not isinstance(names, list) or not isinstance(picked, list) or not all(isinstance(n, str) for n in names + picked):
        raise BadActionData("names")
    if data.get("user"):
        picked = picked + [str(data["user"])]
    if len(names) + len(picked) > MAX_USERS_PER_ASSIGNMENT:
        return _say(ctx, "licences.too_many", max=MAX_USERS_PER_ASSIGNMENT)
    if not names and not picked:
        raise BadActionData("names")
    product = await _product(ctx, {**data, "_verb": "licences.assign.start"})
    if isinstance(product, Outcome):
        return product
    try:
        tenant = await _tenant(ctx)
        users: list[GraphUser] = []
        for user_id in picked:
            # A card's user id is only a reference: it must be a user of this very tenant.
            user = await graph.get_user(tenant, user_id)
            if user is None:
                raise BadActionData("user")
            users.append(user)
        for index, name in enumerate(names):
            found = await graph.find_users(tenant, name[:MAX_NAME])
            if not found:
                return _say(ctx, "licences.no_user", name=name, company=ctx.identity.customer_name)
            user = _pick(name, found)
            if user is None:
                extra = {"product_id": product.id, "remove": remove, "names": names[index + 1:], "picked": [u.id for u in users]}
                return Outcome([Reply(card=cards.choose_user_card(name, found, verb="licences.assign.start", extra=extra, locale=ctx.locale))])
            users.append(user)
        sku = _sku_of(product, await graph.subscribed_skus(tenant))
    except LicenceError as error:
        return _licence_error(ctx, error)
    if sku is None:
        return _say(ctx, "licences.no_sku", name=product.name, company=ctx.identity.customer_name)
    users = list({u.id: u for u in users}.values())
    if not remove and sku.unassigned < len(users):
        return _say(ctx, "licences.no_free_seats", paid=sku.enabled, name=product.name)
    confirm = {"op": new_op(), "product_id": product.id, "remove": remove, "users": [u.id for u in users]}
    return Outcome([Reply(card=cards.assign_confirm_card(product.name, users, remove=remove, free=sku.unassigned, paid=sku.enabled, data=confirm, locale=ctx.locale))])


def _receipt(ctx: FlowContext, receipt: licence_assignments.LicenceReceipt) -> Outcome:
    card = cards.assign_receipt_card(
        receipt.product, list(receipt.results), remove=receipt.remove, reference=receipt.reference, actor=receipt.actor, locale=ctx.locale
    )
    return Outcome([Reply(card=card)], update_original=True)


def _answer(ctx: FlowContext, result: licence_assignments.LicenceReceipt | licence_assignments.StillWorking) -> Outcome:
    if isinstance(result, licence_assignments.StillWorking):  # Graph is being asked, here or on another instance
        return Outcome([working_card(ctx, ctx.text("licences.still_working"))])
    return _receipt(ctx, result)


async def assign_confirm(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    graph = _graph(ctx)
    if graph is None:
        return _not_connected(ctx)
    op = data.get("op")
    user_ids = data.get("users")
    if not isinstance(op, str) or not 8 <= len(op) <= 64:
        raise BadActionData("op")
    if not isinstance(user_ids, list) or not 1 <= len(user_ids) <= MAX_USERS_PER_ASSIGNMENT or not all(isinstance(u, str) for u in user_ids):
        raise BadActionData("users")
    remove = bool(data.get("remove"))
    try:
        found = await licence_assignments.recorded(ctx.db, op, ctx.identity.customer_id, ctx.clock.now())
    except licence_assignments.NotYours:
        raise BadActionData("op") from None
    if isinstance(found, (licence_assignments.LicenceReceipt, licence_assignments.StillWorking)):
        return _answer(ctx, found)

    async def carry_out() -> Outcome:
        if isinstance(found, licence_assignments.LeftOver):  # its process died before Graph's answer was recorded
            try:
                finished = await licence_assignments.finish(ctx.db, graph, op=op, now=ctx.clock.now(), unavailable=ctx.text("licences.unavailable"))
            except LicenceError:  # Graph can't say what is in effect: it stays pending, for a later click or the worker
                return Outcome([working_card(ctx, ctx.text("licences.check_unavailable"))])
            if finished is not None:
                return _answer(ctx, finished)
        return await _assign(ctx, graph, op, user_ids, remove=remove, product_id=data.get("product_id"))

    # Graph (reads, then the assignment, each with retries) may outlast the turn; the op id keys the work.
    return await within_deadline(
        ctx, f"licences/{op}", carry_out,
        working=working_card(ctx, ctx.text("licences.working")), still_working=working_card(ctx, ctx.text("licences.still_working")),
    )


async def _assign(ctx: FlowContext, graph, op: str, user_ids: list[str], *, remove: bool, product_id: Any) -> Outcome:
    product = await _product(ctx, {"product_id": product_id})
    if isinstance(product, Outcome):
        return product
    try:
        tenant = await _tenant(ctx)
        sku = _sku_of(product, await graph.subscribed_skus(tenant))
        if sku is None:
            return _say(ctx, "licences.no_sku", name=product.name, company=ctx.identity.customer_name)
        users = []
        for user_id in user_ids:
            user = await graph.get_user(tenant, user_id)
            if user is None:
                raise BadActionData("users")
            users.append(user)
    except LicenceError as error:
        return _licence_error(ctx, error)
    if not remove and sku.unassigned < len(users):
        return _say(ctx, "licences.no_free_seats", paid=sku.enabled, name=product.name)
    actor = audit.Actor(name=ctx.identity.name, user_id=ctx.identity.user_id, customer_id=ctx.identity.customer_id)
    assignment = licence_assignments.Assignment(product.name, sku.sku_id, remove, tuple(users), actor, ctx.clock.now())
    # Recorded as pending before Graph is called: a second click finds it, never a second call.
    result = await licence_assignments.carry_out(
        ctx.db, graph, op=op, customer_id=ctx.identity.customer_id, assignment=assignment, unavailable=ctx.text("licences.unavailable")
    )
    return _answer(ctx, result)


# -- seats paid for but not assigned ---------------------------------------------------------
async def unassigned(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    graph = _graph(ctx)
    if graph is None:
        return _not_connected(ctx)
    licensed = await _licensed(ctx)
    try:
        skus = await graph.subscribed_skus(await _tenant(ctx))
    except LicenceError as error:
        return _licence_error(ctx, error)
    items = licence_insights([_as_licensed(v, p) for v, p in licensed], skus)
    return Outcome([Reply(card=cards.unassigned_card(items, can_change=ctx.identity.can(Permission.CHANGE_QUANTITY), locale=ctx.locale))])


# -- typed requests --------------------------------------------------------------------------
_LICENCE = r"licen[cs]es?"
_PATTERNS = [
    (re.compile(rf"^who (?:has|have|got|uses|is using) (?:a |an |the )?(?P<product>.+?)(?: {_LICENCE})?$"), "who"),
    (re.compile(rf"^(?:give|assign) (?:a |an |the )?(?P<product>.+?) {_LICENCE} to (?P<users>.+)$"), "assign"),
    (re.compile(rf"^(?:give|assign) (?P<users>.+?) (?:a |an |the )(?P<product>.+?) {_LICENCE}$"), "assign"),
    (re.compile(rf"^(?:give|assign) (?P<users>\w+) (?P<product>.+?) {_LICENCE}$"), "assign"),
    (re.compile(rf"^(?:remove|unassign|take away) (?:the |a |an )?(?P<product>.+?)(?: {_LICENCE})? from (?P<users>.+)$"), "remove"),
]


async def understand(ctx: FlowContext, said: str) -> tuple[str, dict[str, Any]] | Outcome | None:
    """A typed licence request becomes the card flow a button starts (never a change by itself)."""
    for pattern, kind in _PATTERNS:
        match = pattern.match(said)
        if match:
            break
    else:
        return None
    product = match.group("product")
    if kind == "who":
        return "licences.who", {"product": product}
    names = [n.strip() for n in re.split(r"\s+and\s+|\s*,\s*", match.group("users")) if n.strip()]
    return "licences.assign.start", {"product": product, "names": names, "remove": kind == "remove"}


def _reading_graph(handler: Handler) -> Handler:
    """Graph reads can be slow too: past the turn's deadline their answer is posted when it comes."""

    async def verb(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
        key = f"graph/{ctx.activity_id or secrets.token_hex(8)}"  # a Teams retry of the same activity waits on the same reads
        return await within_deadline(ctx, key, lambda: handler(ctx, data), working=Reply(text=ctx.text("licences.looking")))

    return verb


VERBS = {
    "licences.who": Verb(_reading_graph(who), Permission.VIEW_SUBSCRIPTIONS),
    "licences.assign.start": Verb(_reading_graph(assign_start), Permission.MANAGE_USERS),
    "licences.assign.confirm": Verb(assign_confirm, Permission.MANAGE_USERS),
    "licences.unassigned": Verb(_reading_graph(unassigned), Permission.VIEW_SUBSCRIPTIONS),
}
PHRASES = {
    "licences.unassigned": ("unassigned licences", "unassigned licenses", "unassigned seats", "unused licences", "unused licenses", "unused seats"),
}
