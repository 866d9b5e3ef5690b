"""Where an approved order goes: the built-in ledger (subscriptions exist at once) or Partner Center
(cart, checkout, then order and provisioning status polled until done).

`idempotency_key` is the order's own key: submitting the same order twice creates it once (the
ledger finds its subscriptions; Partner Center gets the same MS-RequestId for cart and checkout).
"""
from __future__ import annotations

import enum
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import commerce
from services.clock import Clock
from services.models import Offer, Subscription, SubscriptionStatus
from services.partnercenter import (
    SENTENCES,
    ApiError,
    ApiUnavailable,
    NotConnected,
    PartnerCenter,
    correlation_id_for,
    request_id_for,
)

log = logging.getLogger("seatdesk.orders.backend")


@dataclass(frozen=True)
class OrderLineRequest:
    """One line of an order: what to buy. The offer decides product, term and billing cycle."""

    offer_id: int
    quantity: int
    parent_subscription_id: int | None = None  # an add-on under this base subscription
    nickname: str | None = None


class CustomerRef(Protocol):
    id: int
    tenant_id: str


@dataclass(frozen=True)
class LineError:
    line: int  # index into the order lines, or -1 for the whole order
    code: str
    message: str  # a sentence for the user


@dataclass(frozen=True)
class SubmitResult:
    provider_order_id: str | None
    errors: tuple[LineError, ...] = ()

    @property
    def ok(self) -> bool:
        return self.provider_order_id is not None and not self.errors


