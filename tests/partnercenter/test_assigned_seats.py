"""Graph's consumed units become the assigned seats the overview, details and seat checks use."""
from __future__ import annotations

from sqlalchemy import select

from services.graph import LicenceError, SubscribedSku, refresh_assigned_seats
from services.models import Customer, Product, Subscription


class StubGraph:
    def __init__(self, skus_by_tenant):
        self.skus_by_tenant = skus_by_tenant

    async def subscribed_skus(self, tenant):
        if tenant not in self.skus_by_tenant:
            raise LicenceError("not_consented")
        return self.skus_by_tenant[tenant]


async def test_assigned_seats_follow_graph_and_unconsented_customers_are_skipped(demo_db):
    async with demo_db() as session, session.begin():
        visio = (await session.execute(select(Product).where(Product.key == "visio-p2"))).scalar_one()
        visio.sku_part_number = "VISIOCLIENT"
        fabrikam = (await session.execute(select(Customer).where(Customer.key == "fabrikam"))).scalar_one()
        sub = (await session.execute(select(Subscription).where(Subscription.provider_id == "FAB-VISIO-01"))).scalar_one()
        version = sub.version
    graph = StubGraph({fabrikam.tenant_id: [SubscribedSku("c5928f49-12ba-48f7-ada3-0d743a3601d5", "VISIOCLIENT", 5, 2)]})
    counts = await refresh_assigned_seats(demo_db, graph)
    assert counts["updated"] == 1 and counts["skipped_customers"] >= 1
    async with demo_db() as session:
        sub = (await session.execute(select(Subscription).where(Subscription.provider_id == "FAB-VISIO-01"))).scalar_one()
    assert sub.assigned_seats == 2 and sub.version == version
    assert (await refresh_assigned_seats(demo_db, graph))["updated"] == 0
