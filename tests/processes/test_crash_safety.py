"""Killing the real server (SIGKILL) in the middle of a change, an order or a scheduled job, then
starting it again on the same database and the same Partner Center, loses nothing and duplicates
nothing.

The kill points are moments at the Partner Center stand-in, which holds the request that matters:
- `received`: Partner Center has the request but has not applied it (and never will: the caller died);
- `applied`: Partner Center applied it, the answer never reaches Seatdesk;
- `answered`: Seatdesk had the answer and recorded it; the kill comes right after.
After the restart Teams sends the same invoke again (a retry, or the person clicking again: the
same card data and operation id) and the worker runs its start-up pass. Then Partner Center must
show the change once in effect, and the database one receipt and one audit entry for it.

The server's start-up sync with Partner Center is held back until the recovery is done (`sync_paused`),
except in the `sync first` cases, where the sync sees Partner Center ahead of Seatdesk before the retry
comes: it leaves that subscription to the retry (a confirmed change is still in flight there; a
scheduled change is due), so the change is still recorded once, as the person's.
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from cards.text import text as sentence
from services import ordering
from services.clock import SystemClock
from services.models import (
    ApprovalRequest,
    AuditEntry,
    BillingCycle,
    ChangeStatus,
    Customer,
    Operation,
    Order,
    OutboxNotice,
    OrderStatus,
    Product,
    ScheduledChange,
    Subscription,
    Term,
)
from services.partnercenter import request_id_for
from tests.processes.harness import (
    WAIT,
    Seatdesk,
    Teams,
    answered_card,
    buttons,
    card_text,
    cards_in,
    pressed,
    wait_until,
)

FABRIKAM = "9fe978bc-dc60-420e-967f-0ed28608938b"
NORTHWIND = "57a06524-0fb7-4367-b463-bce8496f98be"
SUBSCRIPTION_LIST = r"^/v1/customers/[^/]+/subscriptions$"


@pytest.fixture(scope="module")
def server(stand_ins, demo, workdir):
    seatdesk = Seatdesk("seatdesk", workdir, stand_ins, demo.url).start()
    yield seatdesk
    stand_ins.gates.release_all()
    seatdesk.kill()


@pytest.fixture(scope="module")
def people(stand_ins, demo, server):
    """The people of these tests, each in their own chat; everyone says hello once, so Seatdesk
    knows where to reach them (approval cards, notices)."""
    chats = {
        "fabrikam admin": Teams(stand_ins, demo.person("fabrikam", "Stefan Hoffmann")),
        "fabrikam modify": Teams(stand_ins, demo.person("fabrikam", "Anna Müller")),
        "northwind admin": Teams(stand_ins, demo.person("northwind", "Michael Turner")),
    }
    for chat in chats.values():
        assert chat.say(server, "hello")
    return chats


# -- reading what happened ---------------------------------------------------------------------
def _subscription(demo, provider_id: str) -> Subscription:
    return demo.run(lambda s: _one(s, select(Subscription).where(Subscription.provider_id == provider_id)))


async def _one(session, query):
    return (await session.execute(query)).scalar_one()


async def _all(session, query):
    return list((await session.execute(query)).scalars())


def _audit_mark(demo) -> int:
    return demo.run(lambda s: _one(s, select(func.coalesce(func.max(AuditEntry.id), 0))))


def _audit_since(demo, mark: int, target_type: str, target_id: int) -> list[AuditEntry]:
    return demo.run(
        lambda s: _all(
            s,
            select(AuditEntry)
            .where(AuditEntry.id > mark, AuditEntry.target_type == target_type, AuditEntry.target_id == str(target_id))
            .order_by(AuditEntry.id),
        )
    )


def _remote(stand_ins, tenant: str, provider_id: str) -> dict:
    return stand_ins.microsoft.subscriptions[tenant][provider_id]


def _syncs_done(server: Seatdesk) -> int:
    return server.log().count("sync done:")


# -- killing and starting again ------------------------------------------------------------------
def _kill(stand_ins, server: Seatdesk) -> None:
    """SIGKILL; then whatever the stand-in still holds for the dead process is let go."""
    server.kill()
    stand_ins.gates.release_all()


def _kill_when_held(stand_ins, server: Seatdesk, hold, pending=None) -> None:
    """SIGKILL the server while `hold` keeps its request at Partner Center; the request is then let go."""
    hold.wait()
    _kill(stand_ins, server)
    if pending is not None:
        error = pending.exception(WAIT)
        assert error is not None, f"the killed server still answered: {pending.result()}"


def _restart(stand_ins, server: Seatdesk, *, sync_paused: bool = True):
    """Start the server again; with `sync_paused`, its start-up sync waits until `_resume` (the
    recovery under test comes first: the sync-first order has cases of its own)."""
    hold = stand_ins.gates.hold("GET", SUBSCRIPTION_LIST, "pause") if sync_paused else None
    syncs = _syncs_done(server)
    server.start()
    return hold, syncs


def _resume(stand_ins, server: Seatdesk, restarted) -> None:
    hold, syncs = restarted
    if hold is not None:
        stand_ins.gates.release(hold)
    wait_until(lambda: _syncs_done(server) > syncs, "the start-up sync has finished")


# -- a seat change confirmed now -----------------------------------------------------------------
SEATS_NOW = {"received": "FAB-O365E3-01", "applied": "FAB-COPILOT-01", "answered": "FAB-E5SEC-01", "applied, sync first": "FAB-TPHONE-01"}


@pytest.mark.parametrize("moment", list(SEATS_NOW))
def test_a_seat_change_confirmed_now_survives_a_kill(moment, stand_ins, demo, server, people):
    teams = people["fabrikam admin"]
    sub = _subscription(demo, SEATS_NOW[moment])
    wanted = sub.quantity + 3
    form = answered_card(teams.click(server, "seats.start", {"id": sub.id}))
    confirm = answered_card(teams.click(server, "seats.review", pressed(form, "seats.review", {"quantity": wanted})))
    data = pressed(confirm, "seats.confirm")
    click = teams.invoke("seats.confirm", data)
    applied_before, mark = stand_ins.microsoft.patches_applied, _audit_mark(demo)
    patch = rf"/subscriptions/{sub.provider_id}$"

    if moment == "answered":
        first = answered_card(teams.click(server, "seats.confirm", data, activity=click))
        assert f"{sub.quantity} → {wanted}" in card_text(first)
        _kill(stand_ins, server)
    else:
        hold = stand_ins.gates.hold("PATCH", patch, "before" if moment == "received" else "after")
        _kill_when_held(stand_ins, server, hold, teams.click_later(server, click))
    restarted = _restart(stand_ins, server, sync_paused=moment != "applied, sync first")
    if moment == "applied, sync first":
        wait_until(lambda: _syncs_done(server) > restarted[1], "the start-up sync has finished")
        # It saw Partner Center ahead of the mirror and left the subscription to the change in flight.
        assert _audit_since(demo, mark, "subscription", sub.id) == [] and _subscription(demo, sub.provider_id).quantity == sub.quantity

    # Teams sends the same invoke again.
    again = answered_card(teams.click(server, "seats.confirm", data, activity=click))
    _resume(stand_ins, server, restarted)

    assert _remote(stand_ins, FABRIKAM, sub.provider_id)["quantity"] == wanted
    assert stand_ins.microsoft.patches_applied - applied_before == 1, "Partner Center applied the change once"
    assert _subscription(demo, sub.provider_id).quantity == wanted
    entries = _audit_since(demo, mark, "subscription", sub.id)
    receipts = demo.run(lambda s: _all(s, select(Operation).where(Operation.key == data["op"])))
    assert f"{sub.quantity} → {wanted}" in card_text(again), card_text(again)
    assert len(receipts) == 1 and receipts[0].status == "done" and receipts[0].reference in card_text(again)
    # One entry for the change (and one per change scheduled for renewal that it replaced, as the rules say).
    assert [(e.action, e.outcome, e.reference) for e in entries if e.action != "scheduled_withdrawn"] == [("seats", "applied", receipts[0].reference)]
    assert Counter(e.action for e in entries)["scheduled_withdrawn"] <= 1
    # What Partner Center saw: one MS-RequestId for the change, whatever was retried.
    patches = stand_ins.requests("PATCH", patch)
    assert {p.headers["MS-RequestId"] for p in patches} == {request_id_for(data["op"])}
    # Sent again only when Partner Center never applied it: the retry reads the subscription first.
    assert len(patches) == (2 if moment == "received" else 1), [p.headers["MS-RequestId"] for p in patches]


# -- a scheduled change carried out by the worker ------------------------------------------------
SCHEDULED = {"received": "NW-BP-001", "applied": "NW-BS-001", "answered": "NW-E5-001", "applied, sync first": "NW-COPILOT-01"}
SENTINEL = "NW-DEF-001"


def _schedule(teams: Teams, server: Seatdesk, sub: Subscription, quantity: int) -> str:
    """Through the cards: the seat form with "on a date" (tomorrow), then the confirmation."""
    tomorrow = (SystemClock().now() + timedelta(days=1)).date().isoformat()
    form = answered_card(teams.click(server, "seats.start", {"id": sub.id}))
    review = pressed(form, "seats.review", {"quantity": quantity, "timing": "on_date", "date": tomorrow})
    confirm = answered_card(teams.click(server, "seats.review", review))
    receipt = answered_card(teams.click(server, "seats.confirm", pressed(confirm, "seats.confirm")))
    return next(line.split()[-1] for line in card_text(receipt).splitlines() if "CHG-" in line)


def _scheduled(demo, reference: str) -> ScheduledChange:
    return demo.run(lambda s: _one(s, select(ScheduledChange).where(ScheduledChange.reference == reference)))


def _make_due(demo, reference: str) -> None:
    """The day comes: the change's date is today (the worker applies what is due on or before today)."""
    today = SystemClock().now().date()
    demo.run(lambda s: s.execute(update(ScheduledChange).where(ScheduledChange.reference == reference).values(effective_date=today)))


