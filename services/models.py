"""Seatdesk's domain, stored through SQLAlchemy 2.x (SQLite by default, PostgreSQL where it scales).

Every table that holds a customer's data carries `customer_id`; queries in `services/` always
filter by it (see `services.tenancy.CustomerScope`).
"""
from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in Python on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use timezone-aware UTC")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Money(TypeDecorator):
    """Exact Decimal amounts: NUMERIC on PostgreSQL, text on SQLite (which would round through float)."""

    impl = Numeric(14, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(Numeric(14, 4, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect):
        if value is None:
            return None
        value = Decimal(value)
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        amount = Decimal(str(value))
        if dialect.name != "sqlite" and amount == amount.quantize(Decimal("0.01")):
            # NUMERIC(14,4) pads to four places: money reads back as it is written, "6.72".
            amount = amount.quantize(Decimal("0.01"))
        return amount


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, Decimal: Money, dict[str, Any]: JSON, list[Any]: JSON}


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=24, values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Role(str, enum.Enum):
    VIEW = "view"
    MODIFY = "modify"
    FINANCE = "finance"
    ADMIN = "admin"


class UserStatus(str, enum.Enum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Term(str, enum.Enum):
    P1M = "P1M"
    P1Y = "P1Y"
    P3Y = "P3Y"


class BillingCycle(str, enum.Enum):
    MONTHLY = "monthly"
    ANNUAL = "annual"
    TRIENNIAL = "triennial"
    NONE = "none"


class SubscriptionStatus(str, enum.Enum):
    ACTIVE = "active"
    PENDING = "pending"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    DELETED = "deleted"
    DISABLED = "disabled"


class ChangeKind(str, enum.Enum):
    QUANTITY = "quantity"
    OFFER = "offer"


class ChangeTiming(str, enum.Enum):
    AT_RENEWAL = "at_renewal"
    ON_DATE = "on_date"


class ChangeStatus(str, enum.Enum):
    PENDING = "pending"
    APPLIED = "applied"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"


class OrderStatus(str, enum.Enum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"


class ApprovalStatus(str, enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class CasePriority(str, enum.Enum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class CaseStatus(str, enum.Enum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_CUSTOMER = "waiting_for_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class QuestionKind(str, enum.Enum):
    TEXT = "text"
    CHOICE = "choice"
    YES_NO = "yes_no"
    DATE = "date"


class OutageKind(str, enum.Enum):
    MAINTENANCE = "maintenance"
    INCIDENT = "incident"


class Catalog(Base):
    """The global catalog, or a custom catalog assigned to some customers."""

    __tablename__ = "catalogs"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_global: Mapped[bool] = mapped_column(Boolean, default=False)
    products: Mapped[list["Product"]] = relationship(secondary="catalog_products", lazy="raise")


class Product(Base):
    """A product/SKU as the customer knows it (e.g. Microsoft 365 Business Premium)."""

    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[Any]] = mapped_column(default=list)
    category: Mapped[str] = mapped_column(String(100), default="Microsoft 365")
    description: Mapped[str] = mapped_column(Text, default="")
    provider_product_id: Mapped[str | None] = mapped_column(String(64))
    provider_sku_id: Mapped[str | None] = mapped_column(String(64))
    addon_of_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    # How Microsoft Graph names this SKU in a customer's tenant (subscribedSkus), for assigned seats.
    graph_sku_id: Mapped[str | None] = mapped_column(String(64))
    sku_part_number: Mapped[str | None] = mapped_column(String(64))
    offers: Mapped[list["Offer"]] = relationship(back_populates="product", lazy="raise", order_by="Offer.id")


class CatalogProduct(Base):
    __tablename__ = "catalog_products"
    catalog_id: Mapped[int] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)


class Offer(Base):
    """One way to buy a product: term × billing cycle, with its price per seat and month."""

    __tablename__ = "offers"
    __table_args__ = (UniqueConstraint("product_id", "term", "billing", "is_trial"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    catalog_item_id: Mapped[str | None] = mapped_column(String(128))
    term: Mapped[Term] = mapped_column(_enum(Term))
    billing: Mapped[BillingCycle] = mapped_column(_enum(BillingCycle))
    is_trial: Mapped[bool] = mapped_column(Boolean, default=False)
    unit_price_monthly: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    cancellation_window_hours: Mapped[int] = mapped_column(Integer, default=168)
    min_quantity: Mapped[int] = mapped_column(Integer, default=1)
    max_quantity: Mapped[int] = mapped_column(Integer, default=300)
    product: Mapped[Product] = relationship(back_populates="offers", lazy="joined")


class Customer(Base):
    """A customer company of the reseller, identified by its Entra tenant."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(200), default="")
    is_partner: Mapped[bool] = mapped_column(Boolean, default=False)
    catalog_id: Mapped[int | None] = mapped_column(ForeignKey("catalogs.id"))
    approval_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class User(Base):
    """A person Seatdesk knows, by Entra object id within the customer's tenant."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("customer_id", "aad_object_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    aad_object_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role))
    status: Mapped[UserStatus] = mapped_column(_enum(UserStatus), default=UserStatus.ACTIVE)
    is_partner_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    # The customer an MSP technician is currently acting for (None: not chosen yet).
    acting_for_customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    locale: Mapped[str | None] = mapped_column(String(16))


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("customer_id", "provider_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"))
    provider_id: Mapped[str] = mapped_column(String(64))
    nickname: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    assigned_seats: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[SubscriptionStatus] = mapped_column(_enum(SubscriptionStatus))
    is_trial: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    start_date: Mapped[date] = mapped_column(Date)
    term_start: Mapped[datetime]
    commitment_end: Mapped[date] = mapped_column(Date)
    # Set by the provider when it says so (Partner Center's cancellationAllowedUntilDate).
    cancellation_allowed_until: Mapped[datetime | None]
    # A mid-term seat add opens a window of its own for the added seats only.
    seat_add_window_until: Mapped[datetime | None]
    quantity_before_add: Mapped[int | None] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    # The provider's e-tag of the resource last mirrored here (Partner Center's attributes.etag).
    provider_etag: Mapped[str | None] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime]
    offer: Mapped[Offer] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": version}

    @property
    def display_name(self) -> str:
        return self.nickname or self.offer.product.name


class ScheduledChange(Base):
    __tablename__ = "scheduled_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ChangeKind] = mapped_column(_enum(ChangeKind), default=ChangeKind.QUANTITY)
    timing: Mapped[ChangeTiming] = mapped_column(_enum(ChangeTiming))
    effective_date: Mapped[date | None] = mapped_column(Date)
    new_quantity: Mapped[int | None] = mapped_column(Integer)
    new_offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id"))
    status: Mapped[ChangeStatus] = mapped_column(_enum(ChangeStatus), default=ChangeStatus.PENDING, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
    reference: Mapped[str | None] = mapped_column(String(32), unique=True)


class AuditEntry(Base):
    """Who did or tried what, when, before and after: appended, never updated."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_customer_target", "customer_id", "target_type", "target_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(16), default="applied")
    reason: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(32))


class CartItem(Base):
    __tablename__ = "cart_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    separate_subscription: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime]


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    number: Mapped[str] = mapped_column(String(32), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus), index=True)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    total_monthly: Mapped[Decimal]
    effective_date: Mapped[date | None] = mapped_column(Date)
    acceptance_name: Mapped[str | None] = mapped_column(String(200))
    acceptance_email: Mapped[str | None] = mapped_column(String(320))
    accepted_at: Mapped[datetime | None]
    provider_order_id: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    lines: Mapped[list["OrderLine"]] = relationship(lazy="selectin", order_by="OrderLine.id")


class OrderLine(Base):
    __tablename__ = "order_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_monthly: Mapped[Decimal]
    term: Mapped[Term] = mapped_column(_enum(Term))
    billing: Mapped[BillingCycle] = mapped_column(_enum(BillingCycle))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))


class ApprovalRequest(Base):
    __tablename__ = "approval_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    status: Mapped[ApprovalStatus] = mapped_column(_enum(ApprovalStatus), index=True)
    required_roles: Mapped[list[Any]] = mapped_column(default=list)
    requested_at: Mapped[datetime]
    due_at: Mapped[datetime]
    reminded_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    # Activity ids of the approval cards sent, so every copy can be updated after a decision.
    card_activities: Mapped[list[Any]] = mapped_column(default=list)


class CaseQuestion(Base):
    """A question the reseller asks when a case is opened; customer_id None = every customer."""

    __tablename__ = "case_questions"
    __table_args__ = (UniqueConstraint("customer_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(300))
    kind: Mapped[QuestionKind] = mapped_column(_enum(QuestionKind))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    choices: Mapped[list[Any]] = mapped_column(default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)


class SupportCase(Base):
    __tablename__ = "support_cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[CasePriority] = mapped_column(_enum(CasePriority), default=CasePriority.NORMAL)
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus), default=CaseStatus.NEW, index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class CaseComment(Base):
    __tablename__ = "case_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("support_cases.id", ondelete="CASCADE"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class CaseAttachment(Base):
    __tablename__ = "case_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("support_cases.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class Outage(Base):
    """Maintenance or an incident; customer_id None = affects every customer."""

    __tablename__ = "outages"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[OutageKind] = mapped_column(_enum(OutageKind))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    services: Mapped[list[Any]] = mapped_column(default=list)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]


class ConversationRef(Base):
    """Where Seatdesk can reach a person proactively (their 1:1 chat), kept from their last message."""

    __tablename__ = "conversation_refs"
    __table_args__ = (UniqueConstraint("user_id", "conversation_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(512))
    conversation_type: Mapped[str] = mapped_column(String(32), default="personal")
    service_url: Mapped[str] = mapped_column(String(512))
    reference: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class BotState(Base):
    """botbuilder's conversation and user state, with an e-tag for optimistic concurrency."""

    __tablename__ = "bot_state"
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    etag: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class Operation(Base):
    """One confirmed change, keyed by the id its confirmation card carried: a second click or a
    retried activity finds it here and gets the same receipt instead of a second change."""

    __tablename__ = "operations"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="done")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]


class OutboxNotice(Base):
    """A message Seatdesk owes a person outside a turn (a scheduled change carried out, an order ready),
    written in the transaction of the change it reports and delivered by the worker (services/notices.py)."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_due", "status", "claimed_until"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # What to say: a kind and what the worker needs to rebuild the replies (a text key and its values, a receipt).
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    # Claimed by a worker until then (a lease), or, after a failed send, not tried again before then.
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class KnowledgeFeedback(Base):
    """"Did this help?" per article and customer, for the reseller to improve its articles."""

    __tablename__ = "knowledge_feedback"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    article_id: Mapped[str] = mapped_column(String(128), index=True)
    question: Mapped[str] = mapped_column(Text)
    helpful: Mapped[bool] = mapped_column(Boolean)
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime]
