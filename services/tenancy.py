"""Who is talking: from a Teams activity's tenant and Entra object id to a customer, a user and a role.

This is the only place that turns an identity into a customer id; every query for customer
data takes that id (`Identity.customer_id`) and filters by it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.models import Customer, Role, User, UserStatus
from services.permissions import Permission, can


class NotRegistered(str, enum.Enum):
    NO_IDENTITY = "no_identity"  # the activity carries no tenant or no Entra object id
    UNKNOWN_TENANT = "unknown_tenant"
    UNKNOWN_USER = "unknown_user"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Identity:
    user_id: int
    name: str
    email: str
    role: Role
    home_customer_id: int
    home_customer_name: str
    is_partner_staff: bool
    # The customer whose data this person sees; for MSP staff the one they chose (None: not yet).
    customer_id: int | None
    customer_name: str | None
    locale: str | None = None

    def can(self, permission: Permission) -> bool:
        return self.customer_id is not None and can(self.role, permission)

    @property
    def acting_for_other(self) -> bool:
        return self.is_partner_staff and self.customer_id not in (None, self.home_customer_id)


# One statement on every turn: the tenant's customer and, when registered, this person. Built once,
# so SQLAlchemy does not rebuild and re-key it per turn.
_WHO_IS_TALKING = (
    select(Customer, User)
    .outerjoin(User, (User.customer_id == Customer.id) & (User.aad_object_id == bindparam("person")))
    .where(Customer.tenant_id == bindparam("tenant"))
)


async def resolve_identity(session: AsyncSession, tenant_id: str | None, aad_object_id: str | None) -> Identity | NotRegistered:
    if not tenant_id or not aad_object_id:
        return NotRegistered.NO_IDENTITY
    found = (await session.execute(_WHO_IS_TALKING, {"tenant": tenant_id.lower(), "person": aad_object_id.lower()})).first()
    if found is None:
        return NotRegistered.UNKNOWN_TENANT
    customer, user = found
    if user is None:
        return NotRegistered.UNKNOWN_USER
    if user.status != UserStatus.ACTIVE:
        return NotRegistered.DISABLED
    if user.is_partner_staff and customer.is_partner:
        acting = None
        if user.acting_for_customer_id is not None:
            acting = await session.get(Customer, user.acting_for_customer_id)
        return Identity(
            user_id=user.id,
            name=user.name,
            email=user.email,
            role=user.role,
            home_customer_id=customer.id,
            home_customer_name=customer.name,
            is_partner_staff=True,
            customer_id=acting.id if acting else None,
            customer_name=acting.name if acting else None,
            locale=user.locale,
        )
    return Identity(
        user_id=user.id,
        name=user.name,
        email=user.email,
        role=user.role,
        home_customer_id=customer.id,
        home_customer_name=customer.name,
        is_partner_staff=False,
        customer_id=customer.id,
        customer_name=customer.name,
        locale=user.locale,
    )


async def served_customers(session: AsyncSession) -> list[Customer]:
    """The customers an MSP technician may act for (never the partner's own tenant)."""
    result = await session.execute(select(Customer).where(Customer.is_partner.is_(False)).order_by(Customer.name))
    return list(result.scalars())


async def act_for(session: AsyncSession, identity: Identity, customer_key: str) -> Customer | None:
    """Let an MSP technician choose the customer to act for; anyone else gets None."""
    if not identity.is_partner_staff:
        return None
    customer = (
        await session.execute(select(Customer).where(Customer.key == customer_key, Customer.is_partner.is_(False)))
    ).scalar_one_or_none()
    if customer is None:
        return None
    user = await session.get(User, identity.user_id)
    user.acting_for_customer_id = customer.id
    return customer


async def admins_of(session: AsyncSession, customer_id: int) -> list[User]:
    result = await session.execute(
        select(User)
        .where(User.customer_id == customer_id, User.role == Role.ADMIN, User.status == UserStatus.ACTIVE)
        .order_by(User.name)
    )
    return list(result.scalars())
