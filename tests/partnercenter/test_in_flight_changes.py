"""A change confirmed now (seats, auto-renew, cancel) is recorded as pending before Partner Center is
asked. A process that dies between Partner Center's answer and the commit leaves it pending: the
Partner Center sync leaves that subscription alone, and the card clicked again, or the worker after
the grace period, asks Partner Center first and records the person's receipt once, never PATCHing
twice. The crash is a provider that stops the confirmation right before or right after Partner
Center applied the PATCH (as SIGKILL does in tests/processes/test_crash_safety.py)."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.worker import run_once
from services import audit, operations, subscription_changes
from services.changes import Timing
from services.models import AuditEntry, Customer, Operation, Role, Subscription, SubscriptionStatus, User
from services.partnercenter import PartnerCenterProvider, request_id_for, subscription_sync
from services.subscription_changes import ChangeRequest, Finished, InProgress, Kind, ProviderFailed, Receipt, confirm, new_op
from tests.partnercenter.conftest import FABRIKAM


class ProcessKilled(Exception):
    """Stands for SIGKILL: nothing after this point of the confirmation runs."""


class Killed(PartnerCenterProvider):
    """Partner Center as usual, but the process "dies" before the PATCH is sent, or after Partner
    Center applied it and before its answer is recorded."""

    def __init__(self, pc, moment: str) -> None:
        super().__init__(pc)
        self.moment = moment

    async def _patch(self, session, sub, **kwargs):
        if self.moment == "before":
            raise ProcessKilled()
        await super()._patch(session, sub, **kwargs)
        raise ProcessKilled()


class Notices:
    """A Notifier that keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, list]] = []

    async def send(self, user_id, replies):
        self.sent.append((user_id, replies))
        return ["sent"]

    async def update(self, user_id, activity_id, reply):
        return False

    async def reachable(self, user_ids):
        return set(user_ids)


@pytest.fixture
async def fabrikam(fake, demo_db):
    """Fabrikam's subscriptions in Partner Center as in Seatdesk (a sync finds nothing to change)."""
    async with demo_db() as session:
        customer = (await session.execute(select(Customer).where(Customer.key == "fabrikam"))).scalar_one()
        admin = (await session.execute(select(User).where(User.customer_id == customer.id, User.role == Role.ADMIN).order_by(User.id))).scalars().first()
        for sub in (await session.execute(select(Subscription).where(Subscription.customer_id == customer.id))).scalars():
            fake.add_subscription(
                FABRIKAM, sub.provider_id, quantity=sub.quantity, autoRenewEnabled=sub.auto_renew, status=sub.status.value, isTrial=sub.is_trial,
                termDuration=sub.offer.term.value, billingCycle=sub.offer.billing.value, commitmentEndDate=f"{sub.commitment_end}T00:00:00Z",
                cancellationAllowedUntilDate=sub.cancellation_allowed_until.isoformat() if sub.cancellation_allowed_until else None,
            )
    return audit.Actor(admin.name, admin.id, customer.id)


async def _local(db, provider_id: str) -> Subscription:
    async with db() as session:
        return (await session.execute(select(Subscription).where(Subscription.provider_id == provider_id))).scalar_one()


async def _operation(db, op: str) -> Operation | None:
    async with db() as session:
        return (await session.execute(select(Operation).where(Operation.key == op))).scalar_one_or_none()


async def _entries(db, sub: Subscription) -> list[AuditEntry]:
    async with db() as session:
        query = select(AuditEntry).where(AuditEntry.target_type == "subscription", AuditEntry.target_id == str(sub.id)).order_by(AuditEntry.id)
        return list((await session.execute(query)).scalars())


def _patches(fake, sub: Subscription) -> list:
    return [r for r in fake.requests if r.method == "PATCH" and r.path.endswith(f"/subscriptions/{sub.provider_id}")]


async def _killed_while_confirming(db, pc, clock, actor, request: ChangeRequest, moment: str) -> Operation:
    with pytest.raises(ProcessKilled):
        await confirm(db, Killed(pc, moment), now=clock.now(), actor=actor, customer_id=actor.customer_id, request=request)
    found = await _operation(db, request.op)
    assert found is not None and found.status == operations.PENDING, "what was asked is on record before Partner Center is"
    return found


CHANGES = {
    "seats": ("FAB-M365E3-01", lambda sub: dict(kind=Kind.SEATS, quantity=125, timing=Timing.NOW), "quantity", 125, "Seats 120 → 125, effective now"),
    "auto-renew": ("FAB-M365E3-01", lambda sub: dict(kind=Kind.AUTO_RENEW, enable=False), "autoRenewEnabled", False, "Auto-renew switched off"),
    "cancel": ("FAB-COPILOT-01", lambda sub: dict(kind=Kind.CANCEL, reason="bought_by_mistake"), "status", "deleted", "Cancelled (bought by mistake)"),
}


