"""Two Seatdesk instances on one database, as behind a load balancer (docs/scaling.md): both run
their worker, each due scheduled change and each approved order in the outbox is carried out
exactly once, and a conversation whose turns land on either instance keeps its flow state."""
from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from cards.text import text as sentence
from services import audit, ordering, subscription_changes
from services.changes import Timing
from services.clock import SystemClock
from services.models import (
    AuditEntry,
    BillingCycle,
    BotState,
    ChangeStatus,
    Customer,
    Order,
    OrderStatus,
    Product,
    Role,
    ScheduledChange,
    Subscription,
    SubscriptionStatus,
    Term,
    User,
)
from services.partnercenter import request_id_for
from services.providers import LedgerProvider
from tests.processes.harness import WAIT, Seatdesk, sent_by, Teams, answered_card, buttons, card_text, cards_in, pressed, wait_until

ORDERS_PER_CUSTOMER = 3
CONFLICT = sentence("en-US", "error.conflict")  # what a person reads when their turn's state write was refused
PROVIDER_DELAY = 0.1  # seconds Partner Center takes per change and per checkout


@pytest.fixture(scope="module")
def servers(stand_ins, demo, workdir):
    pair = [Seatdesk(name, workdir, stand_ins, demo.url, client_id=f"{name}-app") for name in ("seatdesk-a", "seatdesk-b")]
    for server in pair:
        server.spawn()
    try:
        for server in pair:
            server.wait_ready()
        yield pair
    finally:
        stand_ins.gates.release_all()
        for server in pair:
            server.kill()


@pytest.fixture(scope="module")
def admins(stand_ins, demo, servers):
    """The admins of both customers, each having said hello (to a different instance each)."""
    chats = {key: Teams(stand_ins, demo.person(key, name)) for key, name in (("fabrikam", "Stefan Hoffmann"), ("northwind", "Michael Turner"))}
    for chat, server in zip(chats.values(), servers):
        assert chat.say(server, "hello")
    return chats


def _state(demo, conversation_id: str) -> BotState:
    return demo.run(lambda s: _scalar(s, select(BotState).where(BotState.key.endswith(f"/conversations/{conversation_id}"))))


async def _scalar(session, query):
    return (await session.execute(query)).scalar_one()


async def _scalars(session, query):
    return list((await session.execute(query)).scalars())


def _pending(state: BotState, user_id: int) -> dict | None:
    """The confirmation the router remembers for this person ("actually make it 9" corrects it)."""
    return ((state.data.get("flow") or {}).get("language") or {}).get(str(user_id), {}).get("pending")


def test_a_conversation_can_move_between_instances_turn_by_turn(stand_ins, demo, servers, admins):
    a, b = servers
    teams = admins["northwind"]
    sub = demo.run(lambda s: _scalar(s, select(Subscription).where(Subscription.provider_id == "NW-TEAMS-ESS")))
    asked = teams.say(a, "add seats to teams essentials")
    assert f"It has {sub.quantity} now" in asked[0]["text"]
    first = _state(demo, teams.conversation_id)
    card = cards_in(teams.say(b, str(sub.quantity + 2)))[0]  # the answer to a question instance A asked
    assert f"from **{sub.quantity}** to **{sub.quantity + 2}** seats" in card_text(card)
    second = _state(demo, teams.conversation_id)
    corrected = cards_in(teams.say(a, f"actually make it {sub.quantity + 3}"))[0]  # B's confirmation, corrected on A
    assert f"from **{sub.quantity}** to **{sub.quantity + 3}** seats" in card_text(corrected)
    third = _state(demo, teams.conversation_id)
    assert len({first.etag, second.etag, third.etag}) == 3, "every turn wrote the state with a new e-tag"
    receipt = answered_card(teams.click(b, "seats.confirm", pressed(corrected, "seats.confirm")))
    assert f"{sub.quantity} → {sub.quantity + 3}" in card_text(receipt)
    assert stand_ins.microsoft.subscriptions[teams.who.tenant_id]["NW-TEAMS-ESS"]["quantity"] == sub.quantity + 3


