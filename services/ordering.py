"""Ordering: the customer's catalog, the cart, checkout, the approval policy and the order outbox.

An order is written once per checkout (its idempotency key is the operation id the checkout
card carried) before anything goes to the provider; approved orders wait in the database
until the worker submits them, so a crash between "approved" and "submitted" resumes
without a second order.
"""
from __future__ import annotations

import difflib
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from services import audit, commerce, notices
from services.models import (
    ApprovalRequest,
    ApprovalStatus,
    BillingCycle,
    CartItem,
    Catalog,
    CatalogProduct,
    Customer,
    Offer,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Role,
    Subscription,
    SubscriptionStatus,
    Term,
    User,
    UserStatus,
)

log = logging.getLogger("seatdesk.ordering")

MAX_LINES = 20
MAX_QUANTITY = 10_000


# -- the catalog -------------------------------------------------------------------------------
@dataclass(frozen=True)
class OfferView:
    id: int
    term: Term
    billing: BillingCycle
    unit_price_monthly: Decimal
    currency: str
    min_quantity: int
    max_quantity: int

    @property
    def term_price(self) -> Decimal:
        return commerce.term_price(self.unit_price_monthly, self.term)


@dataclass(frozen=True)
class ProductView:
    id: int
    key: str
    name: str
    aliases: tuple[str, ...]
    category: str
    description: str
    addon_of_id: int | None
    addon_of_name: str | None
    offers: tuple[OfferView, ...]


async def catalog(session: AsyncSession, customer_id: int) -> list[ProductView]:
    """The products this customer may buy: its custom catalog, or the global one. Trials are not sold."""
    customer = await session.get(Customer, customer_id)
    catalog_row = await session.get(Catalog, customer.catalog_id) if customer.catalog_id else None
    if catalog_row is None:
        catalog_row = (await session.execute(select(Catalog).where(Catalog.is_global.is_(True)))).scalar_one_or_none()
    query = select(Product).order_by(Product.name)
    if catalog_row is not None and not catalog_row.is_global:
        query = query.join(CatalogProduct, CatalogProduct.product_id == Product.id).where(CatalogProduct.catalog_id == catalog_row.id)
    elif catalog_row is None:
        return []
    products = list((await session.execute(query)).scalars())
    names = {p.id: p.name for p in (await session.execute(select(Product))).scalars()}
    offers = (await session.execute(select(Offer).where(Offer.product_id.in_([p.id for p in products]), Offer.is_trial.is_(False)))).scalars()
    by_product: dict[int, list[OfferView]] = {}
    order = {Term.P1M: 0, Term.P1Y: 1, Term.P3Y: 2}
    for o in offers:
        by_product.setdefault(o.product_id, []).append(
            OfferView(o.id, o.term, o.billing, o.unit_price_monthly, o.currency, o.min_quantity, o.max_quantity)
        )
    return [
        ProductView(
            p.id, p.key, p.name, tuple(p.aliases or ()), p.category, p.description, p.addon_of_id, names.get(p.addon_of_id),
            tuple(sorted(by_product.get(p.id, []), key=lambda o: (order[o.term], o.billing.value))),
        )
        for p in products
        if by_product.get(p.id)
    ]


def _tokens(text: str) -> list[str]:
    return [t for t in "".join(c if c.isalnum() else " " for c in text.lower()).split() if t not in {"microsoft", "plan", "the", "a"}]


def search(products: list[ProductView], query: str, limit: int = 6) -> list[ProductView]:
    """Products meant by `query`: by name, alias or abbreviation, forgiving typos."""
    wanted = _tokens(query)
    if not wanted:
        return []
    phrase = " ".join(wanted)
    scored: list[tuple[float, ProductView]] = []
    for product in products:
        aliases = [" ".join(_tokens(a)) for a in product.aliases]
        name = _tokens(product.name)
        if phrase in aliases:
            scored.append((3.0, product))
            continue
        words = set(name) | {w for a in aliases for w in a.split()}
        hits = 0.0
        for token in wanted:
            if token in words:
                hits += 1
            else:
                close = difflib.get_close_matches(token, list(words), n=1, cutoff=0.75)
                hits += 0.8 if close else 0
        score = hits / len(wanted)
        if difflib.SequenceMatcher(None, phrase, " ".join(name)).ratio() > 0.8:
            score = max(score, 0.95)
        if score >= 0.75:
            scored.append((score, product))
    scored.sort(key=lambda item: (-item[0], item[1].name))
    top = scored[0][0] if scored else 0
    return [p for s, p in scored if s >= top - 0.2][:limit]