def _notices(stand_ins, teams: Teams, reference: str) -> list[str]:
    """Messages about the change `reference` in the person's chat (only the worker's notice names it there)."""
    return [t for t in stand_ins.connector.texts(teams.conversation_id) if reference in t]


def _none_owed(demo, teams: Teams) -> bool:
    """The outbox owes the person nothing: every notice to them is marked sent (it is marked right after
    Teams took it; a kill between the two is the one moment a notice goes out twice)."""
    pending = demo.run(lambda s: _all(s, select(OutboxNotice).where(OutboxNotice.user_id == teams.who.user_id, OutboxNotice.status == "pending")))
    return not pending


@pytest.mark.parametrize("moment", list(SCHEDULED))
def test_a_scheduled_change_survives_a_kill_of_the_worker(moment, stand_ins, demo, server, people):
    teams = people["northwind admin"]
    sub = _subscription(demo, SCHEDULED[moment])
    wanted = sub.quantity + 2
    reference = _schedule(teams, server, sub, wanted)
    sentinel = _schedule(teams, server, _subscription(demo, SENTINEL), _subscription(demo, SENTINEL).quantity + 1) if moment == "answered" else None
    assert _scheduled(demo, reference).status == ChangeStatus.PENDING
    _kill(stand_ins, server)  # idle: the change is simply waiting for its day
    _make_due(demo, reference)
    applied_before, mark = stand_ins.microsoft.patches_applied, _audit_mark(demo)
    patch = rf"/subscriptions/{sub.provider_id}$"

    if moment == "answered":
        _restart(stand_ins, server)  # the worker's start-up pass applies it and tells the person
        wait_until(lambda: _notices(stand_ins, teams, reference), "the notice that the change was carried out")
        wait_until(lambda: _none_owed(demo, teams), "the notice is marked sent")
        _kill(stand_ins, server)
        _make_due(demo, sentinel)  # a second due change: its notice shows the next pass has run
        restarted = _restart(stand_ins, server)
        wait_until(lambda: _notices(stand_ins, teams, sentinel), "the next pass has run")
    else:
        hold = stand_ins.gates.hold("PATCH", patch, "before" if moment == "received" else "after")
        _restart(stand_ins, server)
        _kill_when_held(stand_ins, server, hold)
        if moment == "applied, sync first":
            # The worker's read of the subscription waits until the start-up sync is done.
            paused = stand_ins.gates.hold("GET", rf"^/v1/customers/{NORTHWIND}/subscriptions/{sub.provider_id}$", "pause")
            restarted = _restart(stand_ins, server, sync_paused=False)
            paused.wait()
            wait_until(lambda: _syncs_done(server) > restarted[1], "the start-up sync has finished")
            stand_ins.gates.release(paused)
        else:
            restarted = _restart(stand_ins, server)
        wait_until(lambda: _scheduled(demo, reference).status != ChangeStatus.PENDING, "the worker carried the change out")
    _resume(stand_ins, server, restarted)

    change = _scheduled(demo, reference)
    assert change.status == ChangeStatus.APPLIED
    assert _remote(stand_ins, NORTHWIND, sub.provider_id)["quantity"] == wanted
    # Applied once (and the sentinel's change once, where there is one).
    assert stand_ins.microsoft.patches_applied - applied_before == (2 if sentinel else 1), "Partner Center applied the change once"
    assert _subscription(demo, sub.provider_id).quantity == wanted
    entries = _audit_since(demo, mark, "subscription", sub.id)
    assert [(e.action, e.reference, e.before, e.after) for e in entries] == [("seats", reference, {"quantity": sub.quantity}, {"quantity": wanted})]
    # The notice goes out at the end of the worker's pass (the outbox), a moment after the change.
    wait_until(lambda: _notices(stand_ins, teams, reference) and _none_owed(demo, teams), "the notice is sent and marked sent")
    assert len(_notices(stand_ins, teams, reference)) == 1, stand_ins.connector.texts(teams.conversation_id)
    patches = stand_ins.requests("PATCH", patch)
    assert {p.headers["MS-RequestId"] for p in patches} == {request_id_for(reference)}


