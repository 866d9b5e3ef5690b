"""From a typed message or a card button to a flow: one table of verbs, handled in one place.

Typed text is understood by `services.language.parse` (or, when configured, a chat model whose
answer is checked against the same vocabulary) and becomes the verb and data a card button
would send: the router only prepares a flow, every change still ends on its confirmation card.
It also remembers, per person and conversation, the confirmation last shown ("actually make it
30") and the question it asked ("how many seats?"), and handles "cancel", "start over", "help"
anywhere in a flow.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from cards.common import card, execute, heading, line
from dialogs import cases, changes, knowledge, orders, outages, subscriptions, welcome
from dialogs.base import BadActionData, FlowContext, Outcome, Reply, Verb
from services import language as lang
from services import subscriptions as subscription_queries
from services.cases import summary_from
from services.language_vocabulary import load_vocabulary
from services.permissions import Permission

try:  # Microsoft Graph licences: another flow, present once it is written
    from dialogs import licences as _licences
except ModuleNotFoundError as missing:  # pragma: no cover - depends on the tree
    if missing.name != "dialogs.licences":
        raise
    _licences = None

log = logging.getLogger("seatdesk.router")

FLOWS = tuple(f for f in (welcome, subscriptions, changes, orders, cases, outages, knowledge, _licences) if f is not None)


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
MEMORY_KEY = "language"
# Intents whose verb has the same name as the intent.
_SAME = (
    "overview", "subscriptions.list", "changes.list", "changes.log", "cases.list", "cases.company", "cases.resolved",
    "outages.status", "outages.past", "kb.categories", "help", "welcome", "customer.choose", "orders.list", "cart.show",
)
_TARGET = {
    "seats.change": "seats.review",
    "renewal.set": "renewal.start",
    "cancel.subscription": "cancel.start",
    "subscription.details": "subscription.details",
    "case.open": "case.open",
    "case.details": "case.details",
    "kb.ask": "kb.ask",
    "catalog.search": "catalog.search",
    **{name: name for name in _SAME},
}
# Not a new request: these keep the flow in progress.
_KEEPS_FLOW = frozenset({"help", "correction", "fill", "unknown", "flow.cancel", "flow.restart"})
_MODEL_SKIPS = frozenset({"flow.cancel", "flow.restart", "help", "welcome", "correction", "fill"})


def normalize(message: str) -> str:
    message = _MENTION.sub(" ", message)
    message = re.sub(r"[^\w\s+-]", " ", message.lower())
    return " ".join(message.split())


# -- memory per person in this conversation ------------------------------------------------
def _memory(ctx: FlowContext) -> dict[str, Any]:
    """This person's pending confirmation and open question (a group chat has several people)."""
    store = ctx.state.setdefault(MEMORY_KEY, {})
    if not isinstance(store, dict):
        store = ctx.state[MEMORY_KEY] = {}
    key = str(ctx.identity.user_id)
    mine = store.get(key)
    if not isinstance(mine, dict):
        mine = store[key] = {}
    return mine


def _forget(ctx: FlowContext) -> dict[str, Any]:
    """Drop the pending confirmation and the open question (the language chosen stays)."""
    memory = _memory(ctx)
    dropped = {k: v for k, v in memory.items() if k != "locale"}
    for key in dropped:
        memory.pop(key)
    return dropped


# -- understanding -------------------------------------------------------------------------
async def _vocabulary(ctx: FlowContext) -> lang.Vocabulary:
    if ctx.identity.customer_id is None:
        return lang.EMPTY
    async with ctx.db() as session:
        return await load_vocabulary(session, ctx.identity.customer_id)


async def understand(ctx: FlowContext, message: str, vocabulary: lang.Vocabulary) -> lang.Understanding:
    """The offline parser, or the configured model (checked against the vocabulary) with the parser as fallback."""
    today = ctx.clock.now().date()
    offline = lang.parse(message, customer_vocabulary=vocabulary, locale=ctx.locale, today=today)
    model = getattr(ctx, "language_model", None)
    if model is None or offline.intent in _MODEL_SKIPS or normalize(message) in _LOOKUP:
        return offline
    from services.language_model import ModelRoutingFailed

    try:
        return await model.understand(message, vocabulary=vocabulary, locale=ctx.locale, today=today)
    except ModelRoutingFailed as failure:
        log.info("language model not used (%s): offline router answers", failure.reason)
        return offline


