"""Microsoft Graph in a customer's tenant (app-only, with that customer's consent): which SKUs the
tenant has and how many seats are assigned, who has a licence, and assigning or removing licences.

`LicencePort` is what the dialogs use; `GraphClient` implements it over HTTP with the same
resilience rules as Partner Center (services/partnercenter.py: ApiClient). `licence_insights` is a
pure function: seats paid for but not assigned, per subscription.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, Sequence

from services.partnercenter import ApiClient, ApiError, ApiUnavailable, NotConnected, PartnerCenterConfig, RateLimiter, TokenSource

MAX_USERS_PER_ASSIGNMENT = 20


@dataclass(frozen=True)
class SubscribedSku:
    sku_id: str
    sku_part_number: str
    enabled: int  # prepaidUnits.enabled: seats paid for
    consumed: int  # consumedUnits: seats assigned

    @property
    def unassigned(self) -> int:
        return max(0, self.enabled - self.consumed)

    @classmethod
    def from_json(cls, data: dict) -> "SubscribedSku":
        prepaid = data.get("prepaidUnits") or {}
        return cls(str(data.get("skuId")), str(data.get("skuPartNumber") or ""), int(prepaid.get("enabled") or 0), int(data.get("consumedUnits") or 0))


@dataclass(frozen=True)
class GraphUser:
    id: str
    display_name: str
    user_principal_name: str

    @classmethod
    def from_json(cls, data: dict) -> "GraphUser":
        return cls(str(data["id"]), str(data.get("displayName") or ""), str(data.get("userPrincipalName") or ""))


@dataclass(frozen=True)
class AssignmentResult:
    user: GraphUser
    ok: bool
    message: str = ""


class LicenceError(Exception):
    """Graph could not be asked (no consent, not reachable); `code` for the sentence to show."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code  # not_consented | unavailable | refused
        self.detail = detail


class LicencePort(Protocol):
    async def subscribed_skus(self, tenant: str) -> list[SubscribedSku]: ...

    async def find_users(self, tenant: str, name: str) -> list[GraphUser]: ...

    async def get_user(self, tenant: str, user_id: str) -> GraphUser | None: ...

    async def users_with_sku(self, tenant: str, sku_id: str) -> list[GraphUser]: ...

    async def assigned_skus(self, tenant: str, user_id: str) -> set[str] | None:
        """The SKU ids (lower case) assigned to a user of this tenant; None when there is no such user."""
        ...

    async def assign(self, tenant: str, users: Sequence[GraphUser], *, add: str | None = None, remove: str | None = None, key: str) -> list[AssignmentResult]: ...


def _odata_text(value: str) -> str:
    return value.replace("'", "''")


