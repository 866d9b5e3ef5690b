"""Cards of the ordering flows: catalog, offers, cart, checkout, approval, orders."""
from __future__ import annotations

import cards.orders_text  # noqa: F401 - registers the sentences
from cards import format as fmt
from cards.common import Card, card, execute, facts, heading, line, plain
from cards.text import text
from services.ordering import Cart, OfferView, OrderView, ProductView


def _offer_label(offer: OfferView, loc: str | None) -> str:
    return text(
        loc, "offers.choice", term=text(loc, "term." + offer.term.value), billing=text(loc, "billing." + offer.billing.value),
        price=fmt.money(offer.unit_price_monthly, offer.currency, loc),
    )


def catalog_card(title: str, products: list[ProductView], *, owned: set[int], locale: str | None) -> Card:
    loc = locale
    body = [heading(title)]
    for product in products:
        cheapest = min(product.offers, key=lambda o: o.unit_price_monthly)
        sub = text(loc, "catalog.from", category=plain(product.category), price=fmt.money(cheapest.unit_price_monthly, cheapest.currency, loc))
        if product.addon_of_name:
            sub += " · " + text(loc, "catalog.addon", base=plain(product.addon_of_name))
        if product.id in owned:
            sub += " · " + text(loc, "catalog.owned")
        body.append(
            {
                "type": "ColumnSet",
                "separator": True,
                "columns": [
                    {"type": "Column", "width": "stretch", "items": [line(plain(product.name), weight="Bolder"), line(sub, subtle=True, spacing="None", size="Small")]},
                    {
                        "type": "Column",
                        "width": "auto",
                        "verticalContentAlignment": "Center",
                        "items": [{"type": "ActionSet", "actions": [execute(text(loc, "action.offers"), "catalog.product", {"product": product.id})]}],
                    },
                ],
            }
        )
    body.append({"type": "Input.Text", "id": "query", "label": text(loc, "catalog.search"), "placeholder": text(loc, "catalog.search_placeholder"), "maxLength": 100})
    return card(body, [execute(text(loc, "catalog.search"), "catalog.search"), execute(text(loc, "action.cart"), "cart.show")])


def offers_card(product: ProductView, *, locale: str | None, error: str | None = None) -> Card:
    loc = locale
    body = [heading(text(loc, "offers.title", name=plain(product.name)))]
    if product.description:
        body.append(line(plain(product.description), subtle=True, spacing="None"))
    if error:
        body.append({"type": "TextBlock", "text": error, "wrap": True, "color": "Attention", "weight": "Bolder"})
    header = {
        "type": "ColumnSet",
        "columns": [
            {"type": "Column", "width": 2, "items": [line(text(loc, "offers.term"), weight="Bolder", size="Small")]},
            {"type": "Column", "width": 2, "items": [line(text(loc, "offers.billing"), weight="Bolder", size="Small")]},
            {"type": "Column", "width": 2, "items": [line(text(loc, "offers.per_month"), weight="Bolder", size="Small")]},
            {"type": "Column", "width": 2, "items": [line(text(loc, "offers.per_term"), weight="Bolder", size="Small")]},
        ],
    }
    body.append(header)
    for offer in product.offers:
        body.append(
            {
                "type": "ColumnSet",
                "spacing": "Small",
                "columns": [
                    {"type": "Column", "width": 2, "items": [line(text(loc, "term." + offer.term.value), size="Small")]},
                    {"type": "Column", "width": 2, "items": [line(text(loc, "billing." + offer.billing.value), size="Small")]},
                    {"type": "Column", "width": 2, "items": [line(fmt.money(offer.unit_price_monthly, offer.currency, loc), size="Small")]},
                    {"type": "Column", "width": 2, "items": [line(fmt.money(offer.term_price, offer.currency, loc), size="Small")]},
                ],
            }
        )
    body.append(line(text(loc, "offers.cancellation"), subtle=True, size="Small"))
    body.append(
        {
            "type": "Input.ChoiceSet", "id": "offer", "label": text(loc, "offers.choose"), "style": "compact", "isRequired": True,
            "errorMessage": text(loc, "offers.choose"), "value": str(product.offers[0].id),
            "choices": [{"title": _offer_label(o, loc), "value": str(o.id)} for o in product.offers],
        }
    )
    body.append(
        {
            "type": "Input.Number", "id": "quantity", "label": text(loc, "offers.quantity"), "isRequired": True, "min": 1, "max": 10000,
            "value": 1, "errorMessage": text(loc, "offers.quantity_error"),
        }
    )
    return card(body, [execute(text(loc, "action.add_to_cart"), "cart.add", {"product": product.id}, style="positive"), execute(text(loc, "action.catalog"), "catalog.search")])


