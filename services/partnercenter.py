"""Microsoft Partner Center as the subscription provider (SEATDESK_PROVIDER=partnercenter).

- `ApiClient`: one HTTP call with the resilience rules every Partner Center and Graph call follows —
  a timeout per attempt, 429 honours Retry-After, 5xx and network errors retry with exponential
  backoff and jitter inside a time budget, one MS-RequestId per logical operation reused on every
  retry, MS-CorrelationId tying the call to Seatdesk's audit trail, and a client-side limiter for
  Partner Center's 500 requests per minute per tenant.
- `TokenSource`: app-only tokens from msal (blocking, so it runs in a thread).
- `PartnerCenterProvider`: the `SubscriptionProvider` port — PATCH the full resource with If-Match
  first, then update the local mirror row in the caller's transaction.
- `catalog_sync`, `subscription_sync`: scheduled reconciliation, every difference in the audit trail.
- `PartnerCenterOrderBackend` lives in services/order_backend.py and calls `PartnerCenter` here.

Wire formats: /work/shared/notes/csp-commerce.md and tests/partnercenter/fixtures/ (with sources).
"""
from __future__ import annotations

import asyncio
import collections
import email.utils
import json as jsonlib
import logging
import random
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import audit, commerce
from services.models import (
    BillingCycle,
    CatalogProduct,
    Catalog,
    Customer,
    Offer,
    Product,
    ScheduledChange,
    Subscription,
    SubscriptionStatus,
    Term,
)
from services.providers import LedgerProvider, ProviderError
from services.periodic import Periodic
from services.scheduler import due_on_date
from services.subscription_changes import in_flight

log = logging.getLogger("seatdesk.partnercenter")

# MS-RequestId and MS-CorrelationId are derived from Seatdesk's own operation key, so that a
# retried confirmation (a second click, Teams retrying the activity) sends the same ids again.
_NAMESPACE = uuid.UUID("5b0f8a52-2b6e-4c1f-9d55-2f2a0f4f7d10")

# The sentences a user reads when Partner Center refuses or is away (one place, reviewed together).
SENTENCES = {
    "window_closed": "Microsoft only allows this inside the cancellation window, and it has closed. You can schedule the change for renewal instead.",
    "quota": "Microsoft's limit for this product has been reached for your company.",
    "changed_remotely": "This subscription was changed in Partner Center since the card was made (it now has {quantity} seats, auto-renew {auto_renew}, status {status}). Nothing was changed; open the subscription again to see it as it is now.",
    "conflict": "Partner Center kept reporting a newer version of this subscription. Nothing was changed; please try again in a minute.",
    "unavailable": "Partner Center is not answering right now. Nothing was changed; please try again later.",
    "unconfirmed": "Partner Center did not confirm the change in time. Seatdesk checks with Partner Center and finishes it; you'll get the result here.",
    "not_connected": "Seatdesk could not sign in to Partner Center. Nothing was changed; your reseller has been told.",
    "refused": "Partner Center refused: {description}",
    "not_found": "Partner Center does not know this subscription any more.",
}

# Error codes Partner Center answers with (error bodies are {code, description, data, source}).
ETAG_CONFLICT_CODES = {"2055"}
WINDOW_CLOSED_CODES = {"900117", "900213"}
QUOTA_CODES = {"10002", "800002"}


def request_id_for(key: str, attempt: int = 0) -> str:
    """MS-RequestId of a logical operation; a re-validated retry after a 412 is a new request."""
    return str(uuid.uuid5(_NAMESPACE, f"request:{key}" + (f":{attempt}" if attempt else "")))


def correlation_id_for(key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"correlation:{key}"))


# -- configuration ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Credentials:
    tenant_id: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    certificate_path: str = ""
    certificate_thumbprint: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0
    # Total seconds spent waiting between attempts of one call; beyond it the call gives up.
    budget_seconds: float = 45.0


@dataclass(frozen=True)
class PartnerCenterConfig:
    credentials: Credentials
    partner_center_url: str = "https://api.partnercenter.microsoft.com"
    graph_url: str = "https://graph.microsoft.com"
    authority_url: str = "https://login.microsoftonline.com"
    country: str = "DE"
    segment: str = "commercial"
    timeout_seconds: float = 20.0
    sync_interval_seconds: float = 900.0
    requests_per_minute: int = 500
    retry: RetryPolicy = RetryPolicy()

    @property
    def partner_center_scope(self) -> str:
        return f"{self.partner_center_url}/.default"

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_url}/.default"


# -- errors ----------------------------------------------------------------------------------
class ApiError(Exception):
    """The service answered with a 4xx it means (not worth retrying)."""

    def __init__(self, status: int, code: str, description: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status} code {code}: {description}")
        self.status = status
        self.code = code
        self.description = description
        self.body = body


