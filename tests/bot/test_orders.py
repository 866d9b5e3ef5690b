"""Ordering through /api/messages: catalog search, offers, cart, duplicate check, checkout with
acceptance, every approval path, exactly-once orders and the outbox."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.app import RUNTIME
from bot.worker import run_once
from services.models import ApprovalStatus, Order, OrderStatus, Product, Role, Subscription
from tests.conftest import Teams, buttons, card_input, card_inputs, card_text, person


def _cards(activities):
    return [a["content"] for activity in activities for a in activity.get("attachments") or []]


def _button(card, verb, **data):
    return next(b for b in buttons(card) if b["verb"] == verb and all(b["data"].get(k) == v for k, v in data.items()))




async def _teams(bot_client, connector, db, customer="northwind", role=Role.MODIFY) -> Teams:
    teams = Teams(bot_client, connector, await person(db, customer, role))
    await teams.say("hello")  # so Seatdesk can reach this person proactively
    return teams


async def _product_id(db, key):
    async with db() as session:
        return (await session.execute(select(Product.id).where(Product.key == key))).scalar_one()


async def _offers(teams, product_id):
    status, body = await teams.click("catalog.product", {"product": product_id})
    assert status == 200
    return body["value"]


async def _add(teams, offers_card, offer_index=0, quantity=3, **extra):
    offer = card_input(offers_card, "offer")["choices"][offer_index]["value"]
    data = {**_button(offers_card, "cart.add")["data"], "offer": offer, "quantity": str(quantity), **extra}
    return await teams.click("cart.add", data)


async def _checkout(teams, **inputs):
    _, body = await teams.click("checkout.start", {})
    card = body["value"]
    data = {**_button(card, "checkout.confirm")["data"], **inputs}
    return card, data


async def test_search_forgives_typos_and_knows_aliases(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    for query, name in (("visoi", "Visio Plan 2"), ("BP", "Microsoft 365 Business Premium"), ("power bi", "Power BI Pro")):
        _, body = await teams.click("catalog.search", {"query": query})
        assert name in card_text(body["value"]), query
    cards = _cards(await teams.say("order teams phone"))
    assert "Teams Phone Standard" in card_text(cards[0])
    _, body = await teams.click("catalog.search", {"query": "dynamics crm"})
    assert "found nothing called" in body["value"]


async def test_offers_compare_term_and_billing_on_one_card(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    card = await _offers(teams, await _product_id(demo_db, "m365-bp"))
    text = card_text(card)
    for label in ("1 month", "1 year", "3 years", "billed monthly", "billed annually", "Per seat / month", "Per seat / term"):
        assert label in text, label
    assert len(card_input(card, "offer")["choices"]) >= 3


async def test_cart_add_update_remove_survives_restart(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    _, body = await _add(teams, await _offers(teams, await _product_id(demo_db, "visio-p2")), quantity=2)
    assert "Added 2 × Visio Plan 2" in card_text(body["value"])
    _, body = await _add(teams, await _offers(teams, await _product_id(demo_db, "pbi-pro")), quantity=4)
    cart = body["value"]
    line_ids = [i["id"] for i in card_inputs(cart) if i["id"].startswith("qty_")]
    assert len(line_ids) == 2
    _, body = await teams.click("cart.update", {line_ids[0]: "5", line_ids[1]: "4"})
    assert "5 × Visio Plan 2" in card_text(body["value"]) or card_input(body["value"], line_ids[0])["value"] == 5
    _, body = await teams.click("cart.update", {line_ids[0]: "0"})
    assert "Choose between" in card_text(body["value"])
    _, body = await teams.click("cart.remove", {"item": int(line_ids[1][4:])})
    assert "Power BI" not in card_text(body["value"])
    # A new conversation (another device, a restart) shows the same cart.
    again = Teams(bot_client, connector, teams.who)
    _, body = await again.click("cart.show", {})
    assert "Visio Plan 2" in card_text(body["value"])




async def test_duplicate_check_offers_the_seat_change_or_a_separate_subscription(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    offers = await _offers(teams, await _product_id(demo_db, "m365-bp"))
    _, body = await _add(teams, offers, quantity=5)
    text = card_text(body["value"])
    assert "already has 48 seats of Microsoft 365 Business Premium" in text
    assert _button(body["value"], "seats.start")
    separate = _button(body["value"], "cart.add", separate=True)
    _, body = await teams.click("cart.add", separate["data"])
    assert "Added 5 × Microsoft 365 Business Premium" in card_text(body["value"])


async def test_annual_terms_need_acceptance(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    await _add(teams, await _offers(teams, await _product_id(demo_db, "visio-p2")), offer_index=1, quantity=2)
    card, data = await _checkout(teams)
    assert card_input(card, "accept") and card_input(card, "accept_name")["value"] == teams.who.name
    _, body = await teams.click("checkout.confirm", {**data, "accept": "false"})
    assert "need your acceptance" in card_text(body["value"])
    async with demo_db() as session:
        assert (await session.execute(select(func.count(Order.id)))).scalar_one() == 0


async def test_auto_approved_order_is_provisioned_and_appears_in_the_overview(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)  # Northwind: modify orders under 1000/month need no approval
    await _add(teams, await _offers(teams, await _product_id(demo_db, "visio-p2")), offer_index=0, quantity=2)
    _, data = await _checkout(teams)
    _, body = await teams.click("checkout.confirm", data)
    assert "Ordered. It is usually ready within 5 minutes" in card_text(body["value"])
    await bot_client.server.app[RUNTIME].bot.idle()
    notices = [a.get("text") or "" for a in connector.take()]
    assert any("is ready" in n for n in notices)
    async with demo_db() as session:
        order = (await session.execute(select(Order))).scalar_one()
        assert order.status == OrderStatus.COMPLETED
        sub = (await session.execute(select(Subscription).where(Subscription.provider_id.like(f"{order.number}-%")))).scalar_one()
    assert sub.quantity == 2
    _, body = await teams.click("orders.list", {})
    assert order.number in card_text(body["value"]) and "Completed" in card_text(body["value"])


async def _people_and_cart(bot_client, connector, demo_db):
    """Anna (Fabrikam, modify) with a cart to check out, and the approvers her orders need: Katrin
    (finance) and Stefan (admin)."""
    katrin = await _teams(bot_client, connector, demo_db, "fabrikam", Role.FINANCE)
    stefan = await _teams(bot_client, connector, demo_db, "fabrikam", Role.ADMIN)
    anna = await _teams(bot_client, connector, demo_db, "fabrikam", Role.MODIFY)
    await _add(anna, await _offers(anna, await _product_id(demo_db, "pbi-pro")), offer_index=0, quantity=3, separate=True)
    connector.take()
    return anna, katrin, stefan


async def _order_needing_approval(bot_client, connector, demo_db):
    """Anna orders: her orders need approval by finance or admin."""
    anna, katrin, stefan = await _people_and_cart(bot_client, connector, demo_db)
    _, data = await _checkout(anna)
    _, body = await anna.click("checkout.confirm", data)
    text = card_text(body["value"])
    assert "waiting for approval" in text and "Katrin Vogel" in text and "Stefan Hoffmann" in text
    await bot_client.server.app[RUNTIME].bot.idle()  # approval cards go out after the turn's answer
    sent = connector.take()
    approval_cards = [a for a in sent if a.get("attachments")]
    assert {a["conversation"]["id"] for a in approval_cards} == {katrin.conversation_id, stefan.conversation_id}
    card = approval_cards[0]["attachments"][0]["content"]
    assert "Approval needed" in card_text(card) and "Anna" in card_text(card)
    return anna, katrin, stefan, card, data


async def test_approved_by_one_approver_everyone_sees_it(bot_client, connector, demo_db):
    anna, katrin, stefan, card, _ = await _order_needing_approval(bot_client, connector, demo_db)
    approve = _button(card, "approval.decide", decision="approve")
    status, body = await stefan.click("approval.decide", approve["data"])
    assert "Approved by Stefan Hoffmann" in card_text(body["value"])
    await bot_client.server.app[RUNTIME].bot.idle()
    assert any("Approved by Stefan Hoffmann" in card_text(u["attachments"][0]["content"]) for u in connector.updates)
    notices = " ".join(a.get("text") or "" for a in connector.take())
    assert "was approved by Stefan Hoffmann" in notices and "is ready" in notices
    # The other approver's click comes too late: it shows the decision, changes nothing.
    _, body = await katrin.click("approval.decide", approve["data"])
    assert "Approved by Stefan Hoffmann" in card_text(body["value"])
    async with demo_db() as session:
        assert (await session.execute(select(Order))).scalar_one().status == OrderStatus.COMPLETED


async def test_two_approvers_at_once_one_wins(bot_client, connector, demo_db):
    anna, katrin, stefan, card, _ = await _order_needing_approval(bot_client, connector, demo_db)
    approve = _button(card, "approval.decide", decision="approve")["data"]
    reject = {**_button(card, "approval.decide", decision="reject")["data"], "comment": "Not this quarter"}
    results = await asyncio.gather(stefan.click("approval.decide", approve), katrin.click("approval.decide", reject))
    await bot_client.server.app[RUNTIME].bot.idle()
    texts = [card_text(b["value"]) for _, b in results]
    assert texts[0] == texts[1] or all(("Approved by" in t) != ("Rejected by" in t) for t in texts)
    async with demo_db() as session:
        order = (await session.execute(select(Order))).scalar_one()
    assert order.status in (OrderStatus.APPROVED, OrderStatus.SUBMITTED, OrderStatus.COMPLETED, OrderStatus.REJECTED)
    decided_text = texts[0]
    assert all(("Approved by" in t) == ("Approved by" in decided_text) for t in texts)


async def test_reject_needs_a_comment_and_tells_the_requester(bot_client, connector, demo_db):
    anna, katrin, stefan, card, _ = await _order_needing_approval(bot_client, connector, demo_db)
    reject = _button(card, "approval.decide", decision="reject")["data"]
    _, body = await katrin.click("approval.decide", reject)
    assert "write a comment" in body["value"]
    _, body = await katrin.click("approval.decide", {**reject, "comment": "Use the existing <b>Power BI</b> seats"})
    assert "Rejected by Katrin Vogel" in card_text(body["value"])
    await katrin.client.server.app[RUNTIME].bot.idle()
    notices = " ".join(a.get("text") or "" for a in connector.take())
    assert "was rejected by Katrin Vogel" in notices


async def test_requester_cannot_approve_own_order_and_view_role_cannot_approve(bot_client, connector, demo_db):
    katrin = await _teams(bot_client, connector, demo_db, "fabrikam", Role.FINANCE)
    await _teams(bot_client, connector, demo_db, "fabrikam", Role.ADMIN)
    await _add(katrin, await _offers(katrin, await _product_id(demo_db, "m365-e5")), offer_index=0, quantity=20)  # above 500/month
    _, data = await _checkout(katrin)
    await katrin.click("checkout.confirm", data)
    await bot_client.server.app[RUNTIME].bot.idle()
    async with demo_db() as session:
        order = (await session.execute(select(Order))).scalar_one()
    assert order.status == OrderStatus.AWAITING_APPROVAL
    _, body = await katrin.click("approval.decide", {"order": order.id, "decision": "approve"})
    assert "can't approve your own order" in body["value"]
    viewer = await _teams(bot_client, connector, demo_db, "fabrikam", Role.VIEW)
    _, body = await viewer.click("approval.decide", {"order": order.id, "decision": "approve"})
    assert "can't" in body["value"]
    northwind_admin = await _teams(bot_client, connector, demo_db, "northwind", Role.ADMIN)
    _, body = await northwind_admin.click("approval.decide", {"order": order.id, "decision": "approve"})
    assert "can't find that order" in body["value"] and "Fabrikam" not in body["value"]


async def test_unanswered_approvals_remind_then_expire(bot_client, connector, demo_db, clock):
    anna, katrin, stefan, card, _ = await _order_needing_approval(bot_client, connector, demo_db)
    runtime = bot_client.server.app[RUNTIME]
    clock.advance(timedelta(hours=25))
    await run_once(runtime.bot._db, runtime.bot.provider, clock, runtime.bot.notifier)
    assert sum("still waiting for your approval" in (a.get("text") or "") for a in connector.take()) == 2
    clock.advance(timedelta(hours=48))
    await run_once(runtime.bot._db, runtime.bot.provider, clock, runtime.bot.notifier)
    notices = [a.get("text") or "" for a in connector.take()]
    assert any("expired" in n for n in notices)
    async with demo_db() as session:
        assert (await session.execute(select(Order))).scalar_one().status == OrderStatus.EXPIRED


async def test_double_checkout_places_one_order(bot_client, connector, demo_db):
    teams = await _teams(bot_client, connector, demo_db)
    await _add(teams, await _offers(teams, await _product_id(demo_db, "visio-p2")), offer_index=0, quantity=1)
    _, data = await _checkout(teams)
    results = await asyncio.gather(*(teams.click("checkout.confirm", data) for _ in range(3)))
    numbers = {card_text(b["value"]).split("Order ")[1].split()[0] for _, b in results if b["type"].endswith("adaptive")}
    assert len(numbers) == 1
    await bot_client.server.app[RUNTIME].bot.idle()
    async with demo_db() as session:
        assert (await session.execute(select(func.count(Order.id)))).scalar_one() == 1


async def test_a_changed_price_shows_the_new_total_and_orders_nothing(bot_client, connector, demo_db):
    from services.models import Offer

    teams = await _teams(bot_client, connector, demo_db)
    await _add(teams, await _offers(teams, await _product_id(demo_db, "visio-p2")), offer_index=0, quantity=1)
    _, data = await _checkout(teams)
    async with demo_db() as session, session.begin():
        for offer in (await session.execute(select(Offer).where(Offer.product_id == await _product_id(demo_db, "visio-p2")))).scalars():
            offer.unit_price_monthly = offer.unit_price_monthly + 1
    _, body = await teams.click("checkout.confirm", {**data, "fp": data["fp"]})
    assert "prices changed" in card_text(body["value"])
    async with demo_db() as session:
        assert (await session.execute(select(func.count(Order.id)))).scalar_one() == 0


async def test_crash_between_approved_and_submitted_resumes_once(bot_client, connector, demo_db, clock):
    from services.ordering import drain_outbox, LedgerOrders

    anna, katrin, stefan, card, _ = await _order_needing_approval(bot_client, connector, demo_db)
    async with demo_db() as session, session.begin():
        order = (await session.execute(select(Order))).scalar_one()
        order.status = OrderStatus.APPROVED  # approved, then the process died before submitting
    done = await asyncio.gather(*(drain_outbox(demo_db, LedgerOrders(), clock.now()) for _ in range(3)))
    assert sum(len(d) for d in done) == 1
    async with demo_db() as session:
        subs = (await session.execute(select(func.count(Subscription.id)).where(Subscription.provider_id.like(f"{order.number}-%")))).scalar_one()
    assert subs == 1


async def test_a_failed_provisioning_is_reported_and_creates_nothing(bot_client, connector, demo_db, clock):
    from services.ordering import LedgerOrders
    from services.providers import ProviderError

    class Refusing(LedgerOrders):
        async def submit(self, session, order, *, now):
            await super().submit(session, order, now=now)  # written, then rolled back with the refusal
            raise ProviderError("the product is not available in your country.", "10002")

    bot_client.server.app[RUNTIME].bot.order_submitter = Refusing()
    teams = await _teams(bot_client, connector, demo_db)
    await _add(teams, await _offers(teams, await _product_id(demo_db, "visio-p2")), offer_index=0, quantity=1)
    _, data = await _checkout(teams)
    await teams.click("checkout.confirm", data)
    await bot_client.server.app[RUNTIME].bot.idle()
    notices = " ".join(a.get("text") or "" for a in connector.take())
    assert "could not be provisioned: the product is not available in your country." in notices
    async with demo_db() as session:
        order = (await session.execute(select(Order))).scalar_one()
        created = (await session.execute(select(func.count(Subscription.id)).where(Subscription.provider_id.like(f"{order.number}-%")))).scalar_one()
    assert order.status == OrderStatus.FAILED and created == 0


async def test_a_provider_that_provisions_later_is_polled_until_done(bot_client, connector, demo_db, clock):
    """Partner Center accepts an order at checkout and provisions it minutes later."""
    from dialogs.orders import provision
    from services.order_backend import OrderState, OrderStatusResult, SubmitResult
    from services.ordering import BackendOrders

    class SlowProvider:
        def __init__(self):
            self.submitted, self.polls = [], 0

        async def submit(self, lines, customer, idempotency_key):
            self.submitted.append(idempotency_key)
            return SubmitResult("pc-order-1")

        async def status(self, provider_order_id, customer):
            self.polls += 1
            return OrderStatusResult(OrderState.COMPLETED if self.polls >= 2 else OrderState.PENDING, ("pc-sub-1",))

    backend = SlowProvider()
    runtime = bot_client.server.app[RUNTIME]
    runtime.bot.order_submitter = BackendOrders(backend)
    teams = await _teams(bot_client, connector, demo_db)
    await _add(teams, await _offers(teams, await _product_id(demo_db, "visio-p2")), offer_index=0, quantity=1)
    _, data = await _checkout(teams)
    await teams.click("checkout.confirm", data)
    await runtime.bot.idle()
    async with demo_db() as session:
        order = (await session.execute(select(Order))).scalar_one()
    assert order.status == OrderStatus.SUBMITTED and order.provider_order_id == "pc-order-1"
    assert backend.submitted == [order.idempotency_key]
    connector.take()
    await provision(demo_db, runtime.bot.order_submitter, runtime.bot.notifier, clock.now())
    async with demo_db() as session:
        assert (await session.execute(select(Order))).scalar_one().status == OrderStatus.COMPLETED
    assert any("is ready" in (a.get("text") or "") for a in connector.take())
    assert backend.submitted == [order.idempotency_key]  # never submitted twice