# -- an order: checkout, approval, the outbox submits it to Partner Center -----------------------
ORDER_KILLS = {
    "received": ("POST", r"/carts/[^/]+/checkout$", "before"),
    "applied": ("POST", r"/carts/[^/]+/checkout$", "after"),
    # Partner Center's answer was recorded (the order is submitted); the kill comes while Seatdesk asks
    # whether it has been provisioned.
    "answered": ("GET", r"/orders/[^/]+$", "before"),
}


async def _product_to_order(session, customer_key: str) -> tuple[int, int]:
    """A product of the customer's catalog it does not have yet, sold monthly for a month."""
    customer = (await session.execute(select(Customer).where(Customer.key == customer_key))).scalar_one()
    owned = await ordering.owned_products(session, customer.id)
    for product in await ordering.catalog(session, customer.id):
        row = await session.get(Product, product.id)
        if product.id in owned or product.addon_of_id or not row.provider_product_id:
            continue
        offer = next((o for o in product.offers if o.term == Term.P1M and o.billing == BillingCycle.MONTHLY), None)
        if offer is not None:
            return product.id, offer.id
    raise AssertionError(f"{customer_key}'s catalog has nothing left to order monthly")


def _order(demo, key: str) -> Order:
    return demo.run(lambda s: _one(s, select(Order).where(Order.idempotency_key == key)))