class ApiUnavailable(Exception):
    """Timeouts, 5xx or throttling outlasted the retry budget."""


class NotConnected(Exception):
    """No token: wrong credentials, or the customer has not consented (Graph)."""

    def __init__(self, message: str, codes: list[int] | None = None) -> None:
        super().__init__(message)
        self.codes = codes or []


# -- tokens ----------------------------------------------------------------------------------
_PUBLIC_AUTHORITY_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn", "login.partner.microsoftonline.cn")


class TokenSource:
    """App-only tokens (client credentials) per tenant: the partner's tenant for Partner Center,
    a customer's tenant for Graph. msal caches a token while more than 5 minutes of it remain."""

    def __init__(self, credentials: Credentials, authority_url: str, *, app_factory: Callable[..., Any] | None = None) -> None:
        self._credentials = credentials
        self._authority_url = authority_url.rstrip("/")
        self._apps: dict[str, Any] = {}
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._app_factory = app_factory

    def _credential(self) -> Any:
        creds = self._credentials
        if creds.certificate_path:
            with open(creds.certificate_path, encoding="utf-8") as handle:
                return {"private_key": handle.read(), "thumbprint": creds.certificate_thumbprint}
        return creds.client_secret

    def _new_app(self, tenant: str) -> Any:
        import msal

        factory = self._app_factory or msal.ConfidentialClientApplication
        host = urlsplit(self._authority_url).hostname or ""
        # msal asks login.microsoftonline.com about any other host first; a sovereign or local
        # authority is trusted as configured.
        discovery = None if host in _PUBLIC_AUTHORITY_HOSTS else False
        return factory(
            self._credentials.client_id,
            client_credential=self._credential(),
            authority=f"{self._authority_url}/{tenant}",
            instance_discovery=discovery,
        )

    async def token(self, tenant: str, scope: str) -> str:
        async with self._locks[tenant]:
            app = self._apps.get(tenant)
            if app is None:
                try:
                    # The constructor fetches the tenant's OpenID configuration: blocking I/O.
                    app = await asyncio.to_thread(self._new_app, tenant)
                except ValueError as error:
                    raise NotConnected(f"token authority for {tenant} refused: {error}") from error
                self._apps[tenant] = app
        result = await asyncio.to_thread(app.acquire_token_for_client, scopes=[scope])
        if "access_token" not in result:
            raise NotConnected(f"{result.get('error')}: {result.get('error_description', '')[:200]}", result.get("error_codes"))
        return result["access_token"]