async def owned_products(session: AsyncSession, customer_id: int) -> dict[int, list[Subscription]]:
    subs = (
        await session.execute(
            select(Subscription).where(Subscription.customer_id == customer_id, Subscription.status == SubscriptionStatus.ACTIVE)
        )
    ).scalars()
    owned: dict[int, list[Subscription]] = {}
    for sub in subs:
        owned.setdefault(sub.offer.product_id, []).append(sub)
    return owned


# -- the cart ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CartLine:
    id: int
    product_id: int
    product_name: str
    offer: OfferView
    quantity: int
    separate: bool

    @property
    def monthly(self) -> Decimal:
        return commerce.monthly_cost(self.offer.unit_price_monthly, self.quantity)


@dataclass(frozen=True)
class Cart:
    lines: tuple[CartLine, ...]

    @property
    def total_monthly(self) -> Decimal:
        return sum((l.monthly for l in self.lines), Decimal("0.00"))

    @property
    def currency(self) -> str:
        return self.lines[0].offer.currency if self.lines else "EUR"

    @property
    def needs_acceptance(self) -> bool:
        """Annual or longer commitments need the buyer's explicit acceptance."""
        return any(l.offer.term in (Term.P1Y, Term.P3Y) for l in self.lines)

    def fingerprint(self) -> str:
        """Changes when anything that was shown changes: lines, quantities, prices."""
        raw = "|".join(f"{l.id}:{l.offer.id}:{l.quantity}:{l.offer.unit_price_monthly}:{int(l.separate)}" for l in sorted(self.lines, key=lambda l: l.id))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


async def cart(session: AsyncSession, customer_id: int, user_id: int) -> Cart:
    rows = (
        await session.execute(
            select(CartItem, Offer)
            .join(Offer, Offer.id == CartItem.offer_id)
            .where(CartItem.customer_id == customer_id, CartItem.user_id == user_id)
            .order_by(CartItem.id)
        )
    ).all()
    return Cart(
        tuple(
            CartLine(
                item.id, offer.product_id, offer.product.name,
                OfferView(offer.id, offer.term, offer.billing, offer.unit_price_monthly, offer.currency, offer.min_quantity, offer.max_quantity),
                item.quantity, item.separate_subscription,
            )
            for item, offer in rows
        )
    )