def _reply_language(ctx: FlowContext, message: str, understanding: lang.Understanding) -> None:
    """Answer in the language of the message when it is clearly not the Teams locale's."""
    memory = _memory(ctx)
    language, sure = lang.detect_language(lang.strip_mentions(message), default="")
    current = (ctx.locale or "en").split("-")[0].lower()
    if language and sure >= 0.6 and len(message.split()) >= 2:
        if language != current:
            ctx.locale = "de-DE" if language == "de" else "en-US"
        memory["locale"] = ctx.locale
    elif isinstance(memory.get("locale"), str):  # a short "abbrechen" or "30": the language of the conversation so far
        ctx.locale = memory["locale"]


# -- typed text ----------------------------------------------------------------------------
async def handle_text(ctx: FlowContext, message: str) -> Outcome:
    if _licences is not None and ctx.identity.customer_id is not None:
        # Licence requests name people ("give Megan an E3 licence"): their flow reads them itself.
        understood = await _licences.understand(ctx, normalize(message))
        if isinstance(understood, Outcome):
            return understood
        if understood is not None:
            return await dispatch(ctx, *understood)
    await _drop_confirmed(ctx)
    memory = _memory(ctx)
    if normalize(message) in _LOOKUP and not (memory.get("pending") or memory.get("awaiting")):
        vocabulary = lang.EMPTY  # a command ("dashboard", "my cases") names none of the customer's products
    else:
        vocabulary = await _vocabulary(ctx)
    understanding = await understand(ctx, message, vocabulary)
    _reply_language(ctx, message, understanding)
    outcome = await _route(ctx, message, understanding, vocabulary)
    return _for_asker(ctx, outcome)


def _for_asker(ctx: FlowContext, outcome: Outcome) -> Outcome:
    """In a group chat or channel, the answer says whom it is for."""
    if not ctx.shared or not outcome.replies:
        return outcome
    first, *rest = outcome.replies
    to = ctx.text("lang.for_person", name=ctx.identity.name)
    first = Reply(text=f"{to} {first.text}" if first.text else to, card=first.card)
    return Outcome([first, *rest], keep_card=outcome.keep_card, update_original=outcome.update_original)


async def _route(ctx: FlowContext, message: str, u: lang.Understanding, vocabulary: lang.Vocabulary) -> Outcome:
    memory = _memory(ctx)
    said = normalize(message)
    if u.intent == "flow.cancel":
        dropped = _forget(ctx)
        key = "lang.cancelled" if dropped else "lang.nothing_to_cancel"
        return Outcome([Reply(text=ctx.text(key))])
    if u.intent == "flow.restart":
        _forget(ctx)
        help_card = await dispatch(ctx, "help", {})
        return Outcome([Reply(text=ctx.text("lang.restarted")), *help_card.replies])
    if u.intent == "correction" or (u.intent == "fill" and memory.get("pending") and not memory.get("awaiting")):
        return await _correct(ctx, u)
    if u.intent in ("fill", "seats.change") and memory.get("awaiting") and "subscription" not in u.slots:
        return await _fill(ctx, u, vocabulary)

    notice: list[Reply] = []
    if (memory.get("pending") or memory.get("awaiting")) and u.intent not in _KEEPS_FLOW:
        notice = [Reply(text=ctx.text("lang.dropped", what=_describe(ctx, memory, vocabulary)))]
        _forget(ctx)

    if said in _LOOKUP and u.intent not in ("flow.cancel", "flow.restart"):
        outcome = await dispatch(ctx, _LOOKUP[said], {})
    else:
        outcome = await _act(ctx, message, u, vocabulary)
    return Outcome(notice + outcome.replies, keep_card=outcome.keep_card, update_original=outcome.update_original)


async def _act(ctx: FlowContext, message: str, u: lang.Understanding, vocabulary: lang.Vocabulary) -> Outcome:
    """One understood request → the flow's own verb with its data (or the question to ask first)."""
    if u.intent == "refuse":
        return Outcome([Reply(text=ctx.text("lang.refuse"))])
    if u.intent == "approve":
        return Outcome([Reply(text=ctx.text("lang.approve_on_card"))])
    if u.intent in ("fill", "correction"):
        return Outcome([Reply(text=ctx.text("lang.nothing_to_correct"))])
    target = _TARGET.get(u.intent)
    if target is None:
        return await _legacy(ctx, message)
    if target not in VERBS:
        return Outcome([Reply(text=ctx.text("lang.not_yet." + u.intent.split(".")[0]))])
    verb = VERBS[target]
    if verb.needs_customer and ctx.identity.customer_id is None:
        return await welcome.choose_customer(ctx)
    # Role limits come before any question: a View user is told whom to ask, not asked for a number.
    if verb.permission is not None and not ctx.identity.can(verb.permission):
        return await _not_allowed(ctx, verb.permission)
    data = _data(u)
    if u.intent in lang.NEEDS_SUBSCRIPTION:
        return await _about_subscription(ctx, u, target, data, vocabulary)
    return await dispatch(ctx, target, data)