# -- throttling ------------------------------------------------------------------------------
class RateLimiter:
    """At most `per_minute` calls per key in any 60 seconds (Partner Center: 500 per tenant)."""

    def __init__(self, per_minute: int, *, now: Callable[[], float] = time.monotonic, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._limit = per_minute
        self._now = now
        self._sleep = sleep
        self._calls: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = asyncio.Lock()

    async def acquire(self, key: str) -> None:
        while True:
            async with self._lock:
                calls = self._calls[key]
                now = self._now()
                while calls and now - calls[0] >= 60.0:
                    calls.popleft()
                if len(calls) < self._limit:
                    calls.append(now)
                    return
                wait = 60.0 - (now - calls[0])
            await self._sleep(wait)


# -- HTTP ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _error_of(status: int, body: Any) -> ApiError:
    if isinstance(body, dict) and "error" in body and isinstance(body["error"], dict):  # Graph
        inner = body["error"]
        return ApiError(status, str(inner.get("code", status)), str(inner.get("message", "")), body)
    if isinstance(body, dict):  # Partner Center: {code, description, data, source}
        return ApiError(status, str(body.get("code", status)), str(body.get("description", "")), body)
    return ApiError(status, str(status), str(body or "")[:200], body)


class ApiClient:
    """Calls one service (Partner Center or Graph) with the resilience rules of this module."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        scope: str,
        *,
        timeout_seconds: float = 20.0,
        retry: RetryPolicy = RetryPolicy(),
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._scope = scope
        self._timeout = timeout_seconds
        self._retry = retry
        self._limiter = limiter
        self._sleep = sleep
        self._jitter = jitter
        # Built now (not at import), so the CA bundle in SSL_CERT_FILE at start-up is used.
        self._ssl = ssl_context or ssl.create_default_context()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._retry.max_delay, self._retry.base_delay * (2**attempt))
        return ceiling * (0.5 + self._jitter() / 2)  # "equal jitter": never zero, never in lockstep

    def _url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            if not path.startswith(self.base_url + "/"):
                raise ValueError(f"refusing to follow a link to another host: {path}")
            return path
        return self.base_url + path

    async def request(
        self,
        method: str,
        path: str,
        *,
        tenant: str,
        limit_key: str | None = None,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Response:
        """One logical call. `tenant` is whose token; `limit_key` whose rate limit it counts against."""
        request_id = request_id or str(uuid.uuid4())
        correlation_id = correlation_id or str(uuid.uuid4())
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = self._url(path)
        waited = 0.0
        attempt = 0
        while True:
            if self._limiter is not None:
                await self._limiter.acquire(limit_key or tenant)
            try:
                token = await self._tokens.token(tenant, self._scope)
            except NotConnected:
                raise
            sent = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "MS-RequestId": request_id,
                "MS-CorrelationId": correlation_id,
                **(headers or {}),
            }
            why: str
            delay: float
            try:
                async with self._session.request(
                    method, url, params=params, json=json, headers=sent, timeout=aiohttp.ClientTimeout(total=self._timeout), ssl=self._ssl
                ) as response:
                    raw = await response.read()
                    status = response.status
                    got = {k: v for k, v in response.headers.items()}
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                why, delay = type(error).__name__, self._backoff(attempt)
            else:
                body = _parse(raw)
                if status < 400:
                    return Response(status, body, got)
                if status == 429:
                    after = _retry_after(got.get("Retry-After"))
                    why, delay = "429", after if after is not None else self._backoff(attempt)
                elif status >= 500:
                    why, delay = str(status), self._backoff(attempt)
                else:
                    raise _error_of(status, body)
            attempt += 1
            if attempt >= self._retry.attempts or waited + delay > self._retry.budget_seconds:
                log.warning("%s %s gave up after %s attempts (%s) [request %s, correlation %s]", method, path, attempt, why, request_id, correlation_id)
                raise ApiUnavailable(f"{method} {path}: {why} after {attempt} attempts")
            log.info("%s %s: %s, retrying in %.1f s [request %s]", method, path, why, delay, request_id)
            await self._sleep(delay)
            waited += delay


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        return jsonlib.loads(text)
    except ValueError:
        return text


# -- the Partner Center resource model -------------------------------------------------------
def _datetime(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    text = value.replace("Z", "+00:00")
    # Partner Center sends 7 fractional digits; Python takes at most 6.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _term(value: Any) -> Term | None:
    try:
        return Term(str(value).upper())
    except ValueError:
        return None


def _billing(value: Any) -> BillingCycle | None:
    try:
        return BillingCycle(str(value).lower())
    except ValueError:
        return None


def _status(value: Any) -> SubscriptionStatus | None:
    try:
        return SubscriptionStatus(str(value).lower())
    except ValueError:
        return None


@dataclass(frozen=True)
class RemoteSubscription:
    """A Partner Center subscription, read into Seatdesk's terms."""

    id: str
    product_id: str
    sku_id: str
    availability_id: str | None
    name: str
    quantity: int
    status: SubscriptionStatus | None
    auto_renew: bool
    is_trial: bool
    term: Term | None
    billing: BillingCycle | None
    created: datetime | None
    commitment_end: date | None
    cancellation_allowed_until: datetime | None
    refundable_quantity: int | None
    refundable_until: datetime | None
    scheduled_quantity: int | None
    parent_id: str | None
    etag: str | None
    raw: dict

    @property
    def term_start(self) -> datetime | None:
        """The start of the current term: the day after the previous term's inclusive end."""
        if self.commitment_end is None or self.term is None:
            return self.created
        months = commerce.TERM_MONTHS[self.term]
        return commerce.start_of_day(commerce.add_months(self.commitment_end + timedelta(days=1), -months))

    @classmethod
    def from_json(cls, data: dict) -> "RemoteSubscription":
        parts = str(data.get("offerId") or "").split(":")
        product_id, sku_id = parts[0], parts[1] if len(parts) > 1 else ""
        availability = parts[2] if len(parts) > 2 else None
        end = _datetime(data.get("commitmentEndDate"))
        refundable = data.get("refundableQuantity") if isinstance(data.get("refundableQuantity"), dict) else None
        refundable_until = None
        if refundable:
            dates = [_datetime(d.get("allowUntilDateTime")) for d in refundable.get("details") or [] if isinstance(d, dict)]
            dates = [d for d in dates if d]
            refundable_until = max(dates) if dates else None
        scheduled = data.get("scheduledNextTermInstructions")
        attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
        return cls(
            id=str(data["id"]),
            product_id=product_id,
            sku_id=sku_id,
            availability_id=availability,
            name=str(data.get("friendlyName") or data.get("offerName") or product_id),
            quantity=int(data.get("quantity") or 0),
            status=_status(data.get("status")),
            auto_renew=bool(data.get("autoRenewEnabled")),
            is_trial=bool(data.get("isTrial")),
            term=_term(data.get("termDuration")),
            billing=_billing(data.get("billingCycle")),
            created=_datetime(data.get("creationDate")) or _datetime(data.get("effectiveStartDate")),
            commitment_end=end.date() if end else None,
            cancellation_allowed_until=_datetime(data.get("cancellationAllowedUntilDate")),
            refundable_quantity=int(refundable.get("totalQuantity") or 0) if refundable else None,
            refundable_until=refundable_until,
            scheduled_quantity=int(scheduled["quantity"]) if isinstance(scheduled, dict) and scheduled.get("quantity") is not None else None,
            parent_id=str(data["parentSubscriptionId"]) if data.get("parentSubscriptionId") else None,
            etag=attributes.get("etag"),
            raw=data,
        )


def mirror(sub: Subscription, remote: RemoteSubscription) -> dict[str, tuple[Any, Any]]:
    """Copy what Partner Center says onto the local row; returns {field: (before, after)} of changes."""
    wanted: dict[str, Any] = {"quantity": remote.quantity, "auto_renew": remote.auto_renew, "is_trial": remote.is_trial}
    if remote.status is not None:
        wanted["status"] = remote.status
    if remote.commitment_end is not None:
        wanted["commitment_end"] = remote.commitment_end
        wanted["term_start"] = remote.term_start
    wanted["cancellation_allowed_until"] = remote.cancellation_allowed_until
    if remote.refundable_quantity:
        # Seats added mid-term are refundable until their own window closes (refundableQuantity).
        wanted["seat_add_window_until"] = remote.refundable_until
        wanted["quantity_before_add"] = max(0, remote.quantity - remote.refundable_quantity)
    changed: dict[str, tuple[Any, Any]] = {}
    for name, value in wanted.items():
        before = getattr(sub, name)
        if before != value:
            changed[name] = (before, value)
            setattr(sub, name, value)
    if remote.etag and sub.provider_etag != remote.etag:
        sub.provider_etag = remote.etag
    return changed


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (SubscriptionStatus, Term, BillingCycle)):
        return value.value
    return value