class GraphClient:
    """LicencePort over Microsoft Graph v1.0."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, config: PartnerCenterConfig, tokens: TokenSource | None = None, **client_options: Any) -> "GraphClient":
        tokens = tokens or TokenSource(config.credentials, config.authority_url)
        limiter = client_options.pop("limiter", None) or RateLimiter(config.requests_per_minute)
        client = ApiClient(config.graph_url, tokens, config.graph_scope, timeout_seconds=config.timeout_seconds, retry=config.retry, limiter=limiter, **client_options)
        return cls(client)

    async def close(self) -> None:
        await self._client.close()

    async def _get(self, tenant: str, path: str, **options: Any) -> Any:
        try:
            return (await self._client.request("GET", "/v1.0" + path if path.startswith("/") else path, tenant=tenant, **options)).body
        except NotConnected as error:
            raise LicenceError("not_consented", str(error)) from error
        except ApiUnavailable as error:
            raise LicenceError("unavailable", str(error)) from error
        except ApiError as error:
            if error.status in (401, 403):
                raise LicenceError("not_consented", error.description) from error
            raise LicenceError("refused", error.description) from error

    async def _values(self, tenant: str, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None, limit: int = 999) -> list[dict]:
        body = await self._get(tenant, path, params=params, headers=headers)
        values: list[dict] = []
        while True:
            values.extend(v for v in (body or {}).get("value") or [] if isinstance(v, dict))
            following = (body or {}).get("@odata.nextLink")
            if not following or len(values) >= limit:
                return values[:limit]
            body = await self._get(tenant, following, headers=headers)

    async def subscribed_skus(self, tenant: str) -> list[SubscribedSku]:
        return [SubscribedSku.from_json(v) for v in await self._values(tenant, "/subscribedSkus")]

    async def find_users(self, tenant: str, name: str) -> list[GraphUser]:
        text = _odata_text(name.strip())
        params = {
            "$filter": f"startswith(displayName,'{text}') or startswith(givenName,'{text}') or startswith(userPrincipalName,'{text}')",
            "$select": "id,displayName,userPrincipalName",
            "$top": "25",
        }
        return [GraphUser.from_json(v) for v in await self._values(tenant, "/users", params=params, limit=25)]

    async def get_user(self, tenant: str, user_id: str) -> GraphUser | None:
        try:
            uuid.UUID(user_id)
        except ValueError:
            return None
        try:
            return GraphUser.from_json(await self._get(tenant, f"/users/{user_id}", params={"$select": "id,displayName,userPrincipalName"}))
        except LicenceError as error:
            if error.code == "refused":
                return None  # not a user of this tenant
            raise

    async def assigned_skus(self, tenant: str, user_id: str) -> set[str] | None:
        try:
            uuid.UUID(user_id)
        except ValueError:
            return None
        try:
            body = await self._get(tenant, f"/users/{user_id}", params={"$select": "id,assignedLicenses"})
        except LicenceError as error:
            if error.code == "refused":
                return None  # not a user of this tenant
            raise
        licences = (body or {}).get("assignedLicenses") or []
        return {str(item.get("skuId")).lower() for item in licences if isinstance(item, dict) and item.get("skuId")}

    async def users_with_sku(self, tenant: str, sku_id: str) -> list[GraphUser]:
        params = {
            "$filter": f"assignedLicenses/any(x:x/skuId eq {uuid.UUID(sku_id)})",
            "$select": "id,displayName,userPrincipalName",
            "$count": "true",
        }
        # Filtering on assignedLicenses is an advanced query: it needs ConsistencyLevel: eventual.
        return [GraphUser.from_json(v) for v in await self._values(tenant, "/users", params=params, headers={"ConsistencyLevel": "eventual"})]

    async def assign(self, tenant: str, users: Sequence[GraphUser], *, add: str | None = None, remove: str | None = None, key: str) -> list[AssignmentResult]:
        if len(users) > MAX_USERS_PER_ASSIGNMENT:
            raise ValueError(f"at most {MAX_USERS_PER_ASSIGNMENT} users at a time")
        body = {"addLicenses": [{"skuId": add, "disabledPlans": []}] if add else [], "removeLicenses": [remove] if remove else []}

        async def one(index: int, user: GraphUser) -> AssignmentResult:
            request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"seatdesk:{key}:{user.id}"))
            try:
                await self._client.request(
                    "POST", f"/v1.0/users/{user.id}/assignLicense", tenant=tenant, json=body,
                    headers={"client-request-id": request_id}, request_id=request_id,
                )
                return AssignmentResult(user, True)
            except ApiError as error:
                return AssignmentResult(user, False, error.description or error.code)
            except ApiUnavailable as error:
                return AssignmentResult(user, False, "Microsoft Graph did not answer")
            except NotConnected as error:
                raise LicenceError("not_consented", str(error)) from error

        return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(users))))


# -- insights --------------------------------------------------------------------------------
@dataclass(frozen=True)
class LicensedSubscription:
    """What the insight needs of a subscription (services.subscriptions.SubscriptionView has it)."""

    id: int
    name: str
    quantity: int
    graph_sku_id: str | None
    sku_part_number: str | None
    active: bool = True


@dataclass(frozen=True)
class UnassignedSeats:
    subscription_id: int
    name: str
    quantity: int
    assigned: int
    paid: int
    unassigned: int

    @property
    def suggested_quantity(self) -> int:
        return max(1, self.quantity - self.unassigned)


def _matches(sub: LicensedSubscription, sku: SubscribedSku) -> bool:
    if sub.graph_sku_id and sub.graph_sku_id.lower() == sku.sku_id.lower():
        return True
    return bool(sub.sku_part_number) and sub.sku_part_number.upper() == sku.sku_part_number.upper()


def licence_insights(subscriptions: Iterable[LicensedSubscription], skus: Iterable[SubscribedSku]) -> list[UnassignedSeats]:
    """Seats paid for but not assigned, per SKU, put on the subscription that can give them back:
    the largest active one of that SKU (Graph counts seats per SKU, not per subscription)."""
    active = [s for s in subscriptions if s.active]
    out: list[UnassignedSeats] = []
    for sku in skus:
        if sku.unassigned <= 0:
            continue
        mine = [s for s in active if _matches(s, sku)]
        if not mine:
            continue
        target = max(mine, key=lambda s: (s.quantity, -s.id))
        unassigned = min(sku.unassigned, max(0, target.quantity - 1))
        if unassigned <= 0:
            continue
        out.append(UnassignedSeats(target.id, target.name, target.quantity, sku.consumed, sku.enabled, unassigned))
    return sorted(out, key=lambda u: (-u.unassigned, u.name))


def assigned_by_subscription(subscriptions: Iterable[LicensedSubscription], skus: Iterable[SubscribedSku]) -> dict[int, int]:
    """Assigned seats to show per subscription: a SKU's consumed units, when exactly one subscription has that SKU."""
    active = [s for s in subscriptions if s.active]
    out: dict[int, int] = {}
    for sku in skus:
        mine = [s for s in active if _matches(s, sku)]
        if len(mine) == 1:
            out[mine[0].id] = sku.consumed
    return out