def _data(u: lang.Understanding) -> dict[str, Any]:
    s = u.slots
    if u.intent == "seats.change":
        data: dict[str, Any] = {"timing": s.get("timing", "now")}
        if "quantity" in s:
            data["quantity"] = s["quantity"]
        elif "delta" in s:
            data["delta"] = s["delta"]
        if s.get("date"):
            data["date"] = s["date"]
        return data
    if u.intent == "renewal.set":
        return {"enable": s["enable"]} if isinstance(s.get("enable"), bool) else {}
    if u.intent == "case.open":
        return {"summary": summary_from(s.get("summary", ""))}
    if u.intent == "case.details":
        return {"number": s.get("number", "")}
    if u.intent == "kb.ask":
        return {"question": s.get("question", ""), "typed": True}
    if u.intent == "catalog.search":
        return {k: v for k, v in {"query": s.get("query"), "product": (s.get("product") or [None])[0], "quantity": s.get("quantity") or s.get("delta"),
                                  "term": s.get("term"), "billing": s.get("billing")}.items() if v is not None}
    return {}


async def _views(ctx: FlowContext) -> list[subscription_queries.SubscriptionView]:
    async with ctx.db() as session:
        return await subscription_queries.load_views(session, ctx.identity.customer_id, ctx.clock.now())


async def _about_subscription(ctx: FlowContext, u: lang.Understanding, target: str, data: dict[str, Any], vocabulary: lang.Vocabulary) -> Outcome:
    ids = u.slots.get("subscription")
    change = u.intent in lang.CHANGES
    if ids is None:  # no product named: choose among them (only the missing detail is asked)
        views = [v for v in await _views(ctx) if v.is_active or not change]
        if u.intent == "seats.change" and "quantity" not in data and "delta" not in data:
            target, data = "seats.start", {}
        if not views:
            return Outcome([Reply(text=ctx.text("list.empty", company=ctx.identity.customer_name))])
        return Outcome([Reply(card=changes.cards.choose_subscription_card(views, verb=target, extra=data, locale=ctx.locale))])
    if not ids:
        return _not_found(ctx, u, vocabulary)
    if len(ids) > 1:
        views = [v for v in await _views(ctx) if v.id in ids]
        return Outcome([Reply(card=changes.cards.choose_subscription_card(views, verb=target, extra=data, locale=ctx.locale))])
    data = {"id": ids[0], **data}
    if u.intent == "seats.change" and "quantity" not in data and "delta" not in data:
        owned = vocabulary.subscription(ids[0])
        _memory(ctx)["awaiting"] = {"intent": u.intent, "id": ids[0], "timing": data.get("timing", "now"), "date": data.get("date")}
        views = [v for v in await _views(ctx) if v.id == ids[0]]
        now = views[0].quantity if views else 0
        return Outcome([Reply(text=ctx.text("lang.ask.quantity", name=owned.name if owned else "", quantity=now))])
    return await dispatch(ctx, target, data)


def _not_found(ctx: FlowContext, u: lang.Understanding, vocabulary: lang.Vocabulary) -> Outcome:
    """A product the customer does not have: say so, and offer the catalog (or the list)."""
    name = u.slots.get("product_text") or ""
    sentence = ctx.text("choose.none", company=ctx.identity.customer_name, name=name)
    products = [p for p in (vocabulary.product(k) for k in u.slots.get("product") or ()) if p is not None]
    actions = [execute(ctx.text("action.subscriptions"), "subscriptions.list")]
    if products:
        sentence += " " + ctx.text("lang.in_catalog", product=products[0].name)
    if "catalog.search" in VERBS:
        actions.insert(0, execute(ctx.text("lang.action.catalog"), "catalog.search", {"query": products[0].name if products else name}))
    return Outcome([Reply(text=sentence, card=card([heading(ctx.text("choose.title"))], actions))])


async def _correct(ctx: FlowContext, u: lang.Understanding) -> Outcome:
    """"Actually make it 30": the pending confirmation again, with what was corrected."""
    memory = _memory(ctx)
    pending = memory.get("pending")
    if not isinstance(pending, dict):
        if memory.get("awaiting"):
            return await _fill(ctx, u, lang.EMPTY)
        return Outcome([Reply(text=ctx.text("lang.nothing_to_correct"))])
    data = {k: v for k, v in pending.items() if v is not None and k != "op"}
    if "quantity" in u.slots:
        data["quantity"] = u.slots["quantity"]
    elif "delta" in u.slots:
        data.pop("quantity", None)
        data["delta"] = u.slots["delta"] + (pending.get("delta_base", 0) or 0)
    if "timing" in u.slots:
        data["timing"] = u.slots["timing"]
        data.pop("date", None)
        if u.slots.get("date"):
            data["date"] = u.slots["date"]
    data.pop("delta_base", None)
    return await dispatch(ctx, "seats.review", data)


