"""The words a customer may use for what they have and can buy: their subscriptions and their
catalog's products, read once per message and handed to the pure parser as plain data."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.language import OwnedSubscription, Product, Vocabulary
from services.models import Catalog, CatalogProduct, Customer, Offer, Subscription, SubscriptionStatus
from services.models import Product as ProductRow


async def load_vocabulary(session: AsyncSession, customer_id: int | None) -> Vocabulary:
    if customer_id is None:
        return Vocabulary()
    rows = (
        await session.execute(
            select(Subscription.id, Subscription.nickname, Subscription.status, Subscription.provider_id, ProductRow.key, ProductRow.name, ProductRow.aliases)
            .join(Offer, Offer.id == Subscription.offer_id)
            .join(ProductRow, ProductRow.id == Offer.product_id)
            .where(Subscription.customer_id == customer_id)
            .order_by(Subscription.id)
        )
    ).all()
    subscriptions = tuple(
        OwnedSubscription(
            id=row.id, name=row.nickname or row.name, product_key=row.key, product_name=row.name,
            aliases=tuple(row.aliases or ()), active=row.status == SubscriptionStatus.ACTIVE, ref=row.provider_id,
        )
        for row in rows
    )
    catalog_id = (await session.execute(select(Customer.catalog_id).where(Customer.id == customer_id))).scalar_one_or_none()
    query = select(ProductRow.key, ProductRow.name, ProductRow.aliases).order_by(ProductRow.id)
    if catalog_id is not None:
        query = query.join(CatalogProduct, CatalogProduct.product_id == ProductRow.id).where(CatalogProduct.catalog_id == catalog_id)
    else:
        is_global = (await session.execute(select(Catalog.id).where(Catalog.is_global.is_(True)))).first()
        if is_global is None:
            query = query.where(ProductRow.id.is_(None))
    products = tuple(Product(key=r.key, name=r.name, aliases=tuple(r.aliases or ())) for r in (await session.execute(query)).all())
    return Vocabulary(subscriptions, products)