class CartProblem(ValueError):
    """Something about a cart change the user can fix; `key` is a cards.text key, `values` its values."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


async def add_to_cart(
    session: AsyncSession, *, customer_id: int, user_id: int, offer_id: int, quantity: int, separate: bool, now: datetime
) -> None:
    products = {p.id: p for p in await catalog(session, customer_id)}
    offer = await session.get(Offer, offer_id)
    if offer is None or offer.product_id not in products or offer.is_trial:
        raise CartProblem("order.not_in_catalog")
    product = products[offer.product_id]
    if product.addon_of_id is not None:
        owned = await owned_products(session, customer_id)
        if product.addon_of_id not in owned:
            raise CartProblem("order.addon_needs_base", name=product.name, base=product.addon_of_name or "")
    if not offer.min_quantity <= quantity <= offer.max_quantity:
        raise CartProblem("order.quantity_range", min=offer.min_quantity, max=offer.max_quantity)
    count = (await session.execute(select(func.count(CartItem.id)).where(CartItem.user_id == user_id))).scalar_one()
    existing = (
        await session.execute(
            select(CartItem).where(CartItem.customer_id == customer_id, CartItem.user_id == user_id, CartItem.offer_id == offer_id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        existing.quantity = min(existing.quantity + quantity, offer.max_quantity)
        existing.separate_subscription = existing.separate_subscription or separate
        return
    if count >= MAX_LINES:
        raise CartProblem("order.cart_full", max=MAX_LINES)
    session.add(CartItem(customer_id=customer_id, user_id=user_id, offer_id=offer_id, quantity=quantity, separate_subscription=separate, added_at=now))


async def set_quantity(session: AsyncSession, *, customer_id: int, user_id: int, item_id: int, quantity: int) -> None:
    item = (
        await session.execute(select(CartItem).where(CartItem.id == item_id, CartItem.customer_id == customer_id, CartItem.user_id == user_id))
    ).scalar_one_or_none()
    if item is None:
        raise CartProblem("order.cart_item_gone")
    offer = await session.get(Offer, item.offer_id)
    if not offer.min_quantity <= quantity <= offer.max_quantity:
        raise CartProblem("order.quantity_range", min=offer.min_quantity, max=offer.max_quantity)
    item.quantity = quantity


async def remove_from_cart(session: AsyncSession, *, customer_id: int, user_id: int, item_id: int | None = None) -> None:
    query = delete(CartItem).where(CartItem.customer_id == customer_id, CartItem.user_id == user_id)
    if item_id is not None:
        query = query.where(CartItem.id == item_id)
    await session.execute(query)


# -- the approval policy -------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    modify_requires_approval: bool = True
    amount_per_month_threshold: Decimal | None = None
    approver_roles: tuple[Role, ...] = (Role.ADMIN,)
    admin_auto_approve: bool = True
    expire_after_hours: int = 72
    remind_after_hours: int = 24

    @classmethod
    def from_json(cls, data: dict | None) -> "Policy":
        data = data or {}
        threshold = data.get("amount_per_month_threshold")
        roles = tuple(Role(r) for r in data.get("approver_roles") or ("admin",))
        return cls(
            modify_requires_approval=bool(data.get("modify_requires_approval", True)),
            amount_per_month_threshold=Decimal(str(threshold)) if threshold not in (None, "") else None,
            approver_roles=roles,
            admin_auto_approve=bool(data.get("admin_auto_approve", True)),
            expire_after_hours=int(data.get("expire_after_hours", 72)),
            remind_after_hours=int(data.get("remind_after_hours", 24)),
        )


@dataclass(frozen=True)
class ApprovalDecision:
    needed: bool
    approver_roles: tuple[Role, ...] = ()
    reason: str = ""  # "role" | "amount" | ""


def approval_needed(policy: Policy, role: Role, total_monthly: Decimal) -> ApprovalDecision:
    """Whether an order needs approval, and by whom (pure: the policy, the buyer's role, the amount)."""
    over = policy.amount_per_month_threshold is not None and total_monthly > policy.amount_per_month_threshold
    if over and not (role == Role.ADMIN and policy.admin_auto_approve):
        roles = tuple(r for r in policy.approver_roles if r in (Role.FINANCE, Role.ADMIN)) or (Role.ADMIN,)
        return ApprovalDecision(True, roles, "amount")
    if role == Role.MODIFY and policy.modify_requires_approval:
        return ApprovalDecision(True, policy.approver_roles, "role")
    if role == Role.ADMIN and not policy.admin_auto_approve:
        return ApprovalDecision(True, policy.approver_roles, "role")
    return ApprovalDecision(False)


# -- checkout ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckoutRequest:
    op: str
    fingerprint: str
    acceptance_name: str | None = None
    acceptance_email: str | None = None
    accepted: bool = False
    start_date: date | None = None


@dataclass(frozen=True)
class Placed:
    order_id: int
    number: str
    status: OrderStatus
    approvers: tuple[int, ...] = ()
    again: bool = False  # this checkout had been placed before (double click, retry)


@dataclass(frozen=True)
class CartChanged:
    cart: Cart


@dataclass(frozen=True)
class CheckoutProblem:
    key: str
    values: dict = field(default_factory=dict)


def _number() -> str:
    return "ORD-" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))


def valid_email(value: str) -> bool:
    local, _, domain = value.partition("@")
    return bool(local) and "." in domain and " " not in value and len(value) <= 320


async def checkout(db, *, customer_id: int, user: User, actor: audit.Actor, request: CheckoutRequest, now: datetime) -> Placed | CartChanged | CheckoutProblem:
    for attempt in range(4):
        try:
            return await _checkout_once(db, customer_id=customer_id, user=user, actor=actor, request=request, now=now)
        except (IntegrityError, OperationalError):
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


async def _placed_before(session: AsyncSession, customer_id: int, op: str) -> Placed | CheckoutProblem | None:
    order = (await session.execute(select(Order).where(Order.idempotency_key == op))).scalar_one_or_none()
    if order is None:
        return None
    if order.customer_id != customer_id:
        return CheckoutProblem("order.not_found")
    return Placed(order.id, order.number, order.status, again=True)


