"""PartnerCenterProvider through services.subscription_changes.confirm: PATCH the full resource with
If-Match first, then the mirror row; exactly once; 412 re-reads; refusals become sentences."""
from __future__ import annotations

from sqlalchemy import func, select

from services import audit
from services.changes import Timing
from services.models import AuditEntry, Subscription, SubscriptionStatus
from services.partnercenter import PartnerCenterProvider, request_id_for
from services.providers import SubscriptionProvider
from services.subscription_changes import ChangeRequest, Kind, ProviderFailed, Receipt, confirm, new_op
from tests.partnercenter.conftest import FABRIKAM

ACTOR = audit.Actor(name="Stefan Hoffmann")


async def _local(db, provider_id="FAB-M365E3-01") -> Subscription:
    async with db() as session:
        return (await session.execute(select(Subscription).where(Subscription.provider_id == provider_id))).scalar_one()


async def _mirror_remote(fake, sub: Subscription, **fields):
    return fake.add_subscription(
        FABRIKAM, sub.provider_id, offerId="CFQ7TTC0LFLZ:0002:CFQ7TTC0K8P5", quantity=sub.quantity, autoRenewEnabled=sub.auto_renew,
        status=sub.status.value, termDuration="P1Y", billingCycle="monthly", commitmentEndDate=f"{sub.commitment_end.isoformat()}T00:00:00Z",
        cancellationAllowedUntilDate=None, **fields,
    )


def _seats(sub, quantity, op=None):
    return ChangeRequest(Kind.SEATS, sub.id, sub.version, op=op or new_op(), quantity=quantity, timing=Timing.NOW)


async def test_the_provider_fits_the_port(pc):
    provider: SubscriptionProvider = PartnerCenterProvider(pc)
    assert provider.name == "partnercenter"


async def test_adding_seats_patches_the_full_resource_then_the_mirror(fake, pc, demo_db, clock):
    sub = await _local(demo_db)
    remote = await _mirror_remote(fake, sub)
    etag = remote["attributes"]["etag"]
    request = _seats(sub, 130)
    result = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=ACTOR, customer_id=sub.customer_id, request=request)
    assert isinstance(result, Receipt) and result.new_quantity == 130
    patch = next(r for r in fake.requests if r.method == "PATCH")
    assert patch.headers["If-Match"] == etag and patch.body["quantity"] == 130
    assert set(remote) <= set(patch.body)  # the full resource, not a fragment
    assert patch.headers["MS-RequestId"] == request_id_for(request.op)
    after = await _local(demo_db)
    assert after.quantity == 130 and after.provider_etag == fake.subscriptions[FABRIKAM][sub.provider_id]["attributes"]["etag"]


async def test_a_second_click_patches_nothing(fake, pc, demo_db, clock):
    sub = await _local(demo_db)
    await _mirror_remote(fake, sub)
    request = _seats(sub, 125)
    provider = PartnerCenterProvider(pc)
    first = await confirm(demo_db, provider, now=clock.now(), actor=ACTOR, customer_id=sub.customer_id, request=request)
    second = await confirm(demo_db, provider, now=clock.now(), actor=ACTOR, customer_id=sub.customer_id, request=request)
    assert first.reference == second.reference and fake.patches_applied == 1


async def test_a_412_reads_again_and_revalidates(fake, pc, demo_db, clock):
    sub = await _local(demo_db)
    await _mirror_remote(fake, sub)
    fake.fail("PATCH", sub.provider_id, status=412, body={"code": 2055, "description": "etag mismatch", "data": [], "source": "PartnerFD"})
    result = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=ACTOR, customer_id=sub.customer_id, request=_seats(sub, 121))
    assert isinstance(result, Receipt)
    gets = [r for r in fake.requests if r.method == "GET" and r.path.endswith(sub.provider_id)]
    patches = [r for r in fake.requests if r.method == "PATCH"]
    assert len(gets) == 2 and len(patches) == 2 and patches[0].headers["MS-RequestId"] != patches[1].headers["MS-RequestId"]