def duplicate_card(*, company: str, name: str, subscription_name: str, subscription_id: int, seats: int, offer_id: int, quantity: int, locale: str | None) -> Card:
    loc = locale
    body = [
        heading(text(loc, "duplicate.title", name=plain(name))),
        line(text(loc, "duplicate.text", company=plain(company), seats=seats, name=plain(name), subscription=plain(subscription_name))),
    ]
    return card(
        body,
        [
            execute(text(loc, "action.change_instead", name=subscription_name), "seats.start", {"id": subscription_id}, style="positive"),
            execute(text(loc, "action.order_separate"), "cart.add", {"offer": offer_id, "quantity": quantity, "separate": True}),
        ],
    )


def cart_card(current: Cart, *, locale: str | None, note: str | None = None) -> Card:
    loc = locale
    body = [heading(text(loc, "cart.title"))]
    if note:
        body.append(line(note, subtle=True, spacing="None"))
    if not current.lines:
        body.append(line(text(loc, "cart.empty")))
        return card(body, [execute(text(loc, "action.catalog"), "catalog.search")])
    for l in current.lines:
        meta = text(
            loc, "cart.line_meta", term=text(loc, "term." + l.offer.term.value), billing=text(loc, "billing." + l.offer.billing.value),
            monthly=fmt.money(l.monthly, l.offer.currency, loc),
        )
        body.append(
            {
                "type": "ColumnSet",
                "separator": True,
                "columns": [
                    {"type": "Column", "width": "stretch", "items": [line(plain(l.product_name), weight="Bolder"), line(meta, subtle=True, spacing="None", size="Small")]},
                    {
                        "type": "Column",
                        "width": "80px",
                        "items": [{"type": "Input.Number", "id": f"qty_{l.id}", "label": text(loc, "cart.quantity_label", name=l.product_name), "min": 1, "max": l.offer.max_quantity, "value": l.quantity}],
                    },
                    {"type": "Column", "width": "auto", "verticalContentAlignment": "Bottom", "items": [{"type": "ActionSet", "actions": [execute(text(loc, "action.remove"), "cart.remove", {"item": l.id})]}]},
                ],
            }
        )
    body.append(facts([(text(loc, "cart.total"), fmt.money(current.total_monthly, current.currency, loc))]))
    return card(
        body,
        [
            execute(text(loc, "action.checkout"), "checkout.start", style="positive"),
            execute(text(loc, "action.update_cart"), "cart.update"),
            execute(text(loc, "action.catalog"), "catalog.search"),
            execute(text(loc, "action.empty_cart"), "cart.clear"),
        ],
    )


def checkout_card(current: Cart, *, op: str, name: str, email: str, approval_roles: list[str], locale: str | None, note: str | None = None, error: str | None = None) -> Card:
    loc = locale
    body = [heading(text(loc, "checkout.title"))]
    if note:
        body.append({"type": "TextBlock", "text": note, "wrap": True, "color": "Warning", "weight": "Bolder"})
    if error:
        body.append({"type": "TextBlock", "text": error, "wrap": True, "color": "Attention", "weight": "Bolder"})
    pairs = [
        (
            text(loc, "cart.line", quantity=l.quantity, name=plain(l.product_name)),
            text(loc, "cart.line_meta", term=text(loc, "term." + l.offer.term.value), billing=text(loc, "billing." + l.offer.billing.value), monthly=fmt.money(l.monthly, l.offer.currency, loc)),
        )
        for l in current.lines
    ]
    pairs.append((text(loc, "cart.total"), fmt.money(current.total_monthly, current.currency, loc)))
    body.append(facts(pairs))
    if approval_roles:
        body.append(line(text(loc, "checkout.approval_note", roles=", ".join(approval_roles)), subtle=True))
    body.append({"type": "Input.Date", "id": "start_date", "label": text(loc, "checkout.start")})
    if current.needs_acceptance:
        body.append(line(text(loc, "checkout.terms"), weight="Bolder"))
        body.append({"type": "Input.Text", "id": "accept_name", "label": text(loc, "checkout.accept_name"), "isRequired": True, "value": name, "maxLength": 200, "errorMessage": text(loc, "checkout.accept_error")})
        body.append({"type": "Input.Text", "id": "accept_email", "label": text(loc, "checkout.accept_email"), "style": "Email", "isRequired": True, "value": email, "maxLength": 320, "errorMessage": text(loc, "checkout.accept_error")})
        body.append({"type": "Input.Toggle", "id": "accept", "title": text(loc, "checkout.accept"), "wrap": True, "label": text(loc, "checkout.accept_label"), "isRequired": True, "valueOn": "true", "valueOff": "false", "value": "false", "errorMessage": text(loc, "checkout.accept_error")})
    return card(
        body,
        [
            execute(text(loc, "action.place_order"), "checkout.confirm", {"op": op, "fp": current.fingerprint()}, style="positive"),
            execute(text(loc, "action.cart"), "cart.show"),
        ],
    )