@pytest.mark.parametrize("what", list(CHANGES))
async def test_applied_then_killed_the_sync_leaves_it_and_the_retry_gets_the_receipt(what, fake, pc, demo_db, clock, fabrikam):
    """The "applied, sync first" order: Partner Center has the change, Seatdesk never heard back, the
    start-up sync runs before the person clicks again. The sync records nothing for that subscription;
    the retried click records the change once, as the person's, with their receipt."""
    provider_id, fields, remote_field, wanted, summary = CHANGES[what]
    sub = await _local(demo_db, provider_id)
    fields = fields(sub)
    request = ChangeRequest(fields.pop("kind"), sub.id, sub.version, new_op(), **fields)
    pending = await _killed_while_confirming(demo_db, pc, clock, fabrikam, request, "after")
    assert fake.subscriptions[FABRIKAM][provider_id][remote_field] == wanted and fake.patches_applied == 1

    report = await subscription_sync(demo_db, pc, clock.now())
    assert report.deferred == 1 and report.updated == 0, report
    assert await _entries(demo_db, sub) == [] and (await _local(demo_db, provider_id)).version == sub.version

    again = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=fabrikam, customer_id=fabrikam.customer_id, request=request)
    assert isinstance(again, Receipt) and again.reference == pending.reference and again.summary.startswith(summary), again
    assert fake.patches_applied == 1 and len(_patches(fake, sub)) == 1, "Partner Center had it: nothing sent again"
    [entry] = [e for e in await _entries(demo_db, sub) if e.action != "scheduled_withdrawn"]
    assert (entry.action, entry.outcome, entry.reference, entry.actor) == (request.kind.value, "applied", pending.reference, fabrikam.name)
    assert (await _operation(demo_db, request.op)).status == operations.DONE
    after = await _local(demo_db, provider_id)
    assert {"seats": after.quantity, "auto-renew": after.auto_renew, "cancel": after.status}[what] == (
        SubscriptionStatus.DELETED if what == "cancel" else wanted
    )
    # A third click: the same receipt, nothing more recorded; the next sync no longer leaves it alone.
    recorded = [e.id for e in await _entries(demo_db, sub)]
    third = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=fabrikam, customer_id=fabrikam.customer_id, request=request)
    assert third == again and [e.id for e in await _entries(demo_db, sub)] == recorded
    assert (await subscription_sync(demo_db, pc, clock.now())).deferred == 0


async def test_killed_before_the_patch_the_retry_sends_it_once(fake, pc, demo_db, clock, fabrikam):
    sub = await _local(demo_db, "FAB-M365E3-01")
    request = ChangeRequest(Kind.SEATS, sub.id, sub.version, new_op(), quantity=130, timing=Timing.NOW)
    await _killed_while_confirming(demo_db, pc, clock, fabrikam, request, "before")
    assert fake.patches_applied == 0

    again = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=fabrikam, customer_id=fabrikam.customer_id, request=request)
    assert isinstance(again, Receipt) and again.new_quantity == 130
    assert fake.patches_applied == 1 and [p.headers["MS-RequestId"] for p in _patches(fake, sub)] == [request_id_for(request.op)]
    assert (await _local(demo_db, "FAB-M365E3-01")).quantity == 130


async def test_the_worker_finishes_a_left_over_change_after_the_grace_period_and_tells_the_person(fake, pc, demo_db, clock, fabrikam):
    sub = await _local(demo_db, "FAB-M365E3-01")
    request = ChangeRequest(Kind.SEATS, sub.id, sub.version, new_op(), quantity=126, timing=Timing.NOW)
    pending = await _killed_while_confirming(demo_db, pc, clock, fabrikam, request, "after")
    provider, notices = PartnerCenterProvider(pc), Notices()

    clock.advance(operations.GRACE / 2)  # its process may still be working on it
    assert await run_once(demo_db, provider, clock, notices) == 0 and notices.sent == []
    assert (await _operation(demo_db, request.op)).status == operations.PENDING

    clock.advance(operations.GRACE / 2)
    assert await run_once(demo_db, provider, clock, notices) == 1
    [(user_id, replies)] = notices.sent
    assert user_id == fabrikam.user_id
    assert replies[0].text == f"Ihre Änderung an {sub.display_name} wurde ausgeführt (Referenz {pending.reference}). Hier ist die Bestätigung:"
    assert "Seats 120 → 126" in str(replies[1].card)
    assert fake.patches_applied == 1 and len(_patches(fake, sub)) == 1
    assert [(e.action, e.reference) for e in await _entries(demo_db, sub) if e.action != "scheduled_withdrawn"] == [("seats", pending.reference)]
    # Nothing left for the next pass; a late click gets the same receipt.
    assert await run_once(demo_db, provider, clock, notices) == 0
    late = await confirm(demo_db, provider, now=clock.now(), actor=fabrikam, customer_id=fabrikam.customer_id, request=request)
    assert isinstance(late, Receipt) and late.reference == pending.reference and len(notices.sent) == 1


