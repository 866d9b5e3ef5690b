"""A Bot Framework token service of our own on 127.0.0.1: OpenID metadata, a JWKS with locally
generated RSA keys, and a function that signs tokens the way the Bot Framework does."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.auth import BOTFRAMEWORK_ISSUER

APP_ID = "6f0c4b7e-seatdesk-test-app"
SERVICE_URL = "https://smba.trafficmanager.net/emea/"


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# Generating RSA keys is slow-ish; the same three serve every test.
_KEYS = {"teams-key": _rsa_key(), "webchat-key": _rsa_key(), "stranger-key": _rsa_key()}


def _jwk(kid: str, endorsements: list[str]) -> dict[str, Any]:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(_KEYS[kid].public_key(), as_dict=True)
    return {**public, "kid": kid, "use": "sig", "endorsements": endorsements}


@dataclass
class TokenService:
    """What login.botframework.com publishes; `stranger-key` signs but is never published."""

    metadata_url: str = ""
    metadata_hits: int = 0
    jwks_hits: int = 0
    published: list[dict[str, Any]] = field(
        default_factory=lambda: [_jwk("teams-key", ["msteams", "webchat"]), _jwk("webchat-key", ["webchat"])]
    )
    up: bool = True

    def token(self, *, kid: str = "teams-key", service_url: str = SERVICE_URL, now: float | None = None, **overrides: Any) -> str:
        now = time.time() if now is None else now
        claims: dict[str, Any] = {
            "serviceurl": service_url,
            "iss": BOTFRAMEWORK_ISSUER,
            "aud": APP_ID,
            "nbf": int(now) - 60,
            "exp": int(now) + 3600,
            "iat": int(now) - 60,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, _KEYS[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
async def token_service():
    service = TokenService()

    async def metadata(request: web.Request) -> web.Response:
        if not service.up:
            return web.Response(status=503)
        service.metadata_hits += 1
        base = str(request.url.origin())
        return web.json_response({"issuer": BOTFRAMEWORK_ISSUER, "jwks_uri": f"{base}/v1/keys", "id_token_signing_alg_values_supported": ["RS256"]})

    async def keys(request: web.Request) -> web.Response:
        if not service.up:
            return web.Response(status=503)
        service.jwks_hits += 1
        return web.json_response({"keys": service.published})

    app = web.Application()
    app.router.add_get("/v1/.well-known/openidconfiguration", metadata)
    app.router.add_get("/v1/keys", keys)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    service.metadata_url = str(server.make_url("/v1/.well-known/openidconfiguration"))
    yield service
    await server.close()
