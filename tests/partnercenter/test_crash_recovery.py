"""After a crash, and with several instances: a due scheduled change that Partner Center already
has is recorded once (by the worker, not also by the sync as a foreign change), and a claimed
change or order is never taken a second time while its holder is still working on it.
tests/processes/ shows the same with real server processes killed at these moments."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import event, select, update

from services import audit, scheduler, subscription_changes
from services.changes import Timing
from services.models import AuditEntry, ChangeStatus, Customer, Order, OrderStatus, Role, ScheduledChange, Subscription, User
from services.ordering import LedgerOrders, drain_outbox
from services.partnercenter import PartnerCenterProvider, subscription_sync
from services.providers import LedgerProvider
from tests.partnercenter.conftest import FABRIKAM


async def _due_change(db, clock, provider_id: str, quantity: int) -> ScheduledChange:
    """A seat change scheduled through the service for tomorrow, whose day has then come."""
    async with db() as session:
        sub = (await session.execute(select(Subscription).where(Subscription.provider_id == provider_id))).scalar_one()
        admin = (await session.execute(select(User).where(User.customer_id == sub.customer_id, User.role == Role.ADMIN).order_by(User.id))).scalars().first()
    request = subscription_changes.ChangeRequest(
        subscription_changes.Kind.SEATS, sub.id, sub.version, subscription_changes.new_op(), quantity=quantity, timing=Timing.ON_DATE,
        on=clock.now().date() + timedelta(days=1),
    )
    actor = audit.Actor(admin.name, admin.id, sub.customer_id)
    receipt = await subscription_changes.confirm(db, LedgerProvider(), now=clock.now(), actor=actor, customer_id=sub.customer_id, request=request)
    async with db() as session, session.begin():
        await session.execute(update(ScheduledChange).where(ScheduledChange.reference == receipt.reference).values(effective_date=clock.now().date()))
        return (await session.execute(select(ScheduledChange).where(ScheduledChange.reference == receipt.reference))).scalar_one()


async def test_a_due_change_partner_center_already_has_is_the_workers_not_the_syncs(fake, pc, demo_db, clock):
    """The worker PATCHed, Partner Center applied it, the process died before committing. The sync
    (it runs at start-up too) leaves that subscription to the worker, which finds the change in
    Partner Center and records it once, as the person's scheduled change."""
    async with demo_db() as session:
        customer = (await session.execute(select(Customer).where(Customer.key == "fabrikam"))).scalar_one()
        for sub in (await session.execute(select(Subscription).where(Subscription.customer_id == customer.id))).scalars():
            fake.add_subscription(
                FABRIKAM, sub.provider_id, quantity=sub.quantity, autoRenewEnabled=sub.auto_renew, status=sub.status.value, isTrial=sub.is_trial,
                termDuration=sub.offer.term.value, billingCycle=sub.offer.billing.value, commitmentEndDate=f"{sub.commitment_end}T00:00:00Z",
                cancellationAllowedUntilDate=sub.cancellation_allowed_until.isoformat() if sub.cancellation_allowed_until else None,
            )
    change = await _due_change(demo_db, clock, "FAB-M365E3-01", 125)
    fake.change(FABRIKAM, "FAB-M365E3-01", quantity=125)  # applied in Partner Center; Seatdesk never heard back

    report = await subscription_sync(demo_db, pc, clock.now())
    assert report.deferred == 1 and report.updated == 0
    notices = await scheduler.run_due(demo_db, PartnerCenterProvider(pc), clock.now())
    assert [n.key for n in notices] == ["notice.scheduled_applied"] and notices[0].values["old"] == 120
    assert not [r for r in fake.requests if r.method == "PATCH"], "Partner Center already had it: nothing sent again"
    async with demo_db() as session:
        entries = list((await session.execute(select(AuditEntry).where(AuditEntry.target_id == str(change.subscription_id), AuditEntry.source.in_(["sync", "worker"])))).scalars())
        sub = await session.get(Subscription, change.subscription_id)
    assert [(e.action, e.before, e.after, e.reference) for e in entries] == [("seats", {"quantity": 120}, {"quantity": 125}, change.reference)]
    assert sub.quantity == 125
    again = await subscription_sync(demo_db, pc, clock.now())
    assert again.deferred == 0 and again.updated == 0


