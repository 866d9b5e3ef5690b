"""A local Partner Center, Microsoft Graph and Entra token endpoint on 127.0.0.1 over HTTPS (a test
CA made here), answering with the documented JSON shapes (fixtures/, each with its source) and able
to inject faults: 429 with Retry-After, 500s, slow answers, 412 e-tag conflicts, refusals."""
from __future__ import annotations

import asyncio
import copy
import datetime as dt
import ipaddress
import itertools
import json
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures"
BODY = web.RequestKey("body", object)


def fixture(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    data.pop("_source", None)
    return data


# -- a test CA ---------------------------------------------------------------------------------
def make_ca(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA and a server certificate for 127.0.0.1; returns (CA bundle incl. system CAs, server context)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Seatdesk test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    bundle = folder / "ca-bundle.pem"
    bundle.write_bytes((system.read_bytes() if system.is_file() else b"") + b"\n" + ca_pem)
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return bundle, context


# -- the fake services -------------------------------------------------------------------------
@dataclass
class Fault:
    method: str
    path: str  # a regex searched in the path
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    body: Any = None
    times: int = 1


@dataclass
class Gate:
    """Holds the requests it matches until the test opens it: a slow Microsoft, without sleeping."""

    method: str
    path: str  # a regex searched in the path
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeMicrosoft:
    base: str = ""
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    # Partner Center: customer tenant -> subscription id -> resource
    subscriptions: dict[str, dict[str, dict]] = field(default_factory=dict)
    page_size: int = 2
    patches_applied: int = 0
    carts: dict[str, dict] = field(default_factory=dict)
    orders: dict[str, dict] = field(default_factory=dict)
    order_polls_pending: int = 1
    provisioning_polls_pending: int = 2
    failing_catalog_items: set[str] = field(default_factory=set)
    checkouts: dict[str, dict] = field(default_factory=dict)  # MS-RequestId -> result (idempotency)
    patch_results: dict[str, dict] = field(default_factory=dict)
    # Graph: tenant -> skus / users / user id -> set of sku ids
    skus: dict[str, list[dict]] = field(default_factory=dict)
    users: dict[str, list[dict]] = field(default_factory=dict)
    licences: dict[str, set[str]] = field(default_factory=dict)
    assign_calls: int = 0
    unconsented: set[str] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def fail(self, method: str, path: str, **kwargs: Any) -> None:
        self.faults.append(Fault(method, path, **kwargs))

    def hold(self, method: str, path: str) -> Gate:
        gate = Gate(method, path)
        self.gates.append(gate)
        return gate

    def add_subscription(self, tenant: str, sub_id: str, **fields: Any) -> dict:
        resource = fixture("subscription.json")
        resource.update(id=sub_id, links={"self": {"uri": f"/customers/{tenant}/subscriptions/{sub_id}", "method": "GET", "headers": []}})
        resource.update(fields)
        resource["attributes"] = {"etag": f"etag-{next(self._ids)}", "objectType": "Subscription"}
        self.subscriptions.setdefault(tenant, {})[sub_id] = resource
        return resource

    def change(self, tenant: str, sub_id: str, **fields: Any) -> None:
        """A change made in the Partner Center portal."""
        resource = self.subscriptions[tenant][sub_id]
        resource.update(fields)
        resource["attributes"]["etag"] = f"etag-{next(self._ids)}"

    # -- plumbing ------------------------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler):
        raw = await request.read()
        body: Any = None
        if raw:
            if request.content_type == "application/x-www-form-urlencoded":
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            else:
                body = json.loads(raw)
        request[BODY] = body
        self.requests.append(Recorded(request.method, request.path, dict(request.query), dict(request.headers), body))
        for gate in self.gates:
            if gate.method == request.method and re.search(gate.path, request.path):
                gate.reached.set()
                await gate.opened.wait()
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and re.search(fault.path, request.path):
                fault.times -= 1
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                    if fault.status == 200:
                        break
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return web.json_response(fault.body if fault.body is not None else {"code": fault.status, "description": "injected"}, status=fault.status, headers=headers)
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        r = app.router
        r.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self.openid)
        r.add_post("/{tenant}/oauth2/v2.0/token", self.token)
        r.add_get("/v1/customers/{customer}/subscriptions", self.list_subscriptions)
        r.add_get("/v1/customers/{customer}/subscriptions/{id}", self.get_subscription)
        r.add_patch("/v1/customers/{customer}/subscriptions/{id}", self.patch_subscription)
        r.add_get("/v1/products", self.products)
        r.add_get("/v1/products/{product}/skus", self.skus_of)
        r.add_get("/v1/products/{product}/skus/{sku}/availabilities", self.availabilities)
        r.add_post("/v1/customers/{customer}/carts", self.create_cart)
        r.add_post("/v1/customers/{customer}/carts/{cart}/checkout", self.checkout)
        r.add_get("/v1/customers/{customer}/orders/{order}", self.get_order)
        r.add_get("/v1/customers/{customer}/orders/{order}/provisioningstatus", self.provisioning)
        r.add_get("/v1.0/subscribedSkus", self.subscribed_skus)
        r.add_get("/v1.0/users", self.list_users)
        r.add_get("/v1.0/users/{id}", self.get_user)
        r.add_post("/v1.0/users/{id}/assignLicense", self.assign_licence)
        return app

    # -- Entra ---------------------------------------------------------------------------------
    async def openid(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        return web.json_response(
            {
                "token_endpoint": f"{self.base}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{self.base}/{tenant}/oauth2/v2.0/authorize",
                "issuer": f"{self.base}/{tenant}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "jwks_uri": f"{self.base}/{tenant}/discovery/v2.0/keys",
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if tenant in self.unconsented:
            return web.json_response(
                {"error": "invalid_client", "error_description": "AADSTS7000229: The client application is missing service principal in the tenant.", "error_codes": [7000229]},
                status=400,
            )
        scope = request[BODY].get("scope", "")
        return web.json_response({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": f"token|{tenant}|{scope}"})

    def _tenant_of(self, request: web.Request) -> str:
        return request.headers.get("Authorization", "").split("|")[1]

    # -- Partner Center ------------------------------------------------------------------------
    async def list_subscriptions(self, request: web.Request) -> web.Response:
        items = list(self.subscriptions.get(request.match_info["customer"], {}).values())
        start = int(request.headers.get("MS-ContinuationToken") or 0)
        page = items[start : start + self.page_size]
        body = fixture("collection.json")
        body.update(totalCount=len(page), items=page)
        if start + self.page_size < len(items):
            body["links"] = {
                "next": {"uri": f"/v1/customers/{request.match_info['customer']}/subscriptions", "method": "GET", "headers": [{"key": "MS-ContinuationToken", "value": str(start + self.page_size)}]}
            }
        return web.json_response(body)

    def _subscription(self, request: web.Request) -> dict | None:
        return self.subscriptions.get(request.match_info["customer"], {}).get(request.match_info["id"])

    async def get_subscription(self, request: web.Request) -> web.Response:
        found = self._subscription(request)
        if found is None:
            return web.json_response({"code": 800002, "description": "Subscription not found", "data": [], "source": "PartnerFD"}, status=404)
        return web.json_response(found)

    async def patch_subscription(self, request: web.Request) -> web.Response:
        request_id = request.headers["MS-RequestId"]
        if request_id in self.patch_results:  # idempotent: the same logical request applies once
            return web.json_response(self.patch_results[request_id])
        found = self._subscription(request)
        if found is None:
            return web.json_response({"code": 800002, "description": "Subscription not found"}, status=404)
        if request.headers.get("If-Match") != found["attributes"]["etag"]:
            body = fixture("error.json")
            body.update(code=2055, description="The resource has been modified; the e-tag does not match.")
            return web.json_response(body, status=412)
        sent = request[BODY]
        for name in ("quantity", "autoRenewEnabled", "status", "scheduledNextTermInstructions"):
            found[name] = sent.get(name)
        found["attributes"]["etag"] = f"etag-{next(self._ids)}"
        self.patches_applied += 1
        self.patch_results[request_id] = copy.deepcopy(found)
        return web.json_response(found)

    async def products(self, request: web.Request) -> web.Response:
        body = fixture("collection.json")
        body.update(totalCount=1, items=[fixture("product.json")])
        return web.json_response(body)

    async def skus_of(self, request: web.Request) -> web.Response:
        body = fixture("collection.json")
        body.update(totalCount=1, items=[fixture("sku.json")])
        return web.json_response(body)

    async def availabilities(self, request: web.Request) -> web.Response:
        item = fixture("availability.json")
        item.update(productId=request.match_info["product"], skuId=request.match_info["sku"])
        item["catalogItemId"] = f"{request.match_info['product']}:{request.match_info['sku']}:{item['id']}"
        body = fixture("collection.json")
        body.update(totalCount=1, items=[item])
        return web.json_response(body)

    async def create_cart(self, request: web.Request) -> web.Response:
        cart = fixture("cart.json")
        cart["id"] = f"cart-{next(self._ids)}"
        cart["lineItems"] = [{**li, "orderGroup": "0"} for li in request[BODY]["lineItems"]]
        self.carts[cart["id"]] = cart
        return web.json_response(cart, status=201)

    async def checkout(self, request: web.Request) -> web.Response:
        request_id = request.headers["MS-RequestId"]
        if request_id in self.checkouts:
            return web.json_response(self.checkouts[request_id], status=201)
        cart = self.carts[request.match_info["cart"]]
        result = fixture("checkout.json")
        good = [li for li in cart["lineItems"] if li["catalogItemId"] not in self.failing_catalog_items]
        bad = [li for li in cart["lineItems"] if li["catalogItemId"] in self.failing_catalog_items]
        if good:
            order = fixture("order.json")
            order["id"] = f"ORD{next(self._ids):09d}"
            order["referenceCustomerId"] = request.match_info["customer"]
            order["lineItems"] = [
                {"lineItemNumber": i, "offerId": li["catalogItemId"], "subscriptionId": f"sub-{order['id']}-{i}", "termDuration": li["termDuration"],
                 "transactionType": "New", "friendlyName": "", "quantity": li["quantity"]}
                for i, li in enumerate(good)
            ]
            self.orders[order["id"]] = {"order": order, "polls": 0, "provisioning_polls": 0}
            result["orders"] = [order]
        result["orderErrors"] = [{"orderGroupId": str(li["id"]), "code": 10002, "description": "Quota not available"} for li in bad]
        self.checkouts[request_id] = result
        return web.json_response(result, status=201)

    async def get_order(self, request: web.Request) -> web.Response:
        entry = self.orders[request.match_info["order"]]
        entry["polls"] += 1
        order = copy.deepcopy(entry["order"])
        order["status"] = "completed" if entry["polls"] > self.order_polls_pending else "pending"
        return web.json_response(order)

    async def provisioning(self, request: web.Request) -> web.Response:
        entry = self.orders[request.match_info["order"]]
        entry["provisioning_polls"] += 1
        done = entry["provisioning_polls"] > self.provisioning_polls_pending
        body = fixture("provisioning.json")
        body["items"] = [
            {"lineItemNumber": li["lineItemNumber"], "status": "fulfilled" if done else "Unfulfilled", "quantityProvisioningInformation": []}
            for li in entry["order"]["lineItems"]
        ]
        body["totalCount"] = len(body["items"])
        return web.json_response(body)

    # -- Graph ---------------------------------------------------------------------------------
    async def subscribed_skus(self, request: web.Request) -> web.Response:
        tenant = self._tenant_of(request)
        values = []
        for sku in self.skus.get(tenant, []):
            consumed = sum(1 for u in self.users.get(tenant, []) if sku["skuId"] in self.licences.get(u["id"], set()))
            values.append({**sku, "consumedUnits": consumed})
        return web.json_response({"@odata.context": f"{self.base}/v1.0/$metadata#subscribedSkus", "value": values})

    async def list_users(self, request: web.Request) -> web.Response:
        tenant = self._tenant_of(request)
        query = request.query.get("$filter", "")
        users = self.users.get(tenant, [])
        if "assignedLicenses/any" in query:
            assert request.headers.get("ConsistencyLevel") == "eventual"
            sku = re.search(r"eq ([0-9a-f-]{36})", query).group(1)
            found = [u for u in users if sku in self.licences.get(u["id"], set())]
        else:
            text = re.search(r"startswith\(displayName,'((?:[^']|'')*)'\)", query).group(1).replace("''", "'").lower()
            found = [u for u in users if u["displayName"].lower().startswith(text) or u["givenName"].lower().startswith(text) or u["userPrincipalName"].lower().startswith(text)]
        return web.json_response({"@odata.context": f"{self.base}/v1.0/$metadata#users", "value": found})

    async def get_user(self, request: web.Request) -> web.Response:
        tenant = self._tenant_of(request)
        found = next((u for u in self.users.get(tenant, []) if u["id"] == request.match_info["id"]), None)
        if found is None:
            return web.json_response({"error": {"code": "Request_ResourceNotFound", "message": f"Resource '{request.match_info['id']}' does not exist."}}, status=404)
        if "assignedLicenses" in request.query.get("$select", ""):
            held = sorted(self.licences.get(found["id"], set()))
            return web.json_response({"id": found["id"], "assignedLicenses": [{"skuId": sku, "disabledPlans": []} for sku in held]})
        return web.json_response(found)

    async def assign_licence(self, request: web.Request) -> web.Response:
        tenant = self._tenant_of(request)
        user = next((u for u in self.users.get(tenant, []) if u["id"] == request.match_info["id"]), None)
        if user is None:
            return web.json_response({"error": {"code": "Request_ResourceNotFound", "message": "User not found"}}, status=404)
        self.assign_calls += 1
        held = self.licences.setdefault(user["id"], set())
        for item in request[BODY]["addLicenses"]:
            held.add(item["skuId"])
        for sku in request[BODY]["removeLicenses"]:
            held.discard(sku)
        return web.json_response(user)


async def serve(fake: FakeMicrosoft, context: ssl.SSLContext) -> web.AppRunner:
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    fake.base = f"https://127.0.0.1:{port}"
    return runner
