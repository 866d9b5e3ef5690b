"""Cards of the change flows: forms, confirmations, refusals, receipts, scheduled changes, change log."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import cards.changes_text  # noqa: F401 - registers the sentences
from cards import format as fmt
from cards.common import Card, card, execute, facts, heading, line, plain
from cards.text import text
from services.changes import CANCEL_REASONS, Decision, Refusal, Timing
from services.subscriptions import SubscriptionView


@dataclass(frozen=True)
class Money:
    """What the reader may see of the money side: None hides prices (view and modify roles)."""

    unit_price_monthly: Decimal | None
    currency: str


def planned_list(items, locale: str | None) -> str:
    return "; ".join(text(locale, "details.scheduled_quantity", quantity=p.quantity, date=fmt.day(p.effective, locale)) for p in items)


def refusal_text(decision: Decision, name: str, locale: str | None, raw: object = None, max_quantity: int | None = None) -> str:
    loc = locale
    facts_ = dict(decision.facts)
    code = decision.refusal
    if code == Refusal.WINDOW_CLOSED:
        first = text(loc, "refusal.window_closed", name=plain(name), closed=fmt.moment(facts_["closed_at"], loc))
        if facts_.get("next_opens") is not None:
            return first + " " + text(loc, "refusal.window_closed_next", opens=fmt.day(facts_["next_opens"], loc))
        return first + " " + text(loc, "refusal.window_closed_final")
    values = {"name": plain(name), "raw": plain(str(raw)) if raw is not None else "", "max": max_quantity or ""}
    for key, value in facts_.items():
        if isinstance(value, datetime):
            values[key] = fmt.moment(value, loc)
        elif isinstance(value, date):
            values[key] = fmt.day(value, loc)
        elif hasattr(value, "value"):
            values[key] = text(loc, "status." + value.value) if key == "status" else value.value
        else:
            values[key] = value
    return text(loc, "refusal." + code.value, **values)


def seat_form_card(view: SubscriptionView, *, locale: str | None, min_quantity: int, max_quantity: int, error: str | None = None, quantity: object = None, timing: Timing = Timing.NOW, on: date | None = None) -> Card:
    loc = locale
    body = [heading(text(loc, "seats.title", name=plain(view.name)))]
    if error:
        body.append({"type": "TextBlock", "text": error, "wrap": True, "color": "Attention", "weight": "Bolder"})
    body.append(line(text(loc, "seats.current", quantity=f"{view.quantity:,}", term=fmt.term_and_billing(view.term, view.billing, loc))))
    if view.assigned_seats is not None:
        body.append(line(text(loc, "seats.assigned", assigned=view.assigned_seats), subtle=True, spacing="None"))
    window = view.window
    if window.is_open:
        body.append(line(text(loc, "seats.window_open", closes=fmt.moment(window.closes_at, loc)), subtle=True))
    elif window.next_opens_at is not None:
        body.append(line(text(loc, "seats.window_closed", closed=fmt.moment(window.closes_at, loc), renewal=fmt.day(view.renewal_date, loc)), subtle=True))
    else:
        body.append(line(text(loc, "seats.window_closed_final", closed=fmt.moment(window.closes_at, loc)), subtle=True))
    choices = [{"title": text(loc, "seats.timing.now"), "value": Timing.NOW.value}]
    if view.auto_renew:
        choices.append({"title": text(loc, "seats.timing.at_renewal", renewal=fmt.day(view.renewal_date, loc)), "value": Timing.AT_RENEWAL.value})
    choices.append({"title": text(loc, "seats.timing.on_date"), "value": Timing.ON_DATE.value})
    quantity_input = {
        "type": "Input.Number",
        "id": "quantity",
        "label": text(loc, "seats.quantity"),
        "isRequired": True,
        "min": min_quantity,
        "max": max_quantity,
        "errorMessage": text(loc, "seats.quantity_error", min=min_quantity, max=max_quantity),
    }
    if isinstance(quantity, int):
        quantity_input["value"] = quantity
    body.append(quantity_input)
    body.append({"type": "Input.ChoiceSet", "id": "timing", "label": text(loc, "seats.timing"), "style": "expanded", "value": timing.value, "choices": choices})
    date_input = {"type": "Input.Date", "id": "date", "label": text(loc, "seats.date")}
    if on is not None:
        date_input["value"] = on.isoformat()
    body.append(date_input)
    return card(
        body,
        [
            execute(text(loc, "action.review"), "seats.review", {"id": view.id, "v": view.version}, style="positive"),
            execute(text(loc, "action.keep"), "flow.dismiss"),
        ],
    )


def _cost_lines(money: Money, old: int, new: int, locale: str | None) -> tuple[str, str]:
    if money.unit_price_monthly is None:
        return text(locale, "confirm.cost"), text(locale, "confirm.cost_hidden")
    before = money.unit_price_monthly * old
    after = money.unit_price_monthly * new
    delta = after - before
    sign = "+" if delta >= 0 else "−"
    return text(locale, "confirm.cost"), text(
        locale,
        "confirm.cost_value",
        before=fmt.money(before, money.currency, locale),
        after=fmt.money(after, money.currency, locale),
        delta=sign + fmt.money(abs(delta), money.currency, locale),
    )


def seat_confirm_card(view: SubscriptionView, *, new_quantity: int, timing: Timing, decision: Decision, money: Money, op: str, locale: str | None, on: date | None = None) -> Card:
    loc = locale
    body = [heading(text(loc, "confirm.title")), line(text(loc, "confirm.seats", name=plain(view.name), old=f"{view.quantity:,}", new=f"{new_quantity:,}"))]
    if timing == Timing.NOW:
        body.append(line(text(loc, "confirm.when_now")))
        if new_quantity < view.quantity:
            body.append(line(text(loc, "confirm.decrease_window", closes=fmt.moment(view.window.closes_at, loc)), subtle=True))
    elif timing == Timing.AT_RENEWAL:
        body.append(line(text(loc, "confirm.when_renewal", date=fmt.day(decision.effective, loc))))
    else:
        body.append(line(text(loc, "confirm.when_date", date=fmt.day(decision.effective, loc))))
    body.append(facts([_cost_lines(money, view.quantity, new_quantity, loc)]))
    if decision.deletes_scheduled:
        body.append({"type": "TextBlock", "wrap": True, "color": "Warning", "weight": "Bolder", "text": text(loc, "confirm.deletes", list=planned_list(decision.deletes_scheduled, loc))})
    data = {"id": view.id, "v": view.version, "quantity": new_quantity, "timing": timing.value, "op": op}
    if on is not None:
        data["date"] = on.isoformat()
    return card(
        body,
        [
            execute(text(loc, "action.confirm"), "seats.confirm", data, style="positive"),
            execute(text(loc, "action.edit"), "seats.start", {"id": view.id}),
            execute(text(loc, "action.keep"), "flow.dismiss"),
        ],
    )


def refusal_card(title: str, sentence: str, *, actions: list[dict] | None = None) -> Card:
    body = [heading(title), {"type": "TextBlock", "text": sentence, "wrap": True}]
    return card(body, actions)


def auto_renew_confirm_card(view: SubscriptionView, *, enable: bool, decision: Decision, op: str, locale: str | None) -> Card:
    loc = locale
    if enable:
        sentence = text(loc, "confirm.auto_renew_on", name=plain(view.name), renewal=fmt.day(view.renewal_date, loc))
    else:
        sentence = text(loc, "confirm.auto_renew_off", name=plain(view.name), ends=fmt.day(view.commitment_end, loc))
    body = [heading(text(loc, "confirm.title")), line(sentence)]
    if decision.deletes_scheduled:
        body.append({"type": "TextBlock", "wrap": True, "color": "Warning", "weight": "Bolder", "text": text(loc, "confirm.auto_renew_deletes", list=planned_list(decision.deletes_scheduled, loc))})
    return card(
        body,
        [
            execute(text(loc, "action.confirm"), "renewal.confirm", {"id": view.id, "v": view.version, "enable": enable, "op": op}, style="positive"),
            execute(text(loc, "action.keep"), "flow.dismiss"),
        ],
    )


def cancel_form_card(view: SubscriptionView, *, decision: Decision, op: str, locale: str | None, error: str | None = None) -> Card:
    loc = locale
    body = [heading(text(loc, "cancel.title", name=plain(view.name)))]
    if error:
        body.append({"type": "TextBlock", "text": error, "wrap": True, "color": "Attention", "weight": "Bolder"})
    body.append(line(text(loc, "cancel.text", closes=fmt.moment(view.window.closes_at, loc), quantity=view.quantity, days=decision.facts.get("refund_days", 0))))
    if decision.deletes_scheduled:
        body.append(line(text(loc, "cancel.deletes", list=planned_list(decision.deletes_scheduled, loc)), subtle=True))
    body.append(
        {
            "type": "Input.ChoiceSet",
            "id": "reason",
            "label": text(loc, "cancel.reason"),
            "isRequired": True,
            "errorMessage": text(loc, "cancel.reason_error"),
            "style": "compact",
            "choices": [{"title": text(loc, "cancel.reason." + r), "value": r} for r in CANCEL_REASONS],
        }
    )
    body.append({"type": "Input.Text", "id": "note", "label": text(loc, "cancel.note"), "isMultiline": True, "maxLength": 500})
    return card(
        body,
        [
            execute(text(loc, "action.confirm_cancel"), "cancel.confirm", {"id": view.id, "v": view.version, "op": op}, style="destructive"),
            execute(text(loc, "action.keep"), "flow.dismiss"),
        ],
    )


def withdraw_confirm_card(name: str, what: str, *, subscription_id: int, version: int, change_id: int, op: str, locale: str | None) -> Card:
    loc = locale
    return card(
        [heading(text(loc, "confirm.title")), line(text(loc, "confirm.withdraw", name=plain(name), what=what))],
        [
            execute(text(loc, "action.withdraw_confirm"), "change.withdraw.confirm", {"id": subscription_id, "v": version, "change": change_id, "op": op}, style="destructive"),
            execute(text(loc, "action.keep"), "flow.dismiss"),
        ],
    )


def receipt_card(receipt, *, locale: str | None) -> Card:
    loc = locale
    body = [
        heading("✔ " + text(loc, "receipt.title") + ": " + plain(receipt.subscription_name)),
        line(plain(receipt.summary), weight="Bolder"),
        line(text(loc, "receipt.by", actor=plain(receipt.actor), at=fmt.moment(receipt.at, loc)), subtle=True, spacing="None"),
        line(text(loc, "receipt.reference", reference=receipt.reference), subtle=True, spacing="None"),
    ]
    if receipt.deleted_scheduled:
        body.append(line(text(loc, "receipt.deleted", list=planned_list(receipt.deleted_scheduled, loc)), subtle=True))
    return card(body, [execute(text(loc, "action.details"), "subscription.details", {"id": receipt.subscription_id})])


def stale_card(name: str, what: dict, *, subscription_id: int, locale: str | None) -> Card:
    loc = locale
    sentence = text(
        loc,
        "stale.text",
        name=plain(name),
        quantity=what["quantity"],
        auto_renew=text(loc, "on" if what["auto_renew"] else "off").lower(),
        status=text(loc, "status." + what["status"]).lower(),
    )
    return card(
        [heading(text(loc, "stale.title")), line(sentence)],
        [execute(text(loc, "action.details"), "subscription.details", {"id": subscription_id})],
    )


def dismissed_card(locale: str | None) -> Card:
    return card([line(text(locale, "dismissed"))], [execute(text(locale, "action.dashboard"), "overview")])


@dataclass(frozen=True)
class ScheduledLine:
    change_id: int
    subscription_id: int
    subscription_version: int
    name: str
    quantity: int | None
    effective: date
    timing: str
    reference: str | None
    created_by: str | None


def scheduled_list_card(company: str, lines: list[ScheduledLine], *, can_withdraw: bool, locale: str | None) -> Card:
    loc = locale
    body = [heading(text(loc, "scheduled.title", company=plain(company)))]
    if not lines:
        body.append(line(text(loc, "scheduled.none")))
    for item in lines:
        columns = [
            {
                "type": "Column",
                "width": "stretch",
                "items": [
                    line(text(loc, "scheduled.line", name=plain(item.name), quantity=item.quantity, date=fmt.day(item.effective, loc))),
                    line(
                        text(loc, "scheduled.line_meta", timing=text(loc, "scheduled.timing." + item.timing), reference=item.reference or "—", who=plain(item.created_by or "Seatdesk")),
                        subtle=True,
                        spacing="None",
                        size="Small",
                    ),
                ],
            }
        ]
        if can_withdraw:
            columns.append(
                {
                    "type": "Column",
                    "width": "auto",
                    "verticalContentAlignment": "Center",
                    "items": [{"type": "ActionSet", "actions": [execute(text(loc, "action.withdraw"), "change.withdraw.start", {"id": item.subscription_id, "change": item.change_id})]}],
                }
            )
        body.append({"type": "ColumnSet", "separator": True, "columns": columns})
    return card(body, [execute(text(loc, "action.change_log"), "changes.log"), execute(text(loc, "action.dashboard"), "overview")])


@dataclass(frozen=True)
class LogEntry:
    at: datetime
    actor: str
    summary: str
    source: str
    target: str
    reference: str | None


def change_log_card(company: str, entries: list[LogEntry], *, page: int, has_more: bool, locale: str | None) -> Card:
    loc = locale
    body = [heading(text(loc, "log.title", company=plain(company)))]
    if not entries:
        body.append(line(text(loc, "log.none")))
    for entry in entries:
        body.append(line(text(loc, "log.line", date=fmt.moment(entry.at, loc), actor=plain(entry.actor), target=plain(entry.target)), spacing="Small"))
        source = text(loc, "log.source." + entry.source) if entry.source in {"card", "text", "worker", "rule", "import"} else entry.source
        detail = plain(entry.summary) + " · " + source + (f" · {entry.reference}" if entry.reference else "")
        body.append(line(detail, subtle=True, spacing="None", size="Small"))
    actions = []
    if has_more:
        actions.append(execute(text(loc, "action.more"), "changes.log", {"page": page + 1}))
    actions.append(execute(text(loc, "action.scheduled"), "changes.list"))
    return card(body, actions)


def choose_subscription_card(matches: list[SubscriptionView], *, verb: str, extra: dict, locale: str | None) -> Card:
    loc = locale
    body = [heading(text(loc, "choose.title"))]
    actions = [
        execute(
            (f"{m.name} — {m.product_name}" if m.name != m.product_name else m.name) + f" ({m.quantity} · {fmt.term_and_billing(m.term, m.billing, loc)})",
            verb,
            {"id": m.id, **extra},
        )
        for m in matches[:6]
    ]
    body.append({"type": "ActionSet", "actions": actions})
    return card(body)


def detail_actions(view: SubscriptionView, *, can_change_seats: bool, can_auto_renew: bool, can_cancel: bool, locale: str | None) -> list[dict]:
    """The change buttons of a details card, for what this reader may do."""
    loc = locale
    if not view.is_active:
        return []
    actions = []
    if can_change_seats:
        actions.append(execute(text(loc, "action.change_seats"), "seats.start", {"id": view.id}))
    if can_auto_renew:
        key = "action.auto_renew_off" if view.auto_renew else "action.auto_renew_on"
        actions.append(execute(text(loc, key), "renewal.start", {"id": view.id, "enable": not view.auto_renew}))
    if can_cancel:
        actions.append(execute(text(loc, "action.cancel_subscription"), "cancel.start", {"id": view.id}, style="destructive"))
    return actions