async def _checkout_once(db, *, customer_id, user, actor, request, now) -> Placed | CartChanged | CheckoutProblem:
    async with db() as session, session.begin():
        before = await _placed_before(session, customer_id, request.op)
        if before is not None:
            return before
        current = await cart(session, customer_id, user.id)
        if not current.lines:
            again = await _placed_before(session, customer_id, request.op)  # a concurrent click of this card
            return again or CheckoutProblem("order.cart_empty")
        if current.fingerprint() != request.fingerprint:
            return CartChanged(current)
        if current.needs_acceptance:
            name = (request.acceptance_name or "").strip()
            email = (request.acceptance_email or "").strip()
            if not request.accepted or not name or len(name) > 200 or not valid_email(email):
                return CheckoutProblem("order.acceptance_needed")
        if request.start_date is not None and not now.date() <= request.start_date <= now.date() + timedelta(days=365):
            return CheckoutProblem("order.start_date_range")
        customer = await session.get(Customer, customer_id)
        policy = Policy.from_json(customer.approval_policy)
        decision = approval_needed(policy, user.role, current.total_monthly)
        order = Order(
            customer_id=customer_id, requester_id=user.id, number=_number(), idempotency_key=request.op,
            status=OrderStatus.AWAITING_APPROVAL if decision.needed else OrderStatus.APPROVED,
            currency=current.currency, total_monthly=current.total_monthly, effective_date=request.start_date,
            acceptance_name=(request.acceptance_name or "").strip() or None if current.needs_acceptance else None,
            acceptance_email=(request.acceptance_email or "").strip() or None if current.needs_acceptance else None,
            accepted_at=now if current.needs_acceptance else None, created_at=now, updated_at=now,
        )
        session.add(order)
        await session.flush()
        for line in current.lines:
            session.add(
                OrderLine(
                    order_id=order.id, offer_id=line.offer.id, quantity=line.quantity, unit_price_monthly=line.offer.unit_price_monthly,
                    term=line.offer.term, billing=line.offer.billing,
                )
            )
        approvers: tuple[int, ...] = ()
        if decision.needed:
            approvers = tuple(
                (
                    await session.execute(
                        select(User.id).where(
                            User.customer_id == customer_id, User.role.in_(decision.approver_roles), User.status == UserStatus.ACTIVE,
                            User.id != user.id,
                        )
                    )
                ).scalars()
            )
            session.add(
                ApprovalRequest(
                    customer_id=customer_id, order_id=order.id, status=ApprovalStatus.PENDING,
                    required_roles=[r.value for r in decision.approver_roles], requested_at=now,
                    due_at=now + timedelta(hours=policy.expire_after_hours), card_activities=[],
                )
            )
            # The approval cards are owed with the order: a process that dies before sending them
            # leaves them in the outbox, and the next delivery (after this turn, or the worker) sends them.
            threshold = str(policy.amount_per_month_threshold) if policy.amount_per_month_threshold is not None else None
            for approver_id in approvers:
                notices.add(
                    session, customer_id=customer_id, user_id=approver_id, kind=notices.APPROVAL_REQUEST,
                    payload={"order_id": order.id, "reason": decision.reason, "threshold": threshold}, now=now,
                )
        await remove_from_cart(session, customer_id=customer_id, user_id=user.id)
        audit.record(
            session, at=now, actor=actor, customer_id=customer_id, action="order", target_type="order", target_id=order.id,
            summary=f"Order {order.number}: " + ", ".join(f"{l.quantity} × {l.product_name}" for l in current.lines),
            source="card", after={"total_monthly": str(current.total_monthly), "status": order.status.value}, reference=order.number,
        )
        return Placed(order.id, order.number, order.status, approvers)


# -- approvals -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decided:
    order_id: int
    number: str
    status: ApprovalStatus
    by: str
    at: datetime
    comment: str | None
    requester_id: int
    card_activities: tuple[dict, ...]
    first: bool  # False: someone else decided before this click


@dataclass(frozen=True)
class DecisionRefused:
    key: str


