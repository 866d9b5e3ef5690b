"""Who is talking: from a Teams activity's tenant and Entra object id to a customer, a user and a role.

This is the only place that turns an identity into a customer id; every query for customer
data takes that id (`Identity.customer_id`) and filters by it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

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


# One statement on every turn: the tenant's customer, this person when registered, and the customer
# an MSP technician acts for. Built once and columns only, so SQLAlchemy neither rebuilds nor re-keys
# it per turn, nor builds entities that the turn throws away.
_ACTING = aliased(Customer)
WHO_IS_TALKING = (
    select(
        Customer.id.label("customer_id"),
        Customer.name.label("customer_name"),
        Customer.is_partner,
        User.id.label("user_id"),
        User.name.label("user_name"),
        User.email,
        User.role,
        User.status,
        User.is_partner_staff,
        User.locale,
        _ACTING.id.label("acting_id"),
        _ACTING.name.label("acting_name"),
    )
    .outerjoin(User, (User.customer_id == Customer.id) & (User.aad_object_id == bindparam("person")))
    .outerjoin(_ACTING, _ACTING.id == User.acting_for_customer_id)
    .where(Customer.tenant_id == bindparam("tenant"))
)


def who_is_talking(tenant_id: str | None, aad_object_id: str | None) -> dict[str, str] | None:
    """The parameters of WHO_IS_TALKING for an activity's tenant and Entra object id; None when it has none."""
    if not tenant_id or not aad_object_id:
        return None
    return {"tenant": tenant_id.lower(), "person": aad_object_id.lower()}


async def resolve_identity(
    db: AsyncSession | AsyncConnection, tenant_id: str | None, aad_object_id: str | None
) -> Identity | NotRegistered:
    parameters = who_is_talking(tenant_id, aad_object_id)
    if parameters is None:
        return NotRegistered.NO_IDENTITY
    return identity_of((await db.execute(WHO_IS_TALKING, parameters)).first())


def identity_of(found) -> Identity | NotRegistered:
    """Who is talking, from a row of WHO_IS_TALKING (or of a statement that extends it); None: no such tenant."""
    if found is None:
        return NotRegistered.UNKNOWN_TENANT
    if found.user_id is None:
        return NotRegistered.UNKNOWN_USER
    if found.status != UserStatus.ACTIVE:
        return NotRegistered.DISABLED
    staff = found.is_partner_staff and found.is_partner
    return Identity(
        user_id=found.user_id,
        name=found.user_name,
        email=found.email,
        role=found.role,
        home_customer_id=found.customer_id,
        home_customer_name=found.customer_name,
        is_partner_staff=staff,
        customer_id=found.acting_id if staff else found.customer_id,
        customer_name=found.acting_name if staff else found.customer_name,
        locale=found.locale,
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