async def refresh_assigned_seats(db, graph: LicencePort) -> dict[str, int]:
    """Write each subscription's assigned seats (Graph's consumedUnits) into Seatdesk, customer by
    customer; a customer without consent or an unreachable Graph is skipped and tried next time."""
    import logging

    from sqlalchemy import select

    from services.models import Customer, Offer, Product, Subscription, SubscriptionStatus

    log = logging.getLogger("seatdesk.graph")
    counts = {"updated": 0, "skipped_customers": 0}
    async with db() as session:
        customers = list((await session.execute(select(Customer).where(Customer.is_partner.is_(False)))).scalars())
    for customer in customers:
        try:
            skus = await graph.subscribed_skus(customer.tenant_id)
        except LicenceError as error:
            log.info("assigned seats of %s not refreshed: %s", customer.key, error.code)
            counts["skipped_customers"] += 1
            continue
        async with db() as session, session.begin():
            rows = (
                await session.execute(
                    select(Subscription, Product)
                    .join(Offer, Offer.id == Subscription.offer_id)
                    .join(Product, Product.id == Offer.product_id)
                    .where(Subscription.customer_id == customer.id)
                )
            ).all()
            licensed = [
                LicensedSubscription(s.id, s.display_name, s.quantity, p.graph_sku_id, p.sku_part_number, s.status == SubscriptionStatus.ACTIVE)
                for s, p in rows
            ]
            assigned = assigned_by_subscription(licensed, skus)
            for sub, _ in rows:
                if sub.id in assigned and sub.assigned_seats != assigned[sub.id]:
                    # A plain column update: the subscription's version (what cards were built from) is not a seat change.
                    await session.execute(
                        Subscription.__table__.update().where(Subscription.id == sub.id).values(assigned_seats=assigned[sub.id])
                    )
                    counts["updated"] += 1
    return counts