async def decide(db, *, customer_id: int, user: User, order_id: int, approve: bool, comment: str | None, now: datetime) -> Decided | DecisionRefused:
    async with db() as session, session.begin():
        order = (await session.execute(select(Order).where(Order.id == order_id, Order.customer_id == customer_id))).scalar_one_or_none()
        request = (
            await session.execute(select(ApprovalRequest).where(ApprovalRequest.order_id == order_id, ApprovalRequest.customer_id == customer_id))
        ).scalar_one_or_none()
        if order is None or request is None:
            return DecisionRefused("order.not_found")
        if order.requester_id == user.id:
            return DecisionRefused("approval.own_order")
        if user.role.value not in request.required_roles:
            return DecisionRefused("approval.not_approver")
        if not approve and not (comment or "").strip():
            return DecisionRefused("approval.comment_needed")
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        claimed = await session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request.id, ApprovalRequest.status == ApprovalStatus.PENDING)
            .values(status=status, decided_by_id=user.id, decided_at=now, comment=(comment or "").strip()[:1000] or None)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            await session.refresh(request)
            decider = await session.get(User, request.decided_by_id) if request.decided_by_id else None
            return Decided(order.id, order.number, request.status, decider.name if decider else "Seatdesk", request.decided_at or now, request.comment, order.requester_id, tuple(request.card_activities or ()), first=False)
        order.status = OrderStatus.APPROVED if approve else OrderStatus.REJECTED
        order.updated_at = now
        audit.record(
            session, at=now, actor=audit.Actor(user.name, user.id, customer_id), customer_id=customer_id, action="approve" if approve else "reject",
            target_type="order", target_id=order.id, summary=f"Order {order.number} {'approved' if approve else 'rejected'}" + (f": {comment.strip()}" if comment and comment.strip() else ""),
            source="card", reference=order.number,
        )
        decided = Decided(order.id, order.number, status, user.name, now, (comment or "").strip() or None, order.requester_id, tuple(request.card_activities or ()), first=True)
        await _tell_decision(session, customer_id, decided, decider_id=user.id, now=now)
        return decided


async def _tell_decision(session: AsyncSession, customer_id: int, decided: Decided, *, decider_id: int, now: datetime) -> None:
    """In the transaction of the first decision: every other copy of the order's cards is to show it,
    and the requester is told (the decider's own copy is replaced by the click's answer)."""
    key = "order.approved_notice" if decided.status == ApprovalStatus.APPROVED else "order.rejected_notice"
    values = {"number": decided.number, "by": decided.by, "comment": decided.comment or ""}
    for copy in decided.card_activities:
        if copy.get("user_id") == decider_id:
            continue
        if copy.get("requester"):
            payload = {"order_id": decided.order_id, "activity_id": copy["activity_id"], "key": key, "values": values}
            notices.add(session, customer_id=customer_id, user_id=copy["user_id"], kind=notices.ORDER_CARD_DECIDED, payload=payload, now=now)
        else:
            payload = {"order_id": decided.order_id, "activity_id": copy["activity_id"]}
            notices.add(session, customer_id=customer_id, user_id=copy["user_id"], kind=notices.APPROVAL_CARD_DECIDED, payload=payload, now=now)
    requester = await session.get(User, decided.requester_id)
    notices.add_text(
        session, customer_id=customer_id, user_id=decided.requester_id, key=key, values=values,
        locale=requester.locale if requester else None, now=now,
    )


async def remember_card(db, order_id: int, user_id: int, activity_id: str, *, requester: bool = False) -> None:
    """Keep where a copy of the order's card was posted, so every copy can show the decision."""
    async with db() as session, session.begin():
        request = (await session.execute(select(ApprovalRequest).where(ApprovalRequest.order_id == order_id))).scalar_one()
        request.card_activities = [*request.card_activities, {"user_id": user_id, "activity_id": activity_id, "requester": requester}]


# -- the outbox: submitting approved orders ------------------------------------------------------
@dataclass(frozen=True)
class Submitted:
    provider_order_id: str
    subscription_ids: tuple[int, ...]
    # The provider accepted the order but provisions it later (Partner Center): polled by the worker.
    pending: bool = False


class OrderSubmitter(Protocol):
    async def submit(self, session: AsyncSession, order: Order, *, now: datetime) -> Submitted: ...


class BackendOrders:
    """Orders placed through a provider's ordering backend (services.order_backend: Partner Center's
    cart and checkout), with the order's idempotency key as the request id; polled until provisioned."""

    def __init__(self, backend) -> None:
        self._backend = backend

    async def submit(self, session: AsyncSession, order: Order, *, now: datetime) -> Submitted:
        from services.order_backend import OrderLineRequest
        from services.providers import ProviderError

        customer = await session.get(Customer, order.customer_id)
        result = await self._backend.submit([OrderLineRequest(l.offer_id, l.quantity) for l in order.lines], customer, order.idempotency_key)
        if not result.ok:
            message = " ".join(e.message for e in result.errors) or "The provider did not accept the order."
            raise ProviderError(message, result.errors[0].code if result.errors else "order_refused")
        return Submitted(result.provider_order_id, (), pending=True)

    async def status(self, order: Order, customer: Customer):
        return await self._backend.status(order.provider_order_id, customer)