# -- the Partner Center API Seatdesk uses ----------------------------------------------------
class PartnerCenter:
    """The Partner Center calls Seatdesk makes, on one ApiClient (v1 REST)."""

    def __init__(self, config: PartnerCenterConfig, client: ApiClient) -> None:
        self.config = config
        self.client = client

    @classmethod
    def connect(cls, config: PartnerCenterConfig, tokens: TokenSource | None = None, **client_options: Any) -> "PartnerCenter":
        tokens = tokens or TokenSource(config.credentials, config.authority_url)
        limiter = client_options.pop("limiter", None) or RateLimiter(config.requests_per_minute)
        client = ApiClient(
            config.partner_center_url, tokens, config.partner_center_scope, timeout_seconds=config.timeout_seconds,
            retry=config.retry, limiter=limiter, **client_options,
        )
        return cls(config, client)

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, method: str, path: str, customer: str | None = None, **options: Any) -> Response:
        return await self.client.request(method, "/v1" + path, tenant=self.config.credentials.tenant_id, limit_key=customer or "partner", **options)

    async def _collection(self, path: str, customer: str | None = None, params: dict[str, str] | None = None, **options: Any) -> list[dict]:
        """Every item of a collection, following `links.next` (and its MS-ContinuationToken header)."""
        items: list[dict] = []
        response = await self._call("GET", path, customer, params=params, **options)
        for _ in range(1000):
            body = response.body if isinstance(response.body, dict) else {}
            items.extend(i for i in body.get("items") or [] if isinstance(i, dict))
            following = (body.get("links") or {}).get("next") if isinstance(body.get("links"), dict) else None
            if not isinstance(following, dict) or not following.get("uri"):
                return items
            uri = str(following["uri"])
            uri = uri[3:] if uri.startswith("/v1/") else uri
            headers = {h["key"]: h["value"] for h in following.get("headers") or [] if isinstance(h, dict) and "key" in h}
            response = await self._call("GET", uri, customer, headers=headers, **options)
        return items

    # subscriptions
    async def list_subscriptions(self, customer: str, *, correlation_id: str | None = None) -> list[RemoteSubscription]:
        raw = await self._collection(f"/customers/{customer}/subscriptions", customer, correlation_id=correlation_id)
        return [RemoteSubscription.from_json(item) for item in raw]

    async def get_subscription(self, customer: str, subscription_id: str, *, correlation_id: str | None = None) -> RemoteSubscription:
        response = await self._call("GET", f"/customers/{customer}/subscriptions/{subscription_id}", customer, correlation_id=correlation_id)
        return RemoteSubscription.from_json(response.body)

    async def patch_subscription(self, customer: str, resource: dict, *, etag: str | None, request_id: str, correlation_id: str) -> RemoteSubscription:
        headers = {"If-Match": etag} if etag else {}
        response = await self._call(
            "PATCH", f"/customers/{customer}/subscriptions/{resource['id']}", customer, json=resource, headers=headers,
            request_id=request_id, correlation_id=correlation_id,
        )
        return RemoteSubscription.from_json(response.body)

    # catalog
    async def products(self, *, correlation_id: str | None = None) -> list[dict]:
        params = {"country": self.config.country, "targetView": "OnlineServices", "targetSegment": self.config.segment}
        return await self._collection("/products", params=params, correlation_id=correlation_id)

    async def skus(self, product_id: str, *, correlation_id: str | None = None) -> list[dict]:
        params = {"country": self.config.country, "targetSegment": self.config.segment}
        return await self._collection(f"/products/{product_id}/skus", params=params, correlation_id=correlation_id)

    async def availabilities(self, product_id: str, sku_id: str, *, correlation_id: str | None = None) -> list[dict]:
        params = {"country": self.config.country, "targetSegment": self.config.segment}
        return await self._collection(f"/products/{product_id}/skus/{sku_id}/availabilities", params=params, correlation_id=correlation_id)

    async def catalog_item_id(self, product_id: str, sku_id: str, term: Term, billing: BillingCycle, *, correlation_id: str | None = None) -> str | None:
        """Resolved at purchase time: catalog item ids change over time and are never trusted from storage."""
        for availability in await self.availabilities(product_id, sku_id, correlation_id=correlation_id):
            if availability.get("isPurchasable") is False:
                continue
            for offered in availability.get("terms") or []:
                if _term(offered.get("duration")) == term and _billing(offered.get("billingCycle")) == billing:
                    return availability.get("catalogItemId") or f"{product_id}:{sku_id}:{availability['id']}"
        return None

    # carts and orders
    async def create_cart(self, customer: str, line_items: list[dict], *, request_id: str, correlation_id: str) -> dict:
        response = await self._call("POST", f"/customers/{customer}/carts", customer, json={"lineItems": line_items}, request_id=request_id, correlation_id=correlation_id)
        return response.body

    async def checkout(self, customer: str, cart_id: str, *, request_id: str, correlation_id: str) -> dict:
        response = await self._call("POST", f"/customers/{customer}/carts/{cart_id}/checkout", customer, request_id=request_id, correlation_id=correlation_id)
        return response.body

    async def order(self, customer: str, order_id: str, *, correlation_id: str | None = None) -> dict:
        return (await self._call("GET", f"/customers/{customer}/orders/{order_id}", customer, correlation_id=correlation_id)).body

    async def provisioning_status(self, customer: str, order_id: str, *, correlation_id: str | None = None) -> list[dict]:
        response = await self._call("GET", f"/customers/{customer}/orders/{order_id}/provisioningstatus", customer, correlation_id=correlation_id)
        body = response.body if isinstance(response.body, dict) else {}
        return [i for i in body.get("items") or [] if isinstance(i, dict)]


