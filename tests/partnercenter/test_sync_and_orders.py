"""The reconciliation job, the catalog sync and both ordering backends."""
from __future__ import annotations

from sqlalchemy import select

from services.models import AuditEntry, Customer, Offer, Product, Subscription
from services.order_backend import LedgerOrderBackend, OrderLineRequest, OrderState, PartnerCenterOrderBackend
from services.partnercenter import catalog_sync, subscription_sync
from tests.partnercenter.conftest import FABRIKAM, NORTHWIND


async def _subs(db, customer_key):
    async with db() as session:
        customer = (await session.execute(select(Customer).where(Customer.key == customer_key))).scalar_one()
        return customer, {s.provider_id: s for s in (await session.execute(select(Subscription).where(Subscription.customer_id == customer.id))).scalars()}


async def test_portal_changes_show_up_and_every_difference_is_audited(fake, pc, demo_db, clock):
    _, local = await _subs(demo_db, "fabrikam")
    for sub in local.values():
        fake.add_subscription(
            FABRIKAM, sub.provider_id, quantity=sub.quantity, autoRenewEnabled=sub.auto_renew, status=sub.status.value, isTrial=sub.is_trial,
            termDuration=sub.offer.term.value, billingCycle=sub.offer.billing.value, commitmentEndDate=f"{sub.commitment_end}T00:00:00Z",
            cancellationAllowedUntilDate=sub.cancellation_allowed_until.isoformat() if sub.cancellation_allowed_until else None,
        )
    fake.change(FABRIKAM, "FAB-M365E3-01", quantity=150)
    del fake.subscriptions[FABRIKAM]["FAB-VISIO-01"]
    fake.add_subscription(FABRIKAM, "new-from-portal", offerId="CFQ7TTC0LH18:0001:CFQ7TTC0K59S", quantity=3, termDuration="P1M", billingCycle="monthly",
                          friendlyName="Business Basic for interns", commitmentEndDate="2026-12-21T00:00:00Z")
    report = await subscription_sync(demo_db, pc, clock.now())
    assert report.created == 1 and report.updated == 1 and report.failed == []
    customer, after = await _subs(demo_db, "fabrikam")
    assert after["FAB-M365E3-01"].quantity == 150 and after["new-from-portal"].quantity == 3
    assert "FAB-VISIO-01" in after  # nothing is lost locally
    async with demo_db() as session:
        entries = {e.action: e for e in (await session.execute(select(AuditEntry).where(AuditEntry.source == "sync"))).scalars()}
        missing = list((await session.execute(select(AuditEntry).where(AuditEntry.action == "sync_missing", AuditEntry.customer_id == customer.id))).scalars())
    assert {"sync_changed", "sync_added", "sync_missing"} <= set(entries)
    assert [m.target_id for m in missing] == [str(after["FAB-VISIO-01"].id)]
    changed = [e for e in (await _audit(demo_db)) if e.target_id == str(after["FAB-M365E3-01"].id)]
    assert changed[0].before["quantity"] == 120 and changed[0].after["quantity"] == 150 and "MS-CorrelationId" in changed[0].reason
    # a second pass finds nothing to change
    again = await subscription_sync(demo_db, pc, clock.now())
    assert again.updated == 0 and again.created == 0


async def _audit(db):
    async with db() as session:
        return list((await session.execute(select(AuditEntry).where(AuditEntry.action == "sync_changed"))).scalars())


async def test_catalog_sync_keeps_prices_and_adds_what_is_new(fake, pc, demo_db, clock):
    report = await catalog_sync(demo_db, pc, clock.now())
    assert report.products == 1 and report.offers_seen == 3
    async with demo_db() as session:
        product = (await session.execute(select(Product).where(Product.provider_product_id == "CFQ7TTC0LH18"))).scalar_one()
        offers = list((await session.execute(select(Offer).where(Offer.product_id == product.id))).scalars())
    assert product.name == "Microsoft 365 Business Basic" and str(offers[0].unit_price_monthly) == "6.72"
    assert {o.catalog_item_id for o in offers} == {"CFQ7TTC0LH18:0001:CFQ7TTC0K59S"}