class _Statements:
    """Says when the engine is about to send a statement matching `fragment` (on the test's own loop)."""

    def __init__(self, engine, fragment: str) -> None:
        self.sent = asyncio.Event()

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _seen(conn, cursor, statement, parameters, context, executemany):
            if fragment in statement:
                self.sent.set()


async def _while_held(db, engine, claim_first, fragment: str, second) -> list:
    """`claim_first(session)` in a transaction that stays open, as an instance's does while it calls
    the provider; meanwhile `second()` runs as another instance would. Returns what `second` returned."""
    async with db() as holder:
        async with holder.begin():
            assert await claim_first(holder)
            seen = _Statements(engine, fragment)
            other = asyncio.create_task(second())
            if engine.dialect.name == "postgresql":
                # SKIP LOCKED: the other instance moves on at once instead of waiting for this one.
                return await asyncio.wait_for(other, timeout=10)
            # SQLite has no row locks: the other instance's claim waits for this writer (its busy
            # timeout), then finds the held item taken and the rest free.
            await asyncio.wait_for(seen.sent.wait(), timeout=10)
        return await asyncio.wait_for(other, timeout=10)


async def test_a_change_another_instance_is_applying_is_left_to_it_and_the_others_are_applied(demo_db, engine, clock):
    free = await _due_change(demo_db, clock, "NW-BP-001", 50)
    held = await _due_change(demo_db, clock, "NW-BS-001", 30)
    applied: list[int] = []

    class Recording(LedgerProvider):
        async def change_quantity(self, session, sub, quantity, **kwargs):
            applied.append(sub.id)
            await super().change_quantity(session, sub, quantity, **kwargs)

    notices = await _while_held(
        demo_db, engine, lambda s: scheduler._claim(s, held.id, ChangeStatus.APPLIED, clock.now()), "UPDATE scheduled_changes",
        lambda: scheduler.apply_dated_changes(demo_db, Recording(), clock.now()),
    )
    assert applied == [free.subscription_id], "the held change is not applied a second time; the free one is not skipped"
    assert [n.values["reference"] for n in notices] == [free.reference]
    async with demo_db() as session:
        assert (await session.get(ScheduledChange, held.id)).status == ChangeStatus.APPLIED
        assert (await session.get(ScheduledChange, free.id)).status == ChangeStatus.APPLIED


async def test_an_order_another_instance_is_submitting_is_not_submitted_again(demo_db, engine, clock):
    from services import ordering
    from tests.conftest import person

    admin = await person(demo_db, "northwind", Role.ADMIN)
    async with demo_db() as session, session.begin():
        user = await session.get(User, admin.user_id)
        offer_id = next(p for p in await ordering.catalog(session, user.customer_id) if not p.addon_of_id).offers[0].id
        await ordering.add_to_cart(session, customer_id=user.customer_id, user_id=user.id, offer_id=offer_id, quantity=1, separate=True, now=clock.now())
    async with demo_db() as session:
        cart = await ordering.cart(session, user.customer_id, user.id)
    placed = await ordering.checkout(
        demo_db, customer_id=user.customer_id, user=user, actor=audit.Actor(user.name, user.id, user.customer_id),
        request=ordering.CheckoutRequest(op="order-held-elsewhere", fingerprint=cart.fingerprint()), now=clock.now(),
    )
    assert placed.status == OrderStatus.APPROVED

    async def claim(session) -> bool:
        claimed = await session.execute(
            update(Order).where(Order.id == placed.order_id, Order.status == OrderStatus.APPROVED).values(status=OrderStatus.SUBMITTED)
        )
        return claimed.rowcount == 1

    class Refusing(LedgerOrders):
        async def submit(self, *args, **kwargs):
            raise AssertionError("the second instance must not submit a claimed order")

    done = await _while_held(demo_db, engine, claim, "UPDATE orders", lambda: drain_outbox(demo_db, Refusing(), clock.now()))
    assert done == []