@pytest.mark.parametrize("moment", list(ORDER_KILLS))
def test_an_approved_order_survives_a_kill_while_it_is_submitted(moment, stand_ins, demo, server, people):
    requester, approver = people["fabrikam modify"], people["fabrikam admin"]
    product_id, offer_id = demo.run(lambda s: _product_to_order(s, "fabrikam"))
    offers = answered_card(requester.click(server, "catalog.product", {"product": product_id}))
    cart = answered_card(requester.click(server, "cart.add", pressed(offers, "cart.add", {"offer": offer_id, "quantity": 4})))
    checkout = answered_card(requester.click(server, "checkout.start", pressed(cart, "checkout.start")))
    placing = pressed(checkout, "checkout.confirm")
    placed = answered_card(requester.click(server, "checkout.confirm", placing))
    order = _order(demo, placing["op"])
    assert order.status == OrderStatus.AWAITING_APPROVAL and order.number in card_text(placed)
    approval = wait_until(
        lambda: next(
            (c for c in cards_in(stand_ins.connector.to(approver.conversation_id)) if any(b["data"].get("order") == order.id for b in buttons(c, "approval.decide"))),
            None,
        ),
        "the approval card reaches the approver",
    )
    approve = approver.invoke("approval.decide", pressed(approval, "approval.decide", where=lambda d: d.get("decision") == "approve"))
    orders_before, checkouts_before = set(stand_ins.microsoft.orders), set(stand_ins.microsoft.checkouts)

    hold = stand_ins.gates.hold(*ORDER_KILLS[moment])
    answer = approver.click_later(server, approve)
    status, body = answer.result(WAIT)
    assert status == 200 and "approve" not in str([b["data"] for b in buttons(body["value"])]), body
    _kill_when_held(stand_ins, server, hold)
    assert _order(demo, placing["op"]).status == (OrderStatus.SUBMITTED if moment == "answered" else OrderStatus.APPROVED)

    server.start()  # the worker's start-up pass submits (again) and polls what was submitted
    wait_until(lambda: _order(demo, placing["op"]).status == OrderStatus.COMPLETED, "the order is provisioned")
    told = {
        requester: sentence("en-US", "order.provisioned", number=order.number),
        approver: sentence("en-US", "order.provisioned_approver", number=order.number),
    }
    ready = lambda chat: [t for t in stand_ins.connector.texts(chat.conversation_id) if t == told[chat]]  # noqa: E731
    wait_until(lambda: ready(requester) and ready(approver), "the requester and the approver are told")
    # Teams sends the approval click again: already decided, nothing submitted again.
    again = answered_card(approver.click(server, "approval.decide", {}, activity=approve))
    assert not buttons(again, "approval.decide")

    new_orders = set(stand_ins.microsoft.orders) - orders_before
    assert len(new_orders) == 1, f"Partner Center created {len(new_orders)} orders"
    assert set(stand_ins.microsoft.checkouts) - checkouts_before == {request_id_for("checkout:" + placing["op"])}
    done = _order(demo, placing["op"])
    assert done.provider_order_id == next(iter(new_orders))
    entries = _audit_since(demo, 0, "order", order.id)
    assert Counter(e.action for e in entries) == {"order": 1, "approve": 1, "provisioned": 1}
    assert len(ready(requester)) == 1 and len(ready(approver)) == 1
    approvals = demo.run(lambda s: _all(s, select(ApprovalRequest).where(ApprovalRequest.order_id == order.id)))
    assert len(approvals) == 1 and approvals[0].decided_by_id == approver.who.user_id