async def _offer(db, product_key="m365-bb", term="P1M"):
    async with db() as session:
        return (await session.execute(select(Offer).join(Product).where(Product.key == product_key, Offer.term == term))).scalars().first()


async def test_ledger_orders_create_subscriptions_once(demo_db, clock):
    customer, before = await _subs(demo_db, "northwind")
    offer = await _offer(demo_db)
    backend = LedgerOrderBackend(demo_db, clock)
    first = await backend.submit([OrderLineRequest(offer.id, 5)], customer, "order-key-1")
    second = await backend.submit([OrderLineRequest(offer.id, 5)], customer, "order-key-1")
    assert first.ok and first.provider_order_id == second.provider_order_id
    _, after = await _subs(demo_db, "northwind")
    new = [s for pid, s in after.items() if pid not in before]
    assert len(new) == 1 and new[0].quantity == 5 and new[0].auto_renew and new[0].commitment_end.isoformat() == "2026-12-21"
    status = await backend.status(first.provider_order_id, customer)
    assert status.status == OrderState.COMPLETED and status.subscriptions == (new[0].provider_id,)


async def test_partner_center_orders_resolve_the_catalog_item_then_poll_until_provisioned(fake, pc, demo_db):
    customer, _ = await _subs(demo_db, "northwind")
    offer = await _offer(demo_db)
    backend = PartnerCenterOrderBackend(pc, demo_db)
    submitted = await backend.submit([OrderLineRequest(offer.id, 5)], customer, "order-key-2")
    assert submitted.ok
    cart = next(r for r in fake.requests if r.path.endswith("/carts"))
    assert cart.body["lineItems"][0]["catalogItemId"] == "CFQ7TTC0LH18:0001:CFQ7TTC0K59S"  # resolved now, not from storage
    again = await backend.submit([OrderLineRequest(offer.id, 5)], customer, "order-key-2")
    assert again.provider_order_id == submitted.provider_order_id and len(fake.orders) == 1  # one checkout
    states = [(await backend.status(submitted.provider_order_id, customer)).status for _ in range(4)]
    assert states == [OrderState.PENDING, OrderState.PENDING, OrderState.PENDING, OrderState.COMPLETED]
    done = await backend.status(submitted.provider_order_id, customer)
    assert done.subscriptions and done.subscriptions[0].startswith("sub-")


async def test_order_errors_become_sentences(fake, pc, demo_db):
    customer, _ = await _subs(demo_db, "northwind")
    offer = await _offer(demo_db)
    fake.failing_catalog_items.add("CFQ7TTC0LH18:0001:CFQ7TTC0K59S")
    result = await PartnerCenterOrderBackend(pc, demo_db).submit([OrderLineRequest(offer.id, 5)], customer, "order-key-3")
    assert not result.ok and result.errors[0].code == "10002" and "limit" in result.errors[0].message


async def test_on_demand_sync_runs_what_is_asked(fake, pc, demo_db, clock):
    from services.partnercenter import CatalogReport, SyncReport, sync_now

    assert [type(r) for r in await sync_now(demo_db, pc, clock.now(), "catalog")] == [CatalogReport]
    assert [type(r) for r in await sync_now(demo_db, pc, clock.now(), "subscriptions")] == [SyncReport]
    assert [type(r) for r in await sync_now(demo_db, pc, clock.now())] == [SyncReport, CatalogReport]


def test_the_sync_command_says_when_there_is_nothing_to_sync(capsys, db_url, monkeypatch):
    from bot.__main__ import main

    monkeypatch.setenv("SEATDESK_DATABASE_URL", db_url)
    monkeypatch.delenv("SEATDESK_PROVIDER", raising=False)
    assert main(["sync"]) == 2
    assert "SEATDESK_PROVIDER is not partnercenter" in capsys.readouterr().err
