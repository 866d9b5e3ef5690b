"""Changing subscriptions: seats, auto-renew, cancellation, scheduled changes and the change log.

Every change ends on a confirmation card; the confirmation is checked again on the server and
carried out exactly once (services/subscription_changes.py)."""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from cards import changes as cards
from cards.text import text
from dialogs.base import BadActionData, FlowContext, Outcome, Reply, Verb, int_field
from dialogs.slow import within_deadline, working_card
from services import subscription_changes as service
from services import subscriptions
from services.audit import Actor
from services.changes import CANCEL_REASONS, Decision, Refusal, Timing, decide_cancel, parse_quantity
from services.permissions import Permission
from services.subscription_changes import ChangeRequest, InProgress, Kind, NotFound, ProviderFailed, Receipt, Refused, Stale

MAX_NOTE = 500


def _actor(ctx: FlowContext) -> Actor:
    return Actor(name=ctx.identity.name, user_id=ctx.identity.user_id, customer_id=ctx.identity.customer_id)


def _money(ctx: FlowContext, view: subscriptions.SubscriptionView) -> cards.Money:
    visible = ctx.identity.can(Permission.VIEW_PRICES)
    return cards.Money(view.unit_price_monthly if visible else None, view.currency)


async def _view(ctx: FlowContext, subscription_id: int) -> subscriptions.SubscriptionView | None:
    async with ctx.db() as session:
        return await subscriptions.details(session, ctx.identity.customer_id, subscription_id, ctx.clock.now())


def _not_found(ctx: FlowContext) -> Outcome:
    return Outcome([Reply(text=ctx.text("details.not_found", company=ctx.identity.customer_name))])


def _card(card: dict) -> Outcome:
    return Outcome([Reply(card=card)])


def _date(data: dict[str, Any]) -> date | None:
    raw = data.get("date")
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise BadActionData("date")
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise BadActionData("date") from None


def _timing(data: dict[str, Any]) -> Timing:
    try:
        return Timing(data.get("timing") or Timing.NOW.value)
    except ValueError:
        raise BadActionData("timing") from None


