"""The people Seatdesk knows, as an MSP admin lists them."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import select

from services.models import Customer, User


@dataclass(frozen=True)
class KnownUser:
    customer: str
    tenant_id: str
    aad_object_id: str
    email: str
    name: str
    role: str
    status: str
    partner_staff: bool

    def as_dict(self) -> dict:
        return asdict(self)


async def list_users(db) -> list[KnownUser]:
    async with db() as session:
        rows = await session.execute(select(User, Customer).join(Customer, User.customer_id == Customer.id).order_by(Customer.name, User.role, User.name))
        return [
            KnownUser(
                customer=c.name,
                tenant_id=c.tenant_id,
                aad_object_id=u.aad_object_id,
                email=u.email,
                name=u.name,
                role=u.role.value,
                status=u.status.value,
                partner_staff=u.is_partner_staff,
            )
            for u, c in rows
        ]