class OrderState(str, enum.Enum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class OrderStatusResult:
    status: OrderState
    subscriptions: tuple[str, ...] = ()  # provider subscription ids
    message: str = ""


class OrderingBackend(Protocol):
    async def submit(self, order_lines: Sequence[OrderLineRequest], customer: CustomerRef, idempotency_key: str) -> SubmitResult: ...

    async def status(self, provider_order_id: str, customer: CustomerRef) -> OrderStatusResult: ...


def _ledger_prefix(idempotency_key: str) -> str:
    return "SD-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16].upper()


class LedgerOrderBackend:
    """Seatdesk is the system of record: the subscriptions are created at once (offer, quantity, term
    starting now, commitment end per the offer's term, auto-renew on)."""

    def __init__(self, db: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def submit(
        self, order_lines: Sequence[OrderLineRequest], customer: CustomerRef, idempotency_key: str, *, session: AsyncSession | None = None
    ) -> SubmitResult:
        """With `session`, the subscriptions are added to the caller's transaction (e.g. the one that
        marks the order completed); otherwise in a transaction of their own."""
        if session is not None:
            return await self._submit(session, order_lines, customer, idempotency_key)
        async with self._db() as own, own.begin():
            return await self._submit(own, order_lines, customer, idempotency_key)

    async def _submit(self, session: AsyncSession, order_lines, customer, idempotency_key: str) -> SubmitResult:
        prefix = _ledger_prefix(idempotency_key)
        existing = (
            await session.execute(select(Subscription.id).where(Subscription.customer_id == customer.id, Subscription.provider_id.like(prefix + "-%")))
        ).first()
        if existing is not None:
            return SubmitResult(prefix)  # submitted before: the same order, not a second one
        now = self._clock.now()
        errors = []
        for index, line in enumerate(order_lines):
            offer = await session.get(Offer, line.offer_id)
            if offer is None:
                errors.append(LineError(index, "unknown_offer", "This product is no longer offered."))
            elif not offer.min_quantity <= line.quantity <= offer.max_quantity:
                errors.append(LineError(index, "quantity", f"Choose between {offer.min_quantity} and {offer.max_quantity} seats."))
        if errors:
            return SubmitResult(None, tuple(errors))
        for index, line in enumerate(order_lines, start=1):
            offer = await session.get(Offer, line.offer_id)
            session.add(
                Subscription(
                    customer_id=customer.id, offer_id=offer.id, provider_id=f"{prefix}-{index}", nickname=line.nickname, quantity=line.quantity,
                    status=SubscriptionStatus.ACTIVE, is_trial=offer.is_trial, auto_renew=True, start_date=now.date(), term_start=now,
                    commitment_end=commerce.commitment_end_for(now.date(), offer.term), parent_id=line.parent_subscription_id, updated_at=now,
                )
            )
        await session.flush()
        return SubmitResult(prefix)

    async def status(self, provider_order_id: str, customer: CustomerRef) -> OrderStatusResult:
        async with self._db() as session:
            ids = (
                await session.execute(
                    select(Subscription.provider_id)
                    .where(Subscription.customer_id == customer.id, Subscription.provider_id.like(provider_order_id + "-%"))
                    .order_by(Subscription.id)
                )
            ).scalars().all()
        if not ids:
            return OrderStatusResult(OrderState.FAILED, (), "The order was not found.")
        return OrderStatusResult(OrderState.COMPLETED, tuple(ids))


# Partner Center's cart and order error codes as sentences (others quote Partner Center).
ORDER_ERROR_SENTENCES = {
    "10001": "This product can't be bought from Partner Center at the moment (its catalog entry is not valid).",
    "10002": "Microsoft's limit for this product has been reached for your company.",
    "800002": "Microsoft's limit for this product has been reached for your company.",
}


def _order_error(line: int, code: object, description: object) -> LineError:
    code = str(code)
    return LineError(line, code, ORDER_ERROR_SENTENCES.get(code) or f"Partner Center refused it: {str(description or code).rstrip('.')}.")


@dataclass
class PartnerCenterOrderBackend:
    """Cart + checkout in Partner Center; `status` polls the orders and their provisioning."""

    pc: PartnerCenter
    db: async_sessionmaker[AsyncSession]
    # Partner Center groups lines into several orders (one per billing cycle): ids joined with ",".
    separator: str = ","

    async def submit(self, order_lines: Sequence[OrderLineRequest], customer: CustomerRef, idempotency_key: str) -> SubmitResult:
        correlation = correlation_id_for(idempotency_key)
        items: list[dict] = []
        errors: list[LineError] = []
        async with self.db() as session:
            offers = [await session.get(Offer, line.offer_id) for line in order_lines]
        try:
            for index, (line, offer) in enumerate(zip(order_lines, offers)):
                product = offer.product if offer else None
                if offer is None or not product.provider_product_id or not product.provider_sku_id:
                    errors.append(LineError(index, "unknown_offer", "This product is not sold through Partner Center."))
                    continue
                catalog_item = await self.pc.catalog_item_id(product.provider_product_id, product.provider_sku_id, offer.term, offer.billing, correlation_id=correlation)
                if catalog_item is None:
                    errors.append(LineError(index, "not_available", f"{product.name} ({offer.term.value}, {offer.billing.value}) is not available in Partner Center now."))
                    continue
                item = {
                    "id": index, "catalogItemId": catalog_item, "quantity": line.quantity,
                    "billingCycle": offer.billing.value, "termDuration": offer.term.value, "provisioningContext": {},
                }
                items.append(item)
            if errors:
                return SubmitResult(None, tuple(errors))
            cart = await self.pc.create_cart(customer.tenant_id, items, request_id=request_id_for("cart:" + idempotency_key), correlation_id=correlation)
            line_errors = [
                _order_error(int(i.get("id", -1)), i["error"].get("errorCode"), i["error"].get("errorDescription"))
                for i in cart.get("lineItems") or [] if isinstance(i.get("error"), dict)
            ]
            if line_errors:
                return SubmitResult(None, tuple(line_errors))
            result = await self.pc.checkout(customer.tenant_id, str(cart["id"]), request_id=request_id_for("checkout:" + idempotency_key), correlation_id=correlation)
        except ApiError as error:
            return SubmitResult(None, (_order_error(-1, error.code, error.description),))
        except ApiUnavailable:
            return SubmitResult(None, (LineError(-1, "unavailable", SENTENCES["unavailable"]),))
        except NotConnected:
            return SubmitResult(None, (LineError(-1, "not_connected", SENTENCES["not_connected"]),))
        orders = [o for o in result.get("orders") or [] if isinstance(o, dict)]
        errors = [_order_error(int(e.get("orderGroupId") or -1), e.get("code"), e.get("description")) for e in result.get("orderErrors") or [] if isinstance(e, dict)]
        order_id = self.separator.join(str(o["id"]) for o in orders) or None
        return SubmitResult(order_id, tuple(errors))

    async def status(self, provider_order_id: str, customer: CustomerRef) -> OrderStatusResult:
        subscriptions: list[str] = []
        try:
            for order_id in provider_order_id.split(self.separator):
                order = await self.pc.order(customer.tenant_id, order_id)
                state = str(order.get("status") or "").lower()
                if state == "cancelled":
                    return OrderStatusResult(OrderState.FAILED, (), "Partner Center cancelled the order.")
                subscriptions += [str(li["subscriptionId"]) for li in order.get("lineItems") or [] if li.get("subscriptionId")]
                if state != "completed":
                    return OrderStatusResult(OrderState.PENDING, tuple(subscriptions), "Partner Center is still processing the order.")
                provisioning = await self.pc.provisioning_status(customer.tenant_id, order_id)
                # Both "Fulfilled" and "fulfilled" are seen: compare without case.
                if any(str(p.get("status") or "").lower() != "fulfilled" for p in provisioning):
                    return OrderStatusResult(OrderState.PENDING, tuple(subscriptions), "Microsoft is setting up the subscriptions.")
        except ApiUnavailable:
            return OrderStatusResult(OrderState.PENDING, tuple(subscriptions), SENTENCES["unavailable"])
        except ApiError as error:
            return OrderStatusResult(OrderState.FAILED, (), f"Partner Center refused: {error.description or error.code}")
        return OrderStatusResult(OrderState.COMPLETED, tuple(subscriptions))
