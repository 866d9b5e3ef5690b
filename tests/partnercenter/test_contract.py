"""Every request Seatdesk sends to Partner Center, Graph and the token endpoint has the documented
method, path, headers and body fields."""
from __future__ import annotations

import re
import uuid

from services.changes import Timing
from services.order_backend import OrderLineRequest, PartnerCenterOrderBackend
from services.partnercenter import PartnerCenterProvider, catalog_sync, subscription_sync
from services.subscription_changes import ChangeRequest, Kind, confirm
from tests.partnercenter.conftest import FABRIKAM
from tests.partnercenter.test_provider import ACTOR, _local, _mirror_remote
from tests.partnercenter.test_sync_and_orders import _offer, _subs

PC = {"Authorization", "Accept", "MS-RequestId", "MS-CorrelationId"}
CONTRACT = [
    ("GET", r"^/[0-9a-f-]{36}/v2\.0/\.well-known/openid-configuration$", set(), None),
    ("POST", r"^/[0-9a-f-]{36}/oauth2/v2\.0/token$", set(), {"client_id", "client_secret", "grant_type", "scope"}),
    ("GET", r"^/v1/customers/[0-9a-f-]{36}/subscriptions$", PC, None),
    ("GET", r"^/v1/customers/[0-9a-f-]{36}/subscriptions/[^/]+$", PC, None),
    ("PATCH", r"^/v1/customers/[0-9a-f-]{36}/subscriptions/[^/]+$", PC | {"If-Match"}, {"id", "offerId", "quantity", "autoRenewEnabled", "status", "billingCycle", "termDuration"}),
    ("GET", r"^/v1/products$", PC, None),
    ("GET", r"^/v1/products/[^/]+/skus$", PC, None),
    ("GET", r"^/v1/products/[^/]+/skus/[^/]+/availabilities$", PC, None),
    ("POST", r"^/v1/customers/[0-9a-f-]{36}/carts$", PC, {"lineItems"}),
    ("POST", r"^/v1/customers/[0-9a-f-]{36}/carts/[^/]+/checkout$", PC, None),
    ("GET", r"^/v1/customers/[0-9a-f-]{36}/orders/[^/]+$", PC, None),
    ("GET", r"^/v1/customers/[0-9a-f-]{36}/orders/[^/]+/provisioningstatus$", PC, None),
]
LINE_ITEM = {"id", "catalogItemId", "quantity", "billingCycle", "termDuration", "provisioningContext"}
QUERY = {"/v1/products": {"country", "targetView"}}


async def test_every_request_matches_the_documented_contract(fake, pc, demo_db, clock):
    sub = await _local(demo_db)
    await _mirror_remote(fake, sub)
    provider = PartnerCenterProvider(pc)
    await confirm(demo_db, provider, now=clock.now(), actor=ACTOR, customer_id=sub.customer_id,
                  request=ChangeRequest(Kind.SEATS, sub.id, sub.version, op="contract-op-1", quantity=125, timing=Timing.NOW))
    await subscription_sync(demo_db, pc, clock.now())
    await catalog_sync(demo_db, pc, clock.now())
    customer, _ = await _subs(demo_db, "northwind")
    backend = PartnerCenterOrderBackend(pc, demo_db)
    submitted = await backend.submit([OrderLineRequest((await _offer(demo_db)).id, 2)], customer, "contract-order")
    for _ in range(4):
        await backend.status(submitted.provider_order_id, customer)
    seen = set()
    for request in fake.requests:
        matches = [c for c in CONTRACT if c[0] == request.method and re.match(c[1], request.path)]
        assert matches, f"undocumented request {request.method} {request.path}"
        method, pattern, headers, fields = matches[0]
        seen.add(pattern)
        assert headers <= set(request.headers), (request.path, headers - set(request.headers))
        for name in ("MS-RequestId", "MS-CorrelationId"):
            if name in headers:
                uuid.UUID(request.headers[name])
        if fields:
            assert fields <= set(request.body), (request.path, fields - set(request.body))
        if request.path.endswith("/carts"):
            assert all(LINE_ITEM <= set(item) for item in request.body["lineItems"])
        for path, params in QUERY.items():
            if request.path == path:
                assert params <= set(request.query)
        if request.path.startswith("/v1/products"):
            assert request.query["country"] == "DE"
    assert {c[1] for c in CONTRACT} - seen == set()  # every documented call was exercised