async def test_a_change_made_in_the_portal_is_not_overwritten(fake, pc, demo_db, clock):
    sub = await _local(demo_db)
    await _mirror_remote(fake, sub)
    fake.change(FABRIKAM, sub.provider_id, quantity=140)  # someone used the Partner Center portal
    result = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=ACTOR, customer_id=sub.customer_id, request=_seats(sub, 130))
    assert isinstance(result, ProviderFailed) and "changed in Partner Center" in result.message and "140 seats" in result.message
    assert fake.patches_applied == 0 and (await _local(demo_db)).quantity == 120


async def test_a_closed_window_refusal_becomes_the_users_sentence(fake, pc, demo_db, clock):
    sub = await _local(demo_db, "FAB-COPILOT-01")  # inside Seatdesk's window; Partner Center says no
    await _mirror_remote(fake, sub)
    fake.fail("PATCH", sub.provider_id, status=400, body={"code": 900117, "description": "Quantity cannot be decreased", "data": [], "source": "PartnerFD"})
    result = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=ACTOR, customer_id=sub.customer_id, request=_seats(sub, sub.quantity - 1))
    assert isinstance(result, ProviderFailed) and "cancellation window" in result.message
    async with demo_db() as session:
        refused = (await session.execute(select(func.count()).select_from(AuditEntry).where(AuditEntry.reason == "partnercenter_900117"))).scalar_one()
    assert refused == 1 and (await _local(demo_db, "FAB-COPILOT-01")).quantity == sub.quantity


async def test_partner_center_down_changes_nothing(fake, pc, demo_db, clock):
    sub = await _local(demo_db)
    await _mirror_remote(fake, sub)
    fake.fail("GET", sub.provider_id, status=503, times=100)
    result = await confirm(demo_db, PartnerCenterProvider(pc), now=clock.now(), actor=ACTOR, customer_id=sub.customer_id, request=_seats(sub, 130))
    assert isinstance(result, ProviderFailed) and "not answering" in result.message


async def test_auto_renew_cancel_and_renewal_quantity_send_their_fields(fake, pc, demo_db, clock):
    provider = PartnerCenterProvider(pc)
    sub = await _local(demo_db)
    await _mirror_remote(fake, sub)
    request = ChangeRequest(Kind.SEATS, sub.id, sub.version, op=new_op(), quantity=115, timing=Timing.AT_RENEWAL)
    assert isinstance(await confirm(demo_db, provider, now=clock.now(), actor=ACTOR, customer_id=sub.customer_id, request=request), Receipt)
    instructions = fake.requests[-1].body["scheduledNextTermInstructions"]
    assert instructions["quantity"] == 115 and instructions["product"] == {
        "productId": "CFQ7TTC0LFLZ", "skuId": "0002", "availabilityId": "CFQ7TTC0K8P5", "billingCycle": "Monthly", "termDuration": "P1Y"
    }
    sub = await _local(demo_db)
    request = ChangeRequest(Kind.AUTO_RENEW, sub.id, sub.version, op=new_op(), enable=False)
    assert isinstance(await confirm(demo_db, provider, now=clock.now(), actor=ACTOR, customer_id=sub.customer_id, request=request), Receipt)
    assert fake.requests[-1].body["autoRenewEnabled"] is False and (await _local(demo_db)).auto_renew is False
    copilot = await _local(demo_db, "FAB-COPILOT-01")
    await _mirror_remote(fake, copilot)
    request = ChangeRequest(Kind.CANCEL, copilot.id, copilot.version, op=new_op(), reason="bought_by_mistake")
    assert isinstance(await confirm(demo_db, provider, now=clock.now(), actor=ACTOR, customer_id=copilot.customer_id, request=request), Receipt)
    assert fake.requests[-1].body["status"] == "deleted" and (await _local(demo_db, "FAB-COPILOT-01")).status == SubscriptionStatus.DELETED