def test_two_turns_at_the_same_moment_on_two_instances_lose_no_state_silently(stand_ins, demo, servers, admins):
    """Both read the state, both write it: the second write carries a stale e-tag and is refused, and
    that person is told to try again. Whatever the interleaving, the state kept is that of a turn
    that was not refused."""
    a, b = servers
    teams = admins["fabrikam"]
    conflicts = 0
    for round_ in range(4):
        turns = [teams.activity("message", text=f"add {n} seats to visio") for n in (2 + 2 * round_, 3 + 2 * round_)]
        before = len(stand_ins.connector.to(teams.conversation_id))
        answers = [stand_ins.post(server.endpoint, turn) for turn, server in zip(turns, (a, b))]
        for answer in answers:
            assert answer.result(WAIT)[0] in (200, 201)
        sent = stand_ins.connector.to(teams.conversation_id)[before:]
        replies = [[s for s in sent if s.get("replyToId") == turn["id"]] for turn in turns]
        refused = [any(r.get("text") == CONFLICT for r in reply) for reply in replies]
        proposed = [[b["data"]["op"] for c in cards_in(reply) for b in buttons(c, "seats.confirm")] for reply in replies]
        assert all(len(ops) == 1 for ops in proposed), [s.get("text") for s in sent]
        assert sum(refused) <= 1
        pending = _pending(_state(demo, teams.conversation_id), teams.who.user_id)
        assert pending is not None and pending["op"] in [ops[0] for ops, no in zip(proposed, refused) if not no]
        conflicts += sum(refused)
    print(f"\n{conflicts} of 4 simultaneous pairs of turns ended with one turn's state write refused (stale e-tag)")


# -- the workers -------------------------------------------------------------------------------------
async def _prepare_work(db, today) -> tuple[list[str], list[str]]:
    """A due scheduled change for every active subscription (one each: a second one for the same
    subscription could be refused once the first is applied), and approved orders in the outbox."""
    tomorrow = today + timedelta(days=1)
    now = SystemClock().now()
    references, order_keys = [], []
    for key in ("fabrikam", "northwind"):
        async with db() as session:
            customer = (await session.execute(select(Customer).where(Customer.key == key))).scalar_one()
            admin = (await session.execute(select(User).where(User.customer_id == customer.id, User.role == Role.ADMIN).order_by(User.id))).scalars().first()
            subs = list(
                (await session.execute(select(Subscription).where(Subscription.customer_id == customer.id, Subscription.status == SubscriptionStatus.ACTIVE, Subscription.is_trial.is_(False)))).scalars()
            )
        actor = audit.Actor(name=admin.name, user_id=admin.id, customer_id=customer.id)
        for sub in subs:
            request = subscription_changes.ChangeRequest(
                subscription_changes.Kind.SEATS, sub.id, sub.version, subscription_changes.new_op(), quantity=sub.quantity + 1, timing=Timing.ON_DATE, on=tomorrow
            )
            receipt = await subscription_changes.confirm(db, LedgerProvider(), now=now, actor=actor, customer_id=customer.id, request=request)
            assert isinstance(receipt, subscription_changes.Receipt), receipt
            references.append(receipt.reference)
        async with db() as session:
            offers = [
                o for p in await ordering.catalog(session, customer.id) if not p.addon_of_id and (await session.get(Product, p.id)).provider_product_id
                for o in p.offers if o.term == Term.P1M and o.billing == BillingCycle.MONTHLY
            ]
        for index in range(ORDERS_PER_CUSTOMER):
            async with db() as session, session.begin():
                await ordering.add_to_cart(session, customer_id=customer.id, user_id=admin.id, offer_id=offers[index % len(offers)].id, quantity=index + 1, separate=True, now=now)
            async with db() as session:
                cart = await ordering.cart(session, customer.id, admin.id)
            op = subscription_changes.new_op()
            placed = await ordering.checkout(db, customer_id=customer.id, user=admin, actor=actor, request=ordering.CheckoutRequest(op=op, fingerprint=cart.fingerprint()), now=now)
            assert isinstance(placed, ordering.Placed) and placed.status == OrderStatus.APPROVED, placed
            order_keys.append(op)
    async with db() as session, session.begin():
        await session.execute(update(ScheduledChange).where(ScheduledChange.reference.in_(references)).values(effective_date=today))
    return references, order_keys