def _state(order: OrderView, loc: str | None) -> str:
    if order.status.value == "rejected" and order.approver:
        return text(loc, "approval.rejected", by=plain(order.approver), at=fmt.moment(order.decided_at, loc), comment=plain(order.comment or ""))
    if order.status.value == "expired":
        return text(loc, "approval.expired", at=fmt.moment(order.decided_at or order.created_at, loc))
    if order.approver and order.decided_at:
        return text(loc, "approval.approved", by=plain(order.approver), at=fmt.moment(order.decided_at, loc))
    return text(loc, "order.status." + order.status.value)


def _lines(order: OrderView, loc: str | None, show_prices: bool) -> dict:
    pairs = []
    for l in order.lines:
        meta_key = "cart.line_meta" if show_prices else "cart.line_meta_no_price"
        pairs.append((text(loc, "cart.line", quantity=l.quantity, name=plain(l.product_name)), text(loc, meta_key, term=text(loc, "term." + l.term.value), billing=text(loc, "billing." + l.billing.value), monthly=fmt.money(l.monthly, order.currency, loc))))
    if show_prices:
        pairs.append((text(loc, "order.total"), fmt.money(order.total_monthly, order.currency, loc)))
    return facts(pairs)


def order_placed_card(order: OrderView, *, message: str, locale: str | None) -> Card:
    loc = locale
    body = [heading(text(loc, "order.placed_title", number=order.number)), line(message), _lines(order, loc, True)]
    body.append(facts([(text(loc, "order.status"), _state(order, loc))]))
    return card(body, [execute(text(loc, "action.my_orders"), "orders.list")])


def approval_card(order: OrderView, *, reason: str, decided: bool, locale: str | None) -> Card:
    loc = locale
    body = [heading(text(loc, "approval.title", number=order.number)), line(text(loc, "approval.text", requester=plain(order.requester))), _lines(order, loc, True)]
    if reason:
        body.append(line(reason, subtle=True))
    if decided:
        body.append(line(_state(order, loc), weight="Bolder"))
        return card(body)
    body.append({"type": "Input.Text", "id": "comment", "label": text(loc, "approval.comment"), "isMultiline": True, "maxLength": 1000})
    return card(
        body,
        [
            execute(text(loc, "action.approve"), "approval.decide", {"order": order.id, "decision": "approve"}, style="positive"),
            execute(text(loc, "action.reject"), "approval.decide", {"order": order.id, "decision": "reject"}, style="destructive"),
        ],
    )


def orders_card(title: str, orders: list[OrderView], *, page: int, has_more: bool, verb: str, locale: str | None) -> Card:
    loc = locale
    body = [heading(title)]
    if not orders:
        body.append(line(text(loc, "orders.none")))
    for o in orders:
        what = ", ".join(f"{l.quantity} × {plain(l.product_name)}" for l in o.lines)
        body.append(
            {
                "type": "ColumnSet",
                "separator": True,
                "columns": [
                    {
                        "type": "Column",
                        "width": "stretch",
                        "items": [
                            line(text(loc, "orders.line", number=o.number, date=fmt.day(o.created_at, loc), status=text(loc, "order.status." + o.status.value))),
                            line(text(loc, "orders.line_meta", requester=plain(o.requester), what=what), subtle=True, spacing="None", size="Small"),
                        ],
                    },
                    {"type": "Column", "width": "auto", "verticalContentAlignment": "Center", "items": [{"type": "ActionSet", "actions": [execute(text(loc, "action.order_details"), "order.details", {"order": o.id})]}]},
                ],
            }
        )
    actions = [execute(text(loc, "action.next"), verb, {"page": page + 1})] if has_more else []
    actions.append(execute(text(loc, "action.catalog"), "catalog.search"))
    return card(body, actions)


def order_details_card(order: OrderView, *, show_prices: bool, locale: str | None) -> Card:
    loc = locale
    pairs = [
        (text(loc, "order.status"), _state(order, loc)),
        (text(loc, "order.requester"), plain(order.requester)),
        (text(loc, "order.created"), fmt.moment(order.created_at, loc)),
    ]
    if order.effective_date:
        pairs.append((text(loc, "order.start"), fmt.day(order.effective_date, loc)))
    if order.acceptance_name:
        pairs.append((text(loc, "order.accepted_by"), plain(order.acceptance_name)))
    if order.failure_reason:
        pairs.append((text(loc, "order.failure"), plain(order.failure_reason)))
    body = [heading(text(loc, "order.placed_title", number=order.number)), facts(pairs), _lines(order, loc, show_prices)]
    return card(body, [execute(text(loc, "action.my_orders"), "orders.list")])