async def test_a_left_over_change_partner_center_now_refuses_is_dropped_and_said(fake, pc, demo_db, clock, fabrikam):
    """Killed before the PATCH; meanwhile someone changed the subscription in the portal. Finishing it
    would overwrite that: the change is dropped, the refusal recorded, and the person told."""
    sub = await _local(demo_db, "FAB-M365E3-01")
    request = ChangeRequest(Kind.SEATS, sub.id, sub.version, new_op(), quantity=127, timing=Timing.NOW)
    await _killed_while_confirming(demo_db, pc, clock, fabrikam, request, "before")
    fake.change(FABRIKAM, sub.provider_id, quantity=140)
    clock.advance(operations.GRACE)

    [finished] = await subscription_changes.finish_left_over(demo_db, PartnerCenterProvider(pc), clock.now())
    assert isinstance(finished, Finished) and finished.user_id == fabrikam.user_id
    assert isinstance(finished.result, ProviderFailed) and "140 seats" in finished.result.message and finished.result.subscription_name == sub.display_name
    assert fake.patches_applied == 0 and await _operation(demo_db, request.op) is None
    assert [(e.action, e.outcome, e.reason) for e in await _entries(demo_db, sub)] == [("seats", "refused", "partnercenter_changed")]
    # The sync may mirror the portal's change now: nothing of Seatdesk's is in flight there any more.
    report = await subscription_sync(demo_db, pc, clock.now())
    assert report.deferred == 0 and report.updated == 1


async def test_another_change_of_a_subscription_with_one_in_flight_waits(fake, pc, demo_db, clock, fabrikam):
    sub = await _local(demo_db, "FAB-M365E3-01")
    first = ChangeRequest(Kind.SEATS, sub.id, sub.version, new_op(), quantity=128, timing=Timing.NOW)
    await _killed_while_confirming(demo_db, pc, clock, fabrikam, first, "after")
    second = ChangeRequest(Kind.AUTO_RENEW, sub.id, sub.version, new_op(), enable=False)
    result = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=fabrikam, customer_id=fabrikam.customer_id, request=second)
    assert result == InProgress(sub.display_name, other=True)
    assert await _operation(demo_db, second.op) is None and fake.patches_applied == 1


async def test_a_retry_while_another_instance_carries_it_out_patches_nothing(fake, pc, demo_db, engine, clock, fabrikam):
    """PostgreSQL: the transaction carrying a change out holds its operation's row; a retry on another
    instance meanwhile is told it is still being carried out. (SQLite has no row locks: there the
    retry would ask Partner Center too, with the same MS-RequestId, and one of them records it.)"""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    sub = await _local(demo_db, "FAB-M365E3-01")
    request = ChangeRequest(Kind.SEATS, sub.id, sub.version, new_op(), quantity=129, timing=Timing.NOW)
    await _killed_while_confirming(demo_db, pc, clock, fabrikam, request, "before")
    async with demo_db() as holder, holder.begin():
        assert await operations.hold(holder, request.op) is not None
        retry = asyncio.create_task(
            confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=fabrikam, customer_id=fabrikam.customer_id, request=request)
        )
        assert await asyncio.wait_for(retry, timeout=10) == InProgress()
    assert fake.patches_applied == 0 and not [r for r in fake.requests if sub.provider_id in r.path]


async def test_a_patch_without_an_answer_is_not_called_a_refusal_and_is_finished_once(fake, pc, demo_db, clock, fabrikam):
    """Guards "Nothing was changed" after a PATCH that may have gone through: it stays pending, the
    sync leaves it alone, and the next click (or the worker) asks Partner Center and records it once."""
    sub = await _local(demo_db, "FAB-M365E3-01")
    fake.fail("PATCH", f"/subscriptions/{sub.provider_id}$", status=503, times=10)
    request = ChangeRequest(Kind.SEATS, sub.id, sub.version, new_op(), quantity=131, timing=Timing.NOW)
    first = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=fabrikam, customer_id=fabrikam.customer_id, request=request)
    assert isinstance(first, ProviderFailed) and "did not confirm" in first.message and "Nothing was changed" not in first.message
    assert (await _operation(demo_db, request.op)).status == operations.PENDING
    assert await _entries(demo_db, sub) == [], "not recorded as refused: it may have been made"
    assert (await subscription_sync(demo_db, pc, clock.now())).deferred == 1

    fake.faults.clear()
    again = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=fabrikam, customer_id=fabrikam.customer_id, request=request)
    assert isinstance(again, Receipt) and again.new_quantity == 131
    assert fake.patches_applied == 1 and (await _local(demo_db, sub.provider_id)).quantity == 131
    assert [(e.action, e.outcome) for e in await _entries(demo_db, sub) if e.action != "scheduled_withdrawn"] == [("seats", "applied")]