# -- seats -----------------------------------------------------------------------------------
async def seats_start(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    view = await _view(ctx, int_field(data, "id", high=2**31 - 1))
    if view is None:
        return _not_found(ctx)
    loaded = await service.load(ctx.db, ctx.identity.customer_id, view.id)
    _, state = loaded
    if not view.is_active:
        return Outcome([Reply(text=cards.refusal_text(Decision(Refusal.NOT_ACTIVE, {"status": view.status}), view.name, ctx.locale))])
    return _card(cards.seat_form_card(view, locale=ctx.locale, min_quantity=state.min_quantity, max_quantity=state.max_quantity))


async def seats_review(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    subscription_id = int_field(data, "id", high=2**31 - 1)
    loaded = await service.load(ctx.db, ctx.identity.customer_id, subscription_id)
    view = await _view(ctx, subscription_id)
    if loaded is None or view is None:
        return _not_found(ctx)
    _, state = loaded
    timing = _timing(data)
    on = _date(data)
    if "delta" in data:
        delta = int_field(data, "delta", low=-100_000, high=100_000)
        quantity, problem = parse_quantity(state.quantity + delta)
        raw = state.quantity + delta
    else:
        raw = data.get("quantity")
        quantity, problem = parse_quantity(raw)

    def form(error: str) -> Outcome:
        return _card(
            cards.seat_form_card(
                view, locale=ctx.locale, min_quantity=state.min_quantity, max_quantity=state.max_quantity, error=error,
                quantity=quantity, timing=timing, on=on,
            )
        )

    if problem is not None:
        return form(cards.refusal_text(Decision(problem), view.name, ctx.locale, raw=raw, max_quantity=state.max_quantity))
    decision = service.decide(
        ChangeRequest(Kind.SEATS, view.id, view.version, op="", quantity=quantity, timing=timing, on=on), state, ctx.clock.now()
    )
    if not decision.allowed:
        sentence = cards.refusal_text(decision, view.name, ctx.locale, max_quantity=state.max_quantity)
        if decision.alternative == Timing.AT_RENEWAL:
            alternative = cards.execute(
                text(ctx.locale, "action.schedule_instead", quantity=quantity),
                "seats.review",
                {"id": view.id, "v": view.version, "quantity": quantity, "timing": Timing.AT_RENEWAL.value},
            )
            title = text(ctx.locale, "seats.title", name=view.name)
            return _card(cards.refusal_card(title, sentence, actions=[alternative, cards.execute(text(ctx.locale, "action.keep"), "flow.dismiss")]))
        return form(sentence)
    return _card(
        cards.seat_confirm_card(view, new_quantity=quantity, timing=timing, decision=decision, money=_money(ctx, view), op=service.new_op(), locale=ctx.locale, on=on)
    )


async def _confirm(ctx: FlowContext, request: ChangeRequest, source: str = "card") -> Outcome:
    now, actor = ctx.clock.now(), _actor(ctx)

    async def carry_out() -> Outcome:
        result = await service.confirm(ctx.db, ctx.provider, now=now, actor=actor, customer_id=ctx.identity.customer_id, request=request, source=source)
        return await _answer(ctx, result)

    # The provider (Partner Center: retries within 45 s) may outlast the turn; the op id keys the work.
    return await within_deadline(
        ctx, f"change/{request.op}", carry_out,
        working=working_card(ctx, ctx.text("change.working")), still_working=working_card(ctx, ctx.text("change.still_working")),
    )


async def _answer(ctx: FlowContext, result: service.Result) -> Outcome:
    if isinstance(result, Receipt):
        return Outcome([Reply(card=cards.receipt_card(result, locale=ctx.locale))], update_original=True)
    if isinstance(result, Stale):
        view = await _view(ctx, result.subscription_id)
        return _card(cards.stale_card(view.name if view else "", result.what, subscription_id=result.subscription_id, locale=ctx.locale))
    if isinstance(result, Refused):
        return Outcome([Reply(text=cards.refusal_text(result.decision, result.subscription_name, ctx.locale))])
    if isinstance(result, ProviderFailed) and result.unconfirmed:
        return Outcome([working_card(ctx, ctx.text("change.unconfirmed", name=result.subscription_name))])
    if isinstance(result, ProviderFailed):
        return Outcome([Reply(text=ctx.text("refusal.provider", message=result.message))])
    if isinstance(result, InProgress):
        if result.other:
            return Outcome([Reply(text=ctx.text("change.busy", name=result.subscription_name))])
        return Outcome([working_card(ctx, ctx.text("change.still_working"))])
    return _not_found(ctx)


def _op(data: dict[str, Any]) -> str:
    op = data.get("op")
    if not isinstance(op, str) or not 8 <= len(op) <= 64:
        raise BadActionData("op")
    return op


async def seats_confirm(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    quantity, problem = parse_quantity(data.get("quantity"))
    if problem is not None:
        raise BadActionData("quantity")
    request = ChangeRequest(
        Kind.SEATS, int_field(data, "id", high=2**31 - 1), int_field(data, "v", high=2**31 - 1), _op(data),
        quantity=quantity, timing=_timing(data), on=_date(data),
    )
    return await _confirm(ctx, request)


# -- auto-renew ------------------------------------------------------------------------------
async def renewal_start(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    view = await _view(ctx, int_field(data, "id", high=2**31 - 1))
    if view is None:
        return _not_found(ctx)
    enable = data.get("enable")
    if not isinstance(enable, bool):
        enable = not view.auto_renew
    _, state = await service.load(ctx.db, ctx.identity.customer_id, view.id)
    decision = service.decide(ChangeRequest(Kind.AUTO_RENEW, view.id, view.version, op="", enable=enable), state, ctx.clock.now())
    if not decision.allowed:
        return Outcome([Reply(text=cards.refusal_text(decision, view.name, ctx.locale))])
    return _card(cards.auto_renew_confirm_card(view, enable=enable, decision=decision, op=service.new_op(), locale=ctx.locale))


async def renewal_confirm(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    enable = data.get("enable")
    if not isinstance(enable, bool):
        raise BadActionData("enable")
    request = ChangeRequest(Kind.AUTO_RENEW, int_field(data, "id", high=2**31 - 1), int_field(data, "v", high=2**31 - 1), _op(data), enable=enable)
    return await _confirm(ctx, request)


# -- cancel ----------------------------------------------------------------------------------
async def cancel_start(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    view = await _view(ctx, int_field(data, "id", high=2**31 - 1))
    if view is None:
        return _not_found(ctx)
    _, state = await service.load(ctx.db, ctx.identity.customer_id, view.id)
    decision = decide_cancel(state, ctx.clock.now())
    if decision.refusal == Refusal.WINDOW_CLOSED:
        loc = ctx.locale
        sentence = ctx.text("cancel.closed", name=view.name, closed=cards.fmt.moment(view.window.closes_at, loc))
        actions = []
        if view.auto_renew:
            sentence += " " + ctx.text("cancel.closed_renews", renewal=cards.fmt.day(view.renewal_date, loc), ends=cards.fmt.day(view.commitment_end, loc))
            if ctx.identity.can(Permission.CHANGE_AUTO_RENEW):
                actions.append(cards.execute(ctx.text("action.auto_renew_off_instead"), "renewal.start", {"id": view.id, "enable": False}))
        else:
            sentence += " " + ctx.text("cancel.closed_ends", ends=cards.fmt.day(view.commitment_end, loc))
        return _card(cards.refusal_card(ctx.text("cancel.closed_title", name=view.name), sentence, actions=actions or None))
    if not decision.allowed:
        return Outcome([Reply(text=cards.refusal_text(decision, view.name, ctx.locale))])
    return _card(cards.cancel_form_card(view, decision=decision, op=service.new_op(), locale=ctx.locale))


async def cancel_confirm(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    reason = data.get("reason")
    note = data.get("note") or ""
    if not isinstance(note, str):
        raise BadActionData("note")
    if reason not in CANCEL_REASONS:
        return Outcome([Reply(text=ctx.text("cancel.bad_reason"))])
    request = ChangeRequest(
        Kind.CANCEL, int_field(data, "id", high=2**31 - 1), int_field(data, "v", high=2**31 - 1), _op(data),
        reason=reason, note=" ".join(note.split())[:MAX_NOTE] or None,
    )
    return await _confirm(ctx, request)


# -- scheduled changes and the change log ----------------------------------------------------
async def scheduled(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    found = await service.scheduled_for_customer(ctx.db, ctx.identity.customer_id)
    lines = [
        cards.ScheduledLine(s.id, s.subscription_id, s.subscription_version, s.subscription_name, s.new_quantity, s.effective, s.timing.value, s.reference, s.created_by)
        for s in found
    ]
    return _card(cards.scheduled_list_card(ctx.identity.customer_name, lines, can_withdraw=ctx.identity.can(Permission.CHANGE_QUANTITY), locale=ctx.locale))


async def withdraw_start(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    change_id = int_field(data, "change", high=2**31 - 1)
    found = [s for s in await service.scheduled_for_customer(ctx.db, ctx.identity.customer_id) if s.id == change_id]
    if not found:
        return Outcome([Reply(text=ctx.text("refusal.already"))])
    item = found[0]
    what = text(ctx.locale, "scheduled.line", name=item.subscription_name, quantity=item.new_quantity, date=cards.fmt.day(item.effective, ctx.locale))
    return _card(
        cards.withdraw_confirm_card(
            item.subscription_name, what, subscription_id=item.subscription_id, version=item.subscription_version, change_id=item.id,
            op=service.new_op(), locale=ctx.locale,
        )
    )


async def withdraw_confirm(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    request = ChangeRequest(
        Kind.WITHDRAW, int_field(data, "id", high=2**31 - 1), int_field(data, "v", high=2**31 - 1), _op(data),
        change_id=int_field(data, "change", high=2**31 - 1),
    )
    return await _confirm(ctx, request)


LOG_PAGE = 15


async def change_log(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    page = int_field(data, "page", default=1, high=10_000)
    lines = await service.change_log(ctx.db, ctx.identity.customer_id, limit=LOG_PAGE + 1, offset=(page - 1) * LOG_PAGE)
    entries = [cards.LogEntry(l.at, l.actor, l.summary, l.source, l.target, l.reference) for l in lines[:LOG_PAGE]]
    return _card(cards.change_log_card(ctx.identity.customer_name, entries, page=page, has_more=len(lines) > LOG_PAGE, locale=ctx.locale))


async def dismiss(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    return _card(cards.dismissed_card(ctx.locale))


# -- typed requests --------------------------------------------------------------------------
_NUMBER = r"(\d{1,7})"
_SEATS = r"(?:\s+(?:more\s+)?(?:seats?|licen[cs]es?|users?))?"
_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(rf"^(?:add|buy|increase by)\s+{_NUMBER}{_SEATS}\s+(?:to|for|on|of)\s+(?P<name>.+)$"), "add"),
    (re.compile(rf"^(?:remove|drop|reduce by)\s+{_NUMBER}{_SEATS}\s+(?:from|of|on)\s+(?P<name>.+)$"), "remove"),
    (re.compile(rf"^(?:reduce|decrease|lower|set|change|increase)\s+(?P<name>.+?)\s+to\s+{_NUMBER}{_SEATS}$"), "set"),
    (re.compile(r"^(?:turn|switch|set)\s+(?P<state>on|off)\s+auto\s*-?\s*renew(?:al)?\s+(?:for|of|on)\s+(?P<name>.+)$"), "renew"),
    (re.compile(r"^(?:turn|switch|set)\s+auto\s*-?\s*renew(?:al)?\s+(?P<state>on|off)\s+(?:for|of|on)\s+(?P<name>.+)$"), "renew"),
    (re.compile(r"^cancel\s+(?:the\s+|my\s+|our\s+)?(?:subscription\s+(?:for\s+|of\s+)?)?(?P<name>.+)$"), "cancel"),
]


async def understand(ctx: FlowContext, said: str) -> tuple[str, dict[str, Any]] | Outcome | None:
    """A typed change request becomes the same card flow a button starts (never a change by itself)."""
    for pattern, kind in _PATTERNS:
        match = pattern.match(said)
        if match:
            break
    else:
        return None
    name = match.group("name")
    async with ctx.db() as session:
        views = [v for v in await subscriptions.load_views(session, ctx.identity.customer_id, ctx.clock.now()) if v.is_active]
    found = subscriptions.find_by_name(views, name)
    if kind == "renew":
        verb, data = "renewal.start", {"enable": match.group("state") == "on"}
    elif kind == "cancel":
        verb, data = "cancel.start", {}
    elif kind == "set":
        verb, data = "seats.review", {"quantity": int(match.group(2)), "timing": Timing.NOW.value}
    else:
        delta = int(match.group(1)) * (1 if kind == "add" else -1)
        verb, data = "seats.review", {"delta": delta, "timing": Timing.NOW.value}
    if not found:
        if kind == "cancel":
            return None  # "cancel my case" is not about a subscription: let other flows try
        return Outcome([Reply(text=ctx.text("choose.none", company=ctx.identity.customer_name, name=name))])
    if len(found) > 1:
        return Outcome([Reply(card=cards.choose_subscription_card(found, verb=verb, extra=data, locale=ctx.locale))])
    return verb, {"id": found[0].id, **data}


VERBS = {
    "seats.start": Verb(seats_start, Permission.CHANGE_QUANTITY),
    "seats.review": Verb(seats_review, Permission.CHANGE_QUANTITY),
    "seats.confirm": Verb(seats_confirm, Permission.CHANGE_QUANTITY),
    "renewal.start": Verb(renewal_start, Permission.CHANGE_AUTO_RENEW),
    "renewal.confirm": Verb(renewal_confirm, Permission.CHANGE_AUTO_RENEW),
    "cancel.start": Verb(cancel_start, Permission.CANCEL),
    "cancel.confirm": Verb(cancel_confirm, Permission.CANCEL),
    "changes.list": Verb(scheduled, Permission.VIEW_SUBSCRIPTIONS),
    "change.withdraw.start": Verb(withdraw_start, Permission.CHANGE_QUANTITY),
    "change.withdraw.confirm": Verb(withdraw_confirm, Permission.CHANGE_QUANTITY),
    "changes.log": Verb(change_log, Permission.VIEW_SUBSCRIPTIONS),
    "flow.dismiss": Verb(dismiss, needs_customer=False),
}
PHRASES = {
    "changes.list": ("scheduled changes", "future changes", "pending changes", "what is scheduled", "scheduled"),
    "changes.log": ("change log", "history", "changes", "audit log", "what changed"),
}
