"""The overview (dashboard), the grouped subscription list and one subscription's details."""
from __future__ import annotations

import cards.changes_text  # noqa: F401 - the change buttons' sentences
from cards import format as fmt
from cards.common import Card, card, execute, facts, heading, line, plain
from cards.text import text
from services.subscriptions import Overview, Page, SubscriptionGroup, SubscriptionView


def _stat(value: str, label: str) -> dict:
    return {
        "type": "Column",
        "width": "stretch",
        "items": [
            {"type": "TextBlock", "text": value, "size": "ExtraLarge", "weight": "Bolder", "color": "Accent", "horizontalAlignment": "Center"},
            {"type": "TextBlock", "text": label, "isSubtle": True, "wrap": True, "spacing": "None", "horizontalAlignment": "Center", "size": "Small"},
        ],
    }


def overview_card(company: str, data: Overview, *, as_of, show_cost: bool, locale: str | None = None) -> Card:
    loc = locale
    body = [heading(text(loc, "overview.title", company=plain(company))), line(text(loc, "overview.as_of", date=fmt.day(as_of, loc)), subtle=True, spacing="None")]
    if data.active_subscriptions == 0 and data.pending_changes == 0:
        body.append(line(text(loc, "overview.empty")))
        return card(body, [execute(text(loc, "action.help"), "help")])
    body.append(
        {
            "type": "ColumnSet",
            "columns": [
                _stat(str(data.active_subscriptions), text(loc, "overview.active")),
                _stat(f"{data.active_licenses:,}", text(loc, "overview.licenses")),
                _stat(str(data.active_trials), text(loc, "overview.trials")),
            ],
        }
    )
    pairs = [
        (text(loc, "overview.ending"), text(loc, "overview.ending_value", count=data.ending_soon, not_renewing=data.ending_soon_not_renewing)),
        (text(loc, "overview.pending"), str(data.pending_changes)),
    ]
    if show_cost:
        pairs.append((text(loc, "overview.monthly"), fmt.money(data.monthly_cost, data.currency, loc)))
    body.append(facts(pairs))
    if data.ending_soon_names:
        body.append(line(text(loc, "overview.ending_names", names=", ".join(plain(n) for n in data.ending_soon_names)), subtle=True))
    actions = [execute(text(loc, "action.subscriptions"), "subscriptions.list", {"page": 1})]
    if data.pending_changes:
        actions.append(execute(text(loc, "action.scheduled"), "changes.list"))
    return card(body, actions)


def _renewal_text(view: SubscriptionView, loc: str | None) -> str:
    seats = text(loc, "list.seats", quantity=f"{view.quantity:,}")
    key = "list.line" if view.auto_renew else "list.line_ends"
    when = view.renewal_date if view.auto_renew else view.commitment_end
    label = text(loc, key, seats=seats, term=fmt.term_and_billing(view.term, view.billing, loc), renewal=fmt.day(when, loc))
    flags = []
    if view.is_trial:
        flags.append(text(loc, "details.trial"))
    if not view.is_active:
        flags.append(text(loc, "status." + view.status.value))
    if flags:
        label += " · **" + ", ".join(flags) + "**"
    return label


def _row(view: SubscriptionView, loc: str | None, *, addon: bool) -> dict:
    name = plain(view.name)
    title = f"↳ {name}" if addon else name
    auto = text(loc, "details.auto_renew") + ": " + text(loc, "on" if view.auto_renew else "off")
    return {
        "type": "ColumnSet",
        "spacing": "Small" if addon else "Medium",
        "separator": not addon,
        "columns": [
            {
                "type": "Column",
                "width": "stretch",
                "items": [
                    line(title, weight="Bolder" if not addon else None),
                    line(_renewal_text(view, loc) + " · " + auto, subtle=True, spacing="None", size="Small"),
                ],
            },
            {
                "type": "Column",
                "width": "auto",
                "verticalContentAlignment": "Center",
                "items": [{"type": "ActionSet", "actions": [execute(text(loc, "action.details"), "subscription.details", {"id": view.id})]}],
            },
        ],
    }