def refusal(error: ApiError) -> ProviderError:
    """Partner Center's refusal as a sentence the user can act on."""
    if error.code in WINDOW_CLOSED_CODES:
        return ProviderError(SENTENCES["window_closed"], f"partnercenter_{error.code}")
    if error.code in QUOTA_CODES:
        return ProviderError(SENTENCES["quota"], f"partnercenter_{error.code}")
    if error.status == 404:
        return ProviderError(SENTENCES["not_found"], "partnercenter_404")
    description = error.description.strip() or f"HTTP {error.status}"
    return ProviderError(SENTENCES["refused"].format(description=description.rstrip(".") + "."), f"partnercenter_{error.code}")


# -- the provider ----------------------------------------------------------------------------
class PartnerCenterProvider:
    """The SubscriptionProvider port against Partner Center: PATCH remotely first (full resource,
    If-Match), then update the local mirror row inside the caller's transaction. A stale e-tag (412)
    re-reads and re-validates; it never overwrites what someone changed in the portal."""

    name = "partnercenter"
    ETAG_ATTEMPTS = 3

    def __init__(self, partner_center: PartnerCenter) -> None:
        self._pc = partner_center
        self._ledger = LedgerProvider()  # the local bookkeeping of a change is the same

    async def _tenant(self, session: AsyncSession, sub: Subscription) -> str:
        customer = await session.get(Customer, sub.customer_id)
        return customer.tenant_id

    async def _patch(
        self,
        session: AsyncSession,
        sub: Subscription,
        *,
        key: str,
        change: Callable[[dict, RemoteSubscription], None],
        done: Callable[[RemoteSubscription], bool],
    ) -> RemoteSubscription:
        tenant = await self._tenant(session, sub)
        correlation = correlation_id_for(key)
        try:
            for attempt in range(self.ETAG_ATTEMPTS):
                current = await self._pc.get_subscription(tenant, sub.provider_id, correlation_id=correlation)
                if done(current):
                    # A first attempt already got through (its answer was lost): nothing to send again.
                    return current
                if (current.quantity, current.auto_renew, current.status) != (sub.quantity, sub.auto_renew, sub.status):
                    raise ProviderError(
                        SENTENCES["changed_remotely"].format(
                            quantity=current.quantity, auto_renew="on" if current.auto_renew else "off", status=current.status.value if current.status else "unknown"
                        ),
                        "partnercenter_changed",
                    )
                body = jsonlib.loads(jsonlib.dumps(current.raw))
                change(body, current)
                try:
                    return await self._pc.patch_subscription(
                        tenant, body, etag=current.etag, request_id=request_id_for(key, attempt), correlation_id=correlation
                    )
                except ApiUnavailable as error:
                    # The PATCH went out and no answer came: it may have been applied. Checked again later, never sent blind.
                    raise ProviderError(SENTENCES["unconfirmed"], "partnercenter_unconfirmed", retryable=True, unconfirmed=True) from error
                except ApiError as error:
                    if error.status == 412 or error.code in ETAG_CONFLICT_CODES:
                        log.info("subscription %s: stale e-tag, reading it again [correlation %s]", sub.provider_id, correlation)
                        continue
                    raise refusal(error) from error
            raise ProviderError(SENTENCES["conflict"], "partnercenter_etag", retryable=True)
        except ApiError as error:
            raise refusal(error) from error
        except ApiUnavailable as error:
            raise ProviderError(SENTENCES["unavailable"], "partnercenter_unavailable", retryable=True) from error
        except NotConnected as error:
            log.error("Partner Center sign-in failed: %s", error)
            raise ProviderError(SENTENCES["not_connected"], "partnercenter_token") from error

    async def change_quantity(self, session: AsyncSession, sub: Subscription, quantity: int, *, key: str, now: datetime) -> None:
        def change(body: dict, current: RemoteSubscription) -> None:
            body["quantity"] = quantity

        remote = await self._patch(session, sub, key=key, change=change, done=lambda r: r.quantity == quantity)
        await self._ledger.change_quantity(session, sub, quantity, key=key, now=now)
        mirror(sub, remote)
        sub.updated_at = now

    async def set_auto_renew(self, session: AsyncSession, sub: Subscription, enabled: bool, *, key: str, now: datetime) -> None:
        def change(body: dict, current: RemoteSubscription) -> None:
            body["autoRenewEnabled"] = enabled

        remote = await self._patch(session, sub, key=key, change=change, done=lambda r: r.auto_renew == enabled)
        mirror(sub, remote)
        sub.updated_at = now

    async def cancel(self, session: AsyncSession, sub: Subscription, *, key: str, now: datetime) -> None:
        def change(body: dict, current: RemoteSubscription) -> None:
            body["status"] = "deleted"

        remote = await self._patch(session, sub, key=key, change=change, done=lambda r: r.status == SubscriptionStatus.DELETED)
        mirror(sub, remote)
        sub.status = SubscriptionStatus.DELETED
        sub.auto_renew = False
        sub.updated_at = now

    async def schedule_next_term(self, session: AsyncSession, sub: Subscription, quantity: int | None, *, key: str, now: datetime) -> None:
        def change(body: dict, current: RemoteSubscription) -> None:
            if quantity is None:
                body["scheduledNextTermInstructions"] = None
                return
            body["scheduledNextTermInstructions"] = {
                "product": {
                    "productId": current.product_id,
                    "skuId": current.sku_id,
                    "availabilityId": current.availability_id,
                    "billingCycle": (current.billing or sub.offer.billing).value.capitalize(),
                    "termDuration": (current.term or sub.offer.term).value,
                },
                "quantity": quantity,
            }

        await self._patch(session, sub, key=key, change=change, done=lambda r: r.scheduled_quantity == quantity)
        sub.updated_at = now