async def _fill(ctx: FlowContext, u: lang.Understanding, vocabulary: lang.Vocabulary) -> Outcome:
    """The answer to the question the router asked ("how many seats?")."""
    memory = _memory(ctx)
    awaiting = memory.pop("awaiting", None)
    if not isinstance(awaiting, dict) or "quantity" not in u.slots and "delta" not in u.slots:
        if isinstance(awaiting, dict):
            memory["awaiting"] = awaiting
        return Outcome([Reply(text=ctx.text("lang.ask.quantity_again"))])
    data: dict[str, Any] = {"id": awaiting["id"], "timing": u.slots.get("timing") or awaiting.get("timing") or "now"}
    if u.slots.get("date") or awaiting.get("date"):
        data["date"] = u.slots.get("date") or awaiting.get("date")
    if "quantity" in u.slots:
        data["quantity"] = u.slots["quantity"]
    else:
        data["delta"] = u.slots["delta"]
    return await dispatch(ctx, "seats.review", data)


def _describe(ctx: FlowContext, memory: dict[str, Any], vocabulary: lang.Vocabulary) -> str:
    entry = memory.get("pending") or memory.get("awaiting") or {}
    owned = vocabulary.subscription(entry.get("id")) if isinstance(entry.get("id"), int) else None
    return ctx.text("lang.dropped.seats", name=owned.name) if owned else ctx.text("lang.dropped.request")


async def _legacy(ctx: FlowContext, message: str) -> Outcome:
    """What the parser did not place: each flow's own understanding, then the knowledge base, then help."""
    said = normalize(message)
    if ctx.identity.customer_id is not None:
        for flow in FLOWS:
            understand_ = getattr(flow, "understand", None)
            if understand_ is None:
                continue
            understood = await understand_(ctx, said)
            if isinstance(understood, Outcome):
                return understood
            if understood is not None:
                return await dispatch(ctx, *understood)
    match = _DETAILS.match(said)
    if match and ctx.identity.customer_id is not None and ctx.identity.can(Permission.VIEW_SUBSCRIPTIONS):
        found = subscription_queries.find_by_name(await _views(ctx), match.group("name"))
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


# -- verbs (buttons and understood text) ---------------------------------------------------
async def dispatch(ctx: FlowContext, verb_name: str, data: dict[str, Any]) -> Outcome:
    verb = VERBS.get(verb_name)
    if verb is None:
        return Outcome([Reply(text=ctx.text("error.bad_action"))])
    if verb.needs_customer and ctx.identity.customer_id is None:
        return await welcome.choose_customer(ctx)
    if verb.permission is not None and not ctx.identity.can(verb.permission):
        return await _not_allowed(ctx, verb.permission)
    try:
        outcome = await verb.handler(ctx, data)
    except BadActionData:
        return Outcome([Reply(text=ctx.text("error.bad_action"))])
    _remember(ctx, verb_name, outcome)
    return outcome


_FINISHES = frozenset({"seats.confirm", "renewal.confirm", "cancel.confirm", "flow.dismiss"})


def _remember(ctx: FlowContext, verb_name: str, outcome: Outcome) -> None:
    """After a seat confirmation card, keep what it proposes, so "actually make it 30" can correct it."""
    if verb_name in _FINISHES:
        # No state write here: parallel clicks on one confirmation would collide on the e-tag.
        # A confirmed card is recognised by its operation id on the next typed message instead.
        return
    if verb_name != "seats.review":
        return
    confirm = next((b for r in outcome.replies if r.card for b in _buttons(r.card) if b.get("verb") == "seats.confirm"), None)
    memory = _memory(ctx)
    if confirm is None:
        return
    data = confirm.get("data") or {}
    memory.pop("awaiting", None)
    memory["pending"] = {k: data.get(k) for k in ("id", "quantity", "timing", "date", "op") if data.get(k) is not None}


async def _drop_confirmed(ctx: FlowContext) -> None:
    """A pending confirmation that was confirmed (its operation exists) is no longer pending."""
    pending = _memory(ctx).get("pending")
    if not isinstance(pending, dict) or not isinstance(pending.get("op"), str):
        return
    from sqlalchemy import select

    from services.models import Operation

    async with ctx.db() as session:
        done = (await session.execute(select(Operation.id).where(Operation.key == pending["op"]))).first()
    if done is not None:
        _memory(ctx).pop("pending", None)


def _buttons(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute":
            found.append(node)
        for value in node.values():
            found += _buttons(value)
    elif isinstance(node, list):
        for item in node:
            found += _buttons(item)
    return found


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