def subscription_list_card(company: str, page: Page, *, locale: str | None = None) -> Card:
    loc = locale
    body = [heading(text(loc, "list.title", company=plain(company)))]
    if not page.groups:
        body.append(line(text(loc, "list.empty", company=plain(company))))
        return card(body)
    body.append(line(text(loc, "list.page", number=page.number, count=page.count, total=page.total_subscriptions), subtle=True, spacing="None"))
    group: SubscriptionGroup
    for group in page.groups:
        body.append(_row(group.base, loc, addon=False))
        body += [_row(addon, loc, addon=True) for addon in group.addons]
    actions = []
    if page.has_previous:
        actions.append(execute(text(loc, "action.previous"), "subscriptions.list", {"page": page.number - 1}))
    if page.has_next:
        actions.append(execute(text(loc, "action.next"), "subscriptions.list", {"page": page.number + 1}))
    actions.append(execute(text(loc, "action.dashboard"), "overview"))
    return card(body, actions)


def _window_text(view: SubscriptionView, loc: str | None) -> str:
    window = view.window
    if window.is_open:
        return text(loc, "details.window_open", closes=fmt.moment(window.closes_at, loc))
    if window.next_opens_at is not None:
        return text(loc, "details.window_closed", closed=fmt.moment(window.closes_at, loc), opens=fmt.day(window.next_opens_at, loc))
    return text(loc, "details.window_closed_final", closed=fmt.moment(window.closes_at, loc))


def subscription_details_card(view: SubscriptionView, *, show_prices: bool, locale: str | None = None, change_actions: list[dict] | None = None) -> Card:
    loc = locale
    yes_no = lambda flag: text(loc, "yes" if flag else "no")  # noqa: E731
    seats = f"{view.quantity:,}"
    if view.assigned_seats is not None:
        seats = text(loc, "details.seats_assigned", quantity=seats, assigned=f"{view.assigned_seats:,}")
    pairs = [
        (text(loc, "details.status"), text(loc, "status." + view.status.value)),
        (text(loc, "details.seats"), seats),
        (text(loc, "details.term"), fmt.term_and_billing(view.term, view.billing, loc)),
        (text(loc, "details.trial"), yes_no(view.is_trial)),
        (text(loc, "details.start"), fmt.day(view.start_date, loc)),
        (text(loc, "details.commitment_end"), fmt.day(view.commitment_end, loc)),
        (
            text(loc, "details.renewal" if view.auto_renew else "details.no_renewal"),
            fmt.day(view.renewal_date if view.auto_renew else view.commitment_end, loc),
        ),
        (text(loc, "details.auto_renew"), text(loc, "on" if view.auto_renew else "off")),
        (text(loc, "details.window"), _window_text(view, loc)),
    ]
    if show_prices:
        pairs.append((text(loc, "details.price"), text(loc, "details.price_value", price=fmt.money(view.unit_price_monthly, view.currency, loc))))
        pairs.append((text(loc, "details.monthly"), fmt.money(view.monthly_cost, view.currency, loc)))
    else:
        pairs.append((text(loc, "details.price"), text(loc, "details.price_hidden")))
    pairs.append((text(loc, "details.provider_id"), plain(view.provider_id)))
    body = [heading(plain(view.name))]
    if view.name != view.product_name:
        body.append(line(plain(view.product_name), subtle=True, spacing="None"))
    body.append(facts(pairs))
    body.append(line(text(loc, "details.scheduled"), weight="Bolder", spacing="Medium"))
    if view.scheduled:
        body += [
            line("- " + text(loc, "details.scheduled_quantity", quantity=c.new_quantity, date=fmt.day(c.effective_date, loc)), spacing="None")
            for c in view.scheduled
            if c.new_quantity is not None
        ]
    else:
        body.append(line(text(loc, "details.scheduled_none"), subtle=True, spacing="None"))
    body.append(line(text(loc, "details.log"), weight="Bolder", spacing="Medium"))
    if view.change_log:
        body += [
            line(text(loc, "details.log_line", date=fmt.day(e.at, loc), actor=plain(e.actor), summary=plain(e.summary)), subtle=True, spacing="None", size="Small")
            for e in view.change_log
        ]
    else:
        body.append(line(text(loc, "details.log_none"), subtle=True, spacing="None"))
    actions = list(change_actions or [])
    actions += [execute(text(loc, "action.subscriptions"), "subscriptions.list", {"page": 1}), execute(text(loc, "action.dashboard"), "overview")]
    return card(body, actions)