# -- synchronisation -------------------------------------------------------------------------
@dataclass
class SyncReport:
    customers: int = 0
    checked: int = 0
    updated: int = 0
    created: int = 0
    missing: int = 0
    failed: list[str] = field(default_factory=list)
    deferred: int = 0  # left alone this pass: a scheduled change of theirs is due, or a confirmed change is in flight


async def _offer_for(session: AsyncSession, remote: RemoteSubscription, now: datetime) -> Offer:
    """The local offer of a remote subscription; a product Seatdesk did not know is added (price unknown: 0)."""
    product = (
        await session.execute(select(Product).where(Product.provider_product_id == remote.product_id, Product.provider_sku_id == remote.sku_id))
    ).scalars().first()
    if product is None:
        product = Product(
            key=f"pc-{remote.product_id}-{remote.sku_id}".lower()[:64], name=remote.raw.get("offerName") or remote.name, aliases=[],
            provider_product_id=remote.product_id, provider_sku_id=remote.sku_id,
        )
        session.add(product)
        await session.flush()
    term = remote.term or Term.P1M
    billing = remote.billing or BillingCycle.MONTHLY
    offer = (
        await session.execute(
            select(Offer).where(Offer.product_id == product.id, Offer.term == term, Offer.billing == billing, Offer.is_trial.is_(remote.is_trial))
        )
    ).scalars().first()
    if offer is None:
        offer = Offer(product_id=product.id, term=term, billing=billing, is_trial=remote.is_trial, unit_price_monthly=Decimal("0"), currency="EUR")
        session.add(offer)
        await session.flush()
    return offer


