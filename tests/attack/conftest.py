"""Fixtures for the attack suite (issue 10): Northwind with real orders, a case, a scheduled change,
a confirmed operation and a cart line, all made through /api/messages by Northwind's own people;
a snapshot of Northwind's rows; and the checks every reply to an attacker must pass."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.app import RUNTIME
from services.models import Customer, Operation, Order, Product, Role, ScheduledChange, Subscription, SupportCase, User
from tests.conftest import Teams, buttons, card_input, card_inputs, person

CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"
ERROR = "application/vnd.microsoft.error"
CASE_TITLE = "Zebracorn printer spooler outage"  # unique: only Northwind's case has it
APOLOGY = "something went wrong on my side"  # error.apology: an unhandled exception in a turn

# Northwind rows that must not change when Fabrikam attacks (every table holding Northwind's data).
SNAPSHOT_TABLES = (
    "subscriptions", "orders", "support_cases", "scheduled_changes", "operations", "cart_items",
    "approval_requests", "audit_entries",
)






def _button(card: Any, verb: str) -> dict[str, Any]:
    found = [b for b in buttons(card) if b.get("verb") == verb]
    assert found, f"no {verb} button on {json.dumps(card)[:400]}"
    return found[0]


@dataclass
class Northwind:
    customer_id: int
    tenant_id: str
    sub_ids: list[int]
    versions: dict[int, int]
    change_ids: list[int]
    change_subs: dict[int, int]
    order_ids: list[int]
    order_numbers: list[str]
    case_numbers: list[str]
    user_ids: list[int]
    cart_item_ids: list[int]
    op_keys: list[str]
    checkout_op: str | None
    checkout_fp: str | None
    markers: list[str] = field(default_factory=list)
    echoable: list[str] = field(default_factory=list)  # may be echoed when the attacker sent them


async def _northwind_activity(bot_client, connector, db) -> dict[str, Any]:
    """Northwind's own people: a seat change (an operation), two orders (one awaiting approval),
    a support case and a cart line. Returns the op/fp of the checkout for reuse."""
    michael = Teams(bot_client, connector, await person(db, "northwind", Role.ADMIN))
    daniel = Teams(bot_client, connector, await person(db, "northwind", Role.MODIFY))
    await michael.say("hello")
    await daniel.say("hello")
    sub = (await _scalar(db, select(Subscription.id).where(Subscription.provider_id == "NW-BP-001")))
    _, body = await michael.click("seats.review", {"id": sub, "quantity": 50, "timing": "now"})
    confirm = _button(body["value"], "seats.confirm")
    _, body = await michael.click("seats.confirm", confirm["data"])
    assert body["type"] == CARD, body

    async def order(quantity: int, separate: bool) -> tuple[str, str]:
        product = await _scalar(db, select(Product.id).where(Product.key == "visio-p2"))
        _, body = await daniel.click("catalog.product", {"product": product})
        offers = body["value"]
        offer = card_input(offers, "offer")["choices"][0]["value"]
        data = {**_button(offers, "cart.add")["data"], "offer": offer, "quantity": str(quantity), "separate": separate}
        _, body = await daniel.click("cart.add", data)
        if any(b.get("data", {}).get("separate") is True for b in buttons(body["value"])):
            _, body = await daniel.click("cart.add", {**data, "separate": True})
        _, body = await daniel.click("checkout.start", {})
        check = _button(body["value"], "checkout.confirm")["data"]
        _, body = await daniel.click("checkout.confirm", check)
        assert body["type"] == CARD, body
        return check.get("op"), check.get("fp")

    op, fp = await order(2, False)
    await bot_client.server.app[RUNTIME].bot.idle()
    await order(120, True)  # over Northwind's auto-approval limit: awaits approval
    # One line left in the cart.
    product = await _scalar(db, select(Product.id).where(Product.key == "visio-p2"))
    _, body = await daniel.click("catalog.product", {"product": product})
    offer = card_input(body["value"], "offer")["choices"][0]["value"]
    await daniel.click("cart.add", {**_button(body["value"], "cart.add")["data"], "offer": offer, "quantity": "3", "separate": True})

    _, body = await daniel.click("case.open", {"summary": CASE_TITLE})
    form = body["value"]
    submit = _button(form, "case.submit")["data"]
    inputs: dict[str, Any] = {}
    for i in (i for i in card_inputs(form) if i.get("id")):
        if i["type"] == "Input.ChoiceSet":
            inputs[i["id"]] = i.get("value") or i["choices"][0]["value"]
        elif i["type"] == "Input.Toggle":
            inputs[i["id"]] = "true"
        elif i["type"] == "Input.Date":
            inputs[i["id"]] = "2026-12-01"
        elif i["type"] == "Input.Number":
            inputs[i["id"]] = "5"
        else:
            inputs[i["id"]] = i.get("value") or "Just me"
    inputs["title"] = CASE_TITLE
    _, body = await daniel.click("case.submit", {**submit, **inputs})
    connector.take()
    connector.updates.clear()
    return {"op": op, "fp": fp}


async def _scalar(db, statement):
    async with db() as session:
        return (await session.execute(statement)).scalar_one()


async def _scalars(db, statement):
    async with db() as session:
        return list((await session.execute(statement)).scalars().all())


@pytest.fixture
async def northwind(bot_client, connector, demo_db) -> Northwind:
    db = demo_db
    checkout = await _northwind_activity(bot_client, connector, db)
    customer = (await _scalars(db, select(Customer).where(Customer.key == "northwind")))[0]
    cid = customer.id
    subs = await _scalars(db, select(Subscription).where(Subscription.customer_id == cid))
    changes = await _scalars(db, select(ScheduledChange).where(ScheduledChange.customer_id == cid))
    orders = await _scalars(db, select(Order).where(Order.customer_id == cid))
    cases = await _scalars(db, select(SupportCase).where(SupportCase.customer_id == cid))
    users = await _scalars(db, select(User).where(User.customer_id == cid))
    ops = await _scalars(db, select(Operation).where(Operation.customer_id == cid))
    async with db() as session:
        items = [r[0] for r in (await session.execute(text("select id from cart_items where customer_id = :c"), {"c": cid})).all()]
    assert len(orders) >= 2 and cases and ops and items, (orders, cases, ops, items)
    nw = Northwind(
        customer_id=cid, tenant_id=customer.tenant_id, sub_ids=[s.id for s in subs], versions={s.id: s.version for s in subs},
        change_ids=[c.id for c in changes], change_subs={c.id: c.subscription_id for c in changes},
        order_ids=[o.id for o in orders], order_numbers=[o.number for o in orders], case_numbers=[c.number for c in cases],
        user_ids=[u.id for u in users], cart_item_ids=items, op_keys=[o.key for o in ops],
        checkout_op=checkout["op"], checkout_fp=checkout["fp"],
    )
    nw.markers = [
        customer.name, customer.domain, customer.tenant_id, "NW-", "SC-NW", CASE_TITLE, "E5 for the management team",
        *[u.name for u in users], *[o.reference for o in ops], *[c.reference for c in changes if c.reference],
        *[s.provider_id for s in subs],
    ]
    nw.echoable = [*nw.order_numbers, *nw.case_numbers]
    return nw


async def snapshot(db, customer_id: int) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    async with db() as session:
        for table in SNAPSHOT_TABLES:
            rows = (await session.execute(text(f"select * from {table} where customer_id = :c order by id"), {"c": customer_id})).all()
            out[table] = [tuple(r) for r in rows]
        rows = (
            await session.execute(
                text("select cc.* from case_comments cc join support_cases sc on sc.id = cc.case_id where sc.customer_id = :c order by cc.id"),
                {"c": customer_id},
            )
        ).all()
        out["case_comments"] = [tuple(r) for r in rows]
    return out


def problems(status: int, body: Any, sent: list[dict[str, Any]], nw: Northwind | None, forged: Any = None) -> list[str]:
    """What is wrong with one invoke's answer (an empty list: nothing)."""
    found: list[str] = []
    if status >= 500 or status != 200:
        found.append(f"HTTP {status}")
    if not isinstance(body, dict) or not {"statusCode", "type", "value"} <= set(body):
        found.append(f"malformed invoke body {str(body)[:200]}")
    else:
        if body["statusCode"] >= 500:
            found.append(f"invoke statusCode {body['statusCode']}: {str(body['value'])[:300]}")
        if body["type"] not in (CARD, MESSAGE, ERROR):
            found.append(f"invoke type {body['type']}")
        if body["type"] == CARD and not (isinstance(body["value"], dict) and body["value"].get("type") == "AdaptiveCard"):
            found.append("card body is not an AdaptiveCard")
        if body["type"] == MESSAGE and not isinstance(body["value"], str):
            found.append("message body is not a string")
    everything = json.dumps([body, sent], ensure_ascii=False)
    if "Traceback" in everything:
        found.append("a traceback in a reply")
    if APOLOGY in everything:
        found.append("an unhandled exception (error.apology) in a reply")
    if nw is not None:
        forged_text = json.dumps(forged, ensure_ascii=False) if forged is not None else ""
        for marker in nw.markers:
            # Not glued to a letter or digit before it: Seatdesk's random references ("ORD-4K7QNW-1")
            # may contain "NW-" by chance; Northwind's own ids never follow a letter or digit.
            if marker and re.search(r"(?<![A-Za-z0-9])" + re.escape(marker), everything):
                found.append(f"Northwind data {marker!r} in a reply")
        for marker in nw.echoable:
            if marker in everything and marker not in forged_text:
                found.append(f"Northwind number {marker!r} in a reply")
    return found