class LedgerOrders:
    """The built-in ledger: an approved order becomes subscriptions at once, in the same transaction."""

    async def submit(self, session: AsyncSession, order: Order, *, now: datetime) -> Submitted:
        created = []
        start = order.effective_date or now.date()
        for line in order.lines:
            sub = Subscription(
                customer_id=order.customer_id, offer_id=line.offer_id, provider_id=f"{order.number}-{line.id}", quantity=line.quantity,
                status=SubscriptionStatus.ACTIVE, is_trial=False, auto_renew=True, start_date=start, term_start=commerce.start_of_day(start)
                if start > now.date() else now, commitment_end=commerce.commitment_end_for(start, line.term), updated_at=now,
            )
            session.add(sub)
            await session.flush()
            line.subscription_id = sub.id
            created.append(sub.id)
        return Submitted(provider_order_id=order.number, subscription_ids=tuple(created))


@dataclass(frozen=True)
class Provisioned:
    order_id: int
    number: str
    requester_id: int
    approver_id: int | None
    ok: bool
    message: str | None


async def drain_outbox(db, submitter: OrderSubmitter, now: datetime) -> list[Provisioned]:
    """Submit every approved order exactly once (claimed by a conditional update; on PostgreSQL an
    order another instance is submitting is skipped, not waited for)."""
    async with db() as session:
        ids = list((await session.execute(select(Order.id).where(Order.status == OrderStatus.APPROVED).order_by(Order.id))).scalars())
    done: list[Provisioned] = []
    for order_id in ids:
        try:
            result = await _submit(db, submitter, order_id, now)
        except OperationalError:
            log.info("order %s is being submitted elsewhere", order_id)
            continue
        if result is not None:
            done.append(result)
    return done