async def subscription_sync(db: async_sessionmaker[AsyncSession], pc: PartnerCenter, now: datetime) -> SyncReport:
    """Reconcile Seatdesk's mirror with Partner Center: Partner Center wins for what it owns (seats,
    status, term, auto-renew), every difference is written to the audit trail with its before and
    after, and nothing is deleted locally — a subscription Partner Center no longer lists is logged."""
    report = SyncReport()
    correlation = str(uuid.uuid4())
    async with db() as session:
        customers = list((await session.execute(select(Customer).where(Customer.is_partner.is_(False)).order_by(Customer.id))).scalars())
    for customer in customers:
        try:
            remote = await pc.list_subscriptions(customer.tenant_id, correlation_id=correlation)
        except (ApiError, ApiUnavailable, NotConnected) as error:
            log.warning("sync: could not read %s's subscriptions: %s [correlation %s]", customer.key, error, correlation)
            report.failed.append(customer.key)
            continue
        report.customers += 1
        async with db() as session, session.begin():
            await _reconcile(session, customer, remote, now, report, correlation)
    log.info("sync done: %s [correlation %s]", report, correlation)
    return report


async def _reconcile(session: AsyncSession, customer: Customer, remote: list[RemoteSubscription], now: datetime, report: SyncReport, correlation: str) -> None:
    # A change confirmed in Seatdesk whose Partner Center answer is not recorded yet (still running, or
    # cut off by a crash) is left to the click that comes again or to the worker, which record it as the
    # person's, with their receipt. Read before the mirror rows: a change that is no longer in flight
    # by then has been recorded in them.
    in_flight_now = await in_flight(session, customer.id)
    local = {s.provider_id: s for s in (await session.execute(select(Subscription).where(Subscription.customer_id == customer.id))).scalars()}
    # A subscription whose scheduled change is due is the worker's this pass: it carries the change out,
    # or finds Partner Center already has it (a crash between Partner Center's answer and the commit),
    # and records it once. Mirrored here first, the change would be recorded twice, once as foreign.
    due = set(
        (await session.execute(select(ScheduledChange.subscription_id).where(ScheduledChange.customer_id == customer.id, due_on_date(now.date())))).scalars()
    )
    due |= in_flight_now
    actor = audit.Actor(name="Partner Center sync")
    for item in remote:
        report.checked += 1
        sub = local.get(item.id)
        if sub is None:
            offer = await _offer_for(session, item, now)
            start = item.term_start or now
            sub = Subscription(
                customer_id=customer.id, offer_id=offer.id, provider_id=item.id, nickname=item.raw.get("friendlyName") or None,
                quantity=item.quantity, status=item.status or SubscriptionStatus.ACTIVE, is_trial=item.is_trial, auto_renew=item.auto_renew,
                start_date=(item.created or start).date(), term_start=start,
                commitment_end=item.commitment_end or commerce.commitment_end_for(start.date(), offer.term),
                cancellation_allowed_until=item.cancellation_allowed_until, provider_etag=item.etag, updated_at=now,
            )
            session.add(sub)
            await session.flush()
            local[item.id] = sub
            report.created += 1
            audit.record(
                session, at=now, actor=actor, customer_id=customer.id, action="sync_added", target_type="subscription", target_id=sub.id,
                summary=f"Found in Partner Center: {item.name}, {item.quantity} seats", source="sync",
                after={"quantity": item.quantity, "status": sub.status.value}, reason=f"MS-CorrelationId {correlation}",
            )
            continue
        if sub.id in due:
            report.deferred += 1
            continue
        changed = mirror(sub, item)
        if changed:
            sub.updated_at = now
            report.updated += 1
            audit.record(
                session, at=now, actor=actor, customer_id=customer.id, action="sync_changed", target_type="subscription", target_id=sub.id,
                summary="Changed outside Seatdesk: " + ", ".join(f"{k} {_plain(b)} → {_plain(a)}" for k, (b, a) in changed.items()),
                source="sync", before={k: _plain(b) for k, (b, _) in changed.items()}, after={k: _plain(a) for k, (_, a) in changed.items()},
                reason=f"MS-CorrelationId {correlation}",
            )
    for item in remote:
        if item.parent_id and item.parent_id in local and local[item.id].parent_id is None:
            local[item.id].parent_id = local[item.parent_id].id
    seen = {item.id for item in remote}
    for provider_id, sub in local.items():
        if provider_id not in seen and sub.status not in (SubscriptionStatus.DELETED, SubscriptionStatus.EXPIRED):
            report.missing += 1
            audit.record(
                session, at=now, actor=actor, customer_id=customer.id, action="sync_missing", target_type="subscription", target_id=sub.id,
                summary=f"Partner Center does not list {sub.display_name} ({provider_id}); kept as it is for review", source="sync",
                outcome="refused", reason=f"MS-CorrelationId {correlation}",
            )