def test_both_workers_carry_out_each_due_change_and_each_order_exactly_once(stand_ins, demo, servers, admins):
    for server in servers:  # idle: their start-up passes are done; the next would come in a minute
        server.stop()
    today = SystemClock().now().date()
    references, order_keys = demo.call(_prepare_work, demo.db, today)
    before = {
        "quantities": {r: demo.run(lambda s, r=r: _scalar(s, select(Subscription.quantity).join(ScheduledChange, ScheduledChange.subscription_id == Subscription.id).where(ScheduledChange.reference == r))) for r in references},
        "orders": set(stand_ins.microsoft.orders),
        "checkouts": set(stand_ins.microsoft.checkouts),
        "patches": stand_ins.microsoft.patches_applied,
    }
    # Partner Center takes a moment per change and per checkout, as it does: the two passes overlap
    # (on PostgreSQL each instance skips what the other holds; SQLite's one writer takes turns).
    stand_ins.microsoft.fail("PATCH", r"/subscriptions/", status=200, delay=PROVIDER_DELAY, times=len(references))
    stand_ins.microsoft.fail("POST", r"/checkout$", status=200, delay=PROVIDER_DELAY, times=len(order_keys))
    # Both start at once: both start-up passes find every change and every order due.
    started = time.monotonic()
    for server in servers:
        server.spawn()
    for server in servers:
        server.wait_ready()

    def outstanding() -> tuple[int, int]:
        changes = demo.run(lambda s: _scalars(s, select(ScheduledChange.status).where(ScheduledChange.reference.in_(references))))
        orders = demo.run(lambda s: _scalars(s, select(Order.status).where(Order.idempotency_key.in_(order_keys))))
        return sum(c == ChangeStatus.PENDING for c in changes), sum(o != OrderStatus.COMPLETED for o in orders)

    wait_until(lambda: outstanding() == (0, 0), f"every change and order is done (outstanding: {outstanding()})")
    took = time.monotonic() - started

    changes = demo.run(lambda s: _scalars(s, select(ScheduledChange).where(ScheduledChange.reference.in_(references))))
    assert {c.status for c in changes} == {ChangeStatus.APPLIED}
    assert stand_ins.microsoft.patches_applied - before["patches"] == len(references)
    patch_ids = Counter(r.headers["MS-RequestId"] for r in stand_ins.requests("PATCH", r"/subscriptions/[^/]+$"))
    for change in changes:
        assert patch_ids[request_id_for(change.reference)] == 1, f"{change.reference} was sent {patch_ids[request_id_for(change.reference)]} times"
    entries = demo.run(lambda s: _scalars(s, select(AuditEntry).where(AuditEntry.reference.in_(references), AuditEntry.action == "seats", AuditEntry.source == "worker")))
    assert Counter(e.reference for e in entries) == Counter(references)
    for entry in entries:
        assert entry.after["quantity"] == before["quantities"][entry.reference] + 1 == entry.before["quantity"] + 1

    new_orders = set(stand_ins.microsoft.orders) - before["orders"]
    assert len(new_orders) == len(order_keys), f"Partner Center has {len(new_orders)} new orders for {len(order_keys)} approved"
    assert set(stand_ins.microsoft.checkouts) - before["checkouts"] == {request_id_for("checkout:" + k) for k in order_keys}
    orders = demo.run(lambda s: _scalars(s, select(Order).where(Order.idempotency_key.in_(order_keys))))
    assert {o.provider_order_id for o in orders} == new_orders
    provisioned = demo.run(lambda s: _scalars(s, select(AuditEntry.target_id).where(AuditEntry.action == "provisioned", AuditEntry.target_type == "order", AuditEntry.target_id.in_([str(o.id) for o in orders]))))
    assert Counter(provisioned) == Counter(str(o.id) for o in orders)

    # Everyone told once: one notice per change, one per order.
    def told() -> list[str]:
        return [t for chat in admins.values() for t in stand_ins.connector.texts(chat.conversation_id)]

    wait_until(lambda: all(any(r in t for t in told()) for r in references), "a notice for every change")
    ready = {o.number: sentence("en-US", "order.provisioned", number=o.number) for o in orders}
    wait_until(lambda: set(ready.values()) <= set(told()), "a notice for every order")
    for reference in references:
        assert sum(reference in t for t in told()) == 1, reference
    for order in orders:
        assert told().count(ready[order.number]) == 1, order.number

    patches = Counter(sent_by(r) for r in stand_ins.requests("PATCH", r"/subscriptions/[^/]+$") if r.headers["MS-RequestId"] in {request_id_for(c) for c in references})
    checkouts = Counter(sent_by(r) for r in stand_ins.requests("POST", r"/checkout$") if r.headers["MS-RequestId"] in {request_id_for("checkout:" + k) for k in order_keys})
    print(
        f"\n{len(references)} due changes and {len(order_keys)} orders done {took:.2f} s after both were started; "
        + "; ".join(f"{s.name}: {patches[s.client_id]} changes, {checkouts[s.client_id]} orders" for s in servers)
    )