async def _submit(db, submitter, order_id: int, now: datetime) -> Provisioned | None:
    from services.providers import ProviderError

    try:
        async with db() as session, session.begin():
            # The claim's row lock is held while the provider is called: another instance skips it.
            approved = select(Order.id).where(Order.id == order_id, Order.status == OrderStatus.APPROVED).with_for_update(skip_locked=True).scalar_subquery()
            claimed = await session.execute(
                update(Order).where(Order.id == approved).values(status=OrderStatus.SUBMITTED, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                return None
            order = await session.get(Order, order_id)
            await session.refresh(order, ["lines"])
            submitted = await submitter.submit(session, order, now=now)
            order.provider_order_id = submitted.provider_order_id
            if submitted.pending:
                return None  # stays "submitted" until poll_submitted sees it provisioned
            order.status = OrderStatus.COMPLETED
            approval = (await session.execute(select(ApprovalRequest).where(ApprovalRequest.order_id == order.id))).scalar_one_or_none()
            audit.record(
                session, at=now, actor=audit.SEATDESK, customer_id=order.customer_id, action="provisioned", target_type="order", target_id=order.id,
                summary=f"Order {order.number} provisioned", source="worker", reference=order.number,
            )
            provisioned = Provisioned(order.id, order.number, order.requester_id, approval.decided_by_id if approval else None, True, None)
            await _tell_outcome(session, order.customer_id, provisioned, now)
            return provisioned
    except ProviderError as error:
        async with db() as session, session.begin():
            order = await session.get(Order, order_id)
            order.status = OrderStatus.FAILED
            order.failure_reason = error.message
            order.updated_at = now
            approval = (await session.execute(select(ApprovalRequest).where(ApprovalRequest.order_id == order.id))).scalar_one_or_none()
            audit.record(
                session, at=now, actor=audit.SEATDESK, customer_id=order.customer_id, action="provisioning_failed", target_type="order",
                target_id=order.id, summary=f"Order {order.number} failed: {error.message}", source="worker", outcome="refused", reason=error.code,
                reference=order.number,
            )
            failed = Provisioned(order.id, order.number, order.requester_id, approval.decided_by_id if approval else None, False, error.message)
            await _tell_outcome(session, order.customer_id, failed, now)
            return failed


async def poll_submitted(db, submitter, now: datetime) -> list[Provisioned]:
    """Ask the provider about submitted orders; completed or failed ones are closed and reported."""
    from services.order_backend import OrderState

    if not hasattr(submitter, "status"):
        return []
    async with db() as session:
        ids = list((await session.execute(select(Order.id).where(Order.status == OrderStatus.SUBMITTED, Order.provider_order_id.is_not(None)))).scalars())
    done: list[Provisioned] = []
    for order_id in ids:
        async with db() as session:
            order = await session.get(Order, order_id)
            customer = await session.get(Customer, order.customer_id)
        state = await submitter.status(order, customer)
        if state.status == OrderState.PENDING:
            continue
        ok = state.status == OrderState.COMPLETED
        async with db() as session, session.begin():
            claimed = await session.execute(
                update(Order).where(Order.id == order_id, Order.status == OrderStatus.SUBMITTED)
                .values(status=OrderStatus.COMPLETED if ok else OrderStatus.FAILED, failure_reason=None if ok else state.message, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                continue
            approval = (await session.execute(select(ApprovalRequest).where(ApprovalRequest.order_id == order_id))).scalar_one_or_none()
            audit.record(
                session, at=now, actor=audit.SEATDESK, customer_id=order.customer_id, action="provisioned" if ok else "provisioning_failed",
                target_type="order", target_id=order_id, summary=f"Order {order.number} " + ("provisioned" if ok else f"failed: {state.message}"),
                source="worker", outcome="applied" if ok else "refused", reference=order.number,
            )
            closed = Provisioned(order_id, order.number, order.requester_id, approval.decided_by_id if approval else None, ok, None if ok else state.message)
            await _tell_outcome(session, order.customer_id, closed, now)
        done.append(closed)
    return done


async def provision(db, submitter: OrderSubmitter, now: datetime) -> list[Provisioned]:
    """Submit approved orders, then ask the provider about submitted ones; each outcome is recorded with
    its notices to the requester (and the approver) in one transaction."""
    return await drain_outbox(db, submitter, now) + await poll_submitted(db, submitter, now)


async def _tell_outcome(session: AsyncSession, customer_id: int, done: Provisioned, now: datetime) -> None:
    """The notices of a provisioned or failed order, in the transaction that records it. Both are worded
    in the requester's language, as they always were."""
    requester = await session.get(User, done.requester_id)
    locale = requester.locale if requester else None
    if not done.ok:
        notices.add_text(session, customer_id=customer_id, user_id=done.requester_id, key="order.failed", values={"number": done.number, "reason": done.message or ""}, locale=locale, now=now)
        return
    notices.add_text(session, customer_id=customer_id, user_id=done.requester_id, key="order.provisioned", values={"number": done.number}, locale=locale, now=now)
    if done.approver_id:
        notices.add_text(session, customer_id=customer_id, user_id=done.approver_id, key="order.provisioned_approver", values={"number": done.number}, locale=locale, now=now)


@dataclass(frozen=True)
class Reminder:
    order_id: int
    number: str
    approver_ids: tuple[int, ...]
    requester_id: int
    expired: bool
    card_activities: tuple[dict, ...]


async def remind_and_expire(db, now: datetime) -> list[Reminder]:
    out: list[Reminder] = []
    async with db() as session:
        pending = list((await session.execute(select(ApprovalRequest).where(ApprovalRequest.status == ApprovalStatus.PENDING))).scalars())
    for request in pending:
        async with db() as session, session.begin():
            customer = await session.get(Customer, request.customer_id)
            policy = Policy.from_json(customer.approval_policy)
            order = await session.get(Order, request.order_id)
            approvers = tuple(
                (
                    await session.execute(
                        select(User.id).where(
                            User.customer_id == request.customer_id, User.role.in_([Role(r) for r in request.required_roles]),
                            User.status == UserStatus.ACTIVE, User.id != order.requester_id,
                        )
                    )
                ).scalars()
            )
            if now >= request.due_at:
                claimed = await session.execute(
                    update(ApprovalRequest).where(ApprovalRequest.id == request.id, ApprovalRequest.status == ApprovalStatus.PENDING)
                    .values(status=ApprovalStatus.EXPIRED, decided_at=now).execution_options(synchronize_session=False)
                )
                if claimed.rowcount == 1:
                    order.status = OrderStatus.EXPIRED
                    order.updated_at = now
                    audit.record(
                        session, at=now, actor=audit.SEATDESK, customer_id=order.customer_id, action="expire", target_type="order", target_id=order.id,
                        summary=f"Order {order.number} expired without a decision", source="worker", reference=order.number,
                    )
                    reminder = Reminder(order.id, order.number, approvers, order.requester_id, True, tuple(request.card_activities or ()))
                    await _tell_reminder(session, order, reminder, now)
                    out.append(reminder)
            elif request.reminded_at is None and now >= request.requested_at + timedelta(hours=policy.remind_after_hours):
                claimed = await session.execute(
                    update(ApprovalRequest).where(ApprovalRequest.id == request.id, ApprovalRequest.reminded_at.is_(None))
                    .values(reminded_at=now).execution_options(synchronize_session=False)
                )
                if claimed.rowcount == 1:
                    reminder = Reminder(order.id, order.number, approvers, order.requester_id, False, tuple(request.card_activities or ()))
                    await _tell_reminder(session, order, reminder, now)
                    out.append(reminder)
    return out


async def _tell_reminder(session: AsyncSession, order: Order, item: Reminder, now: datetime) -> None:
    """In the transaction that claims the reminder or the expiry: the approvers are reminded (in the
    default language, as they always were); on expiry the requester is told and every copy of the
    approval card shows that it is decided."""
    requester = await session.get(User, item.requester_id)
    if not item.expired:
        for approver_id in item.approver_ids:
            notices.add_text(
                session, customer_id=order.customer_id, user_id=approver_id, key="approval.reminder",
                values={"number": item.number, "requester": requester.name}, locale=None, now=now,
            )
        return
    notices.add_text(
        session, customer_id=order.customer_id, user_id=item.requester_id, key="order.expired_notice", values={"number": item.number},
        locale=requester.locale if requester else None, now=now,
    )
    for copy in item.card_activities:
        notices.add(
            session, customer_id=order.customer_id, user_id=copy["user_id"], kind=notices.APPROVAL_CARD_DECIDED,
            payload={"order_id": order.id, "activity_id": copy["activity_id"]}, now=now,
        )


# -- reading orders ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderLineView:
    product_name: str
    quantity: int
    term: Term
    billing: BillingCycle
    unit_price_monthly: Decimal

    @property
    def monthly(self) -> Decimal:
        return commerce.monthly_cost(self.unit_price_monthly, self.quantity)


@dataclass(frozen=True)
class OrderView:
    id: int
    number: str
    status: OrderStatus
    requester: str
    requester_id: int
    created_at: datetime
    total_monthly: Decimal
    currency: str
    lines: tuple[OrderLineView, ...]
    approver: str | None
    decided_at: datetime | None
    comment: str | None
    failure_reason: str | None
    acceptance_name: str | None
    effective_date: date | None


async def order_views(session: AsyncSession, customer_id: int, *, requester_id: int | None = None, order_id: int | None = None, limit: int = 10, offset: int = 0) -> list[OrderView]:
    query = select(Order).where(Order.customer_id == customer_id).order_by(Order.created_at.desc(), Order.id.desc())
    if requester_id is not None:
        query = query.where(Order.requester_id == requester_id)
    if order_id is not None:
        query = query.where(Order.id == order_id)
    orders = list((await session.execute(query.limit(limit).offset(offset))).scalars())
    users = {u.id: u.name for u in (await session.execute(select(User).where(User.customer_id == customer_id))).scalars()}
    approvals = {
        a.order_id: a
        for a in (await session.execute(select(ApprovalRequest).where(ApprovalRequest.order_id.in_([o.id for o in orders])))).scalars()
    }
    offers = {o.id: o for o in (await session.execute(select(Offer).where(Offer.id.in_([l.offer_id for o in orders for l in o.lines])))).scalars()}
    out = []
    for o in orders:
        approval = approvals.get(o.id)
        decider = users.get(approval.decided_by_id) if approval and approval.decided_by_id else None
        out.append(
            OrderView(
                o.id, o.number, o.status, users.get(o.requester_id, "?"), o.requester_id, o.created_at, o.total_monthly, o.currency,
                tuple(OrderLineView(offers[l.offer_id].product.name, l.quantity, l.term, l.billing, l.unit_price_monthly) for l in o.lines),
                decider, approval.decided_at if approval else None, approval.comment if approval else None, o.failure_reason,
                o.acceptance_name, o.effective_date,
            )
        )
    return out