@dataclass
class CatalogReport:
    products: int = 0
    offers_added: int = 0
    offers_seen: int = 0


async def catalog_sync(db: async_sessionmaker[AsyncSession], pc: PartnerCenter, now: datetime) -> CatalogReport:
    """Products, SKUs and availabilities for the partner's country and segment into Seatdesk's catalog.
    Existing products keep their names, aliases and prices; the catalog item id seen is stored for
    information only (orders resolve it again at purchase time)."""
    report = CatalogReport()
    correlation = str(uuid.uuid4())
    for product in await pc.products(correlation_id=correlation):
        product_id = str(product.get("id") or "")
        if not product_id:
            continue
        for sku in await pc.skus(product_id, correlation_id=correlation):
            sku_id = str(sku.get("id") or "")
            availabilities = await pc.availabilities(product_id, sku_id, correlation_id=correlation)
            async with db() as session, session.begin():
                row = (
                    await session.execute(select(Product).where(Product.provider_product_id == product_id, Product.provider_sku_id == sku_id))
                ).scalars().first()
                if row is None:
                    row = Product(
                        key=f"pc-{product_id}-{sku_id}".lower()[:64], name=str(sku.get("title") or product.get("title") or product_id)[:200],
                        aliases=[], description=str(sku.get("description") or product.get("description") or "")[:2000],
                        provider_product_id=product_id, provider_sku_id=sku_id,
                    )
                    session.add(row)
                    await session.flush()
                    global_catalog = (await session.execute(select(Catalog).where(Catalog.is_global.is_(True)))).scalars().first()
                    if global_catalog is not None:
                        session.add(CatalogProduct(catalog_id=global_catalog.id, product_id=row.id))
                report.products += 1
                for availability in availabilities:
                    for offered in availability.get("terms") or []:
                        term, billing = _term(offered.get("duration")), _billing(offered.get("billingCycle"))
                        if term is None or billing is None:
                            continue
                        is_trial = bool(sku.get("isTrial"))
                        offer = (
                            await session.execute(
                                select(Offer).where(Offer.product_id == row.id, Offer.term == term, Offer.billing == billing, Offer.is_trial.is_(is_trial))
                            )
                        ).scalars().first()
                        report.offers_seen += 1
                        if offer is None:
                            offer = Offer(
                                product_id=row.id, term=term, billing=billing, is_trial=is_trial, unit_price_monthly=Decimal("0"),
                                currency=str((availability.get("defaultCurrency") or {}).get("code") or "EUR")[:3],
                                min_quantity=int(sku.get("minimumQuantity") or 1), max_quantity=int(sku.get("maximumQuantity") or 300),
                            )
                            session.add(offer)
                            report.offers_added += 1
                        offer.catalog_item_id = availability.get("catalogItemId") or f"{product_id}:{sku_id}:{availability.get('id')}"
    log.info("catalog sync: %s [correlation %s]", report, correlation)
    return report


class SyncJob:
    """Runs the subscription sync (and the catalog sync once a day) on a schedule."""

    def __init__(self, db, pc: PartnerCenter, clock, interval_seconds: float, *, catalog_every: int = 96) -> None:
        self._db, self._pc, self._clock = db, pc, clock
        self._interval = interval_seconds
        self._catalog_every = max(1, catalog_every)
        self._periodic: Periodic | None = None
        self.passes = 0

    async def run_once(self) -> SyncReport:
        if self.passes % self._catalog_every == 0:
            try:
                await catalog_sync(self._db, self._pc, self._clock.now())
            except (ApiError, ApiUnavailable, NotConnected) as error:
                log.warning("catalog sync failed: %s", error)
        self.passes += 1
        return await subscription_sync(self._db, self._pc, self._clock.now())

    async def start(self, app=None) -> None:
        self._periodic = Periodic("seatdesk-partnercenter-sync", self._interval, self.run_once)
        await self._periodic.start()

    async def stop(self, app=None) -> None:
        if self._periodic is not None:
            await self._periodic.stop()
        await self._pc.close()


async def sync_now(db, pc: PartnerCenter, now: datetime, what: str = "all") -> list[SyncReport | CatalogReport]:
    """The on-demand sync (`python -m bot sync`): subscriptions, the catalog, or both."""
    reports: list[SyncReport | CatalogReport] = []
    if what in ("all", "subscriptions"):
        reports.append(await subscription_sync(db, pc, now))
    if what in ("all", "catalog"):
        reports.append(await catalog_sync(db, pc, now))
    return reports
