"""Who may talk to Seatdesk and where Seatdesk may answer.

Inbound: the Bot Framework's JWT on every POST /api/messages is checked here, before a turn
runs (issuer, audience = our app id, a signing key the Bot Framework endorses for the
activity's channel, the `serviceurl` claim = the activity's serviceUrl, expiry with 5 minutes
of clock skew). OpenID metadata and the JWKS are fetched with aiohttp and cached, never with
botbuilder's blocking `requests` calls.

Outbound: Seatdesk only ever sends to serviceUrl hosts on an allow-list, so a forged or
misconfigured serviceUrl cannot make the bot (and its bearer token) talk to anyone else.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import jwt
from botframework.connector.auth import AuthenticationConstants, ClaimsIdentity

log = logging.getLogger("seatdesk.auth")

BOTFRAMEWORK_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
BOTFRAMEWORK_ISSUER = "https://api.botframework.com"
DEFAULT_SERVICE_URL_ALLOWLIST = ("smba.trafficmanager.net", "*.botframework.com", "*.teams.microsoft.com")
# Where Teams serves files that need the bot's own token (pasted images): its media service
# (us-api.asm.skype.com/v1/objects/…) and the Bot Connector's /v3/attachments.
DEFAULT_FILE_HOSTS = ("*.asm.skype.com", *DEFAULT_SERVICE_URL_ALLOWLIST)
# The Bot Framework's documented tolerance for clocks that disagree.
CLOCK_SKEW_SECONDS = 300
ALGORITHMS = ("RS256", "RS384", "RS512")
CALLER_ID_AZURE = "urn:botframework:azure"


class Unauthorized(Exception):
    """The request's token is missing or not acceptable. The message is for the log, never the caller."""


class KeysUnavailable(Exception):
    """The signing keys could not be fetched and none are cached: Seatdesk cannot judge any token."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: object  # a cryptography public key
    endorsements: frozenset[str]


class OpenIdKeys:
    """The Bot Framework's signing keys: OpenID metadata → jwks_uri → keys, cached in memory.

    Refreshed when older than `refresh_seconds`, and early when a token names a key id we do not
    know — at most once per `unknown_kid_cooldown` so random key ids cannot make us hammer the
    metadata endpoint. A failed refresh keeps the keys we have.
    """

    def __init__(
        self,
        metadata_url: str = BOTFRAMEWORK_METADATA_URL,
        *,
        refresh_seconds: float = 24 * 3600,
        unknown_kid_cooldown: float = 300,
        timeout_seconds: float = 10,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata_url = metadata_url
        self._refresh_seconds = refresh_seconds
        self._cooldown = unknown_kid_cooldown
        # With no keys at all every request needs them: try again soon, but not once per request.
        self._retry_empty = min(10.0, unknown_kid_cooldown)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._now = monotonic
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.fetches = 0  # for tests and diagnostics

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def key(self, kid: str) -> SigningKey | None:
        now = self._now()
        if self._fetched_at is None or now - self._fetched_at >= self._refresh_seconds:
            await self._refresh(force=False)
        found = self._keys.get(kid)
        if found is None and (self._attempted_at is None or self._now() - self._attempted_at >= self._cooldown):
            await self._refresh(force=True)  # keys roll over: a new kid may have been published
            found = self._keys.get(kid)
        return found

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = self._now()
            fresh = self._fetched_at is not None and now - self._fetched_at < self._refresh_seconds
            if fresh and not force:
                return  # another request refreshed while we waited
            # Never more than one fetch per window, whatever the traffic: a failing endpoint is not hammered.
            window = self._cooldown if force else self._retry_empty
            if self._attempted_at is not None and now - self._attempted_at < window:
                if not self._keys:
                    raise KeysUnavailable(f"no signing keys from {self.metadata_url} yet; last tried {now - self._attempted_at:.0f} s ago")
                return
            self._attempted_at = now
            try:
                self._keys = await self._fetch()
                self._fetched_at = now
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError) as error:
                if not self._keys:
                    raise KeysUnavailable(f"cannot read signing keys from {self.metadata_url}: {error}") from error
                log.warning("could not refresh signing keys from %s (%s); keeping %d cached keys", self.metadata_url, error, len(self._keys))

    async def _fetch(self) -> dict[str, SigningKey]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        self.fetches += 1
        async with self._session.get(self.metadata_url) as response:
            response.raise_for_status()
            metadata = await response.json(content_type=None)
        async with self._session.get(metadata["jwks_uri"]) as response:
            response.raise_for_status()
            jwks = await response.json(content_type=None)
        keys: dict[str, SigningKey] = {}
        for entry in jwks["keys"]:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not entry.get("kid"):
                continue
            try:
                public_key = jwt.algorithms.RSAAlgorithm.from_jwk(entry)
            except (jwt.InvalidKeyError, ValueError, KeyError):
                log.warning("ignoring an unreadable signing key %s", entry.get("kid"))
                continue
            endorsements = entry.get("endorsements") or []
            keys[entry["kid"]] = SigningKey(entry["kid"], public_key, frozenset(e for e in endorsements if isinstance(e, str)))
        if not keys:
            raise ValueError("the JWKS holds no usable RSA keys")
        return keys


class TokenValidator:
    """Checks the Authorization header of a request from a Bot Framework channel (Teams)."""

    def __init__(self, keys: OpenIdKeys, *, app_id: str, issuer: str = BOTFRAMEWORK_ISSUER, leeway: float = CLOCK_SKEW_SECONDS) -> None:
        if not app_id:
            raise ValueError("a TokenValidator needs the bot's app id (the token's audience)")
        self._keys = keys
        self._app_id = app_id
        self._issuer = issuer
        self._leeway = leeway

    async def validate(self, authorization: str | None, *, channel_id: str | None, service_url: str | None) -> ClaimsIdentity:
        """The caller's claims, or Unauthorized (KeysUnavailable when no key can be fetched at all)."""
        if not authorization or not authorization.strip():
            raise Unauthorized("no Authorization header")
        parts = authorization.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise Unauthorized("the Authorization header is not 'Bearer <token>'")
        token = parts[1]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthorized(f"the token cannot be read: {error}") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise Unauthorized(f"the token's algorithm {algorithm!r} is not accepted")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token names no signing key")
        key = await self._keys.key(kid)
        if key is None:
            raise Unauthorized(f"the token's signing key {kid!r} is unknown")
        # A key is trusted only for the channels the Bot Framework endorses it for.
        if not channel_id or channel_id not in key.endorsements:
            raise Unauthorized(f"signing key {kid!r} is not endorsed for channel {channel_id!r}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self._app_id,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(f"the token is not acceptable: {type(error).__name__}: {error}") from None
        claimed_url = claims.get(AuthenticationConstants.SERVICE_URL_CLAIM)
        if not claimed_url or claimed_url != service_url:
            raise Unauthorized("the token's serviceurl claim does not match the activity's serviceUrl")
        return ClaimsIdentity(claims, True, "Bearer")


def anonymous_identity() -> ClaimsIdentity:
    """Development only (SEATDESK_ALLOW_ANONYMOUS=1 on loopback): no token was checked."""
    return ClaimsIdentity({}, True, AuthenticationConstants.ANONYMOUS_AUTH_TYPE)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DisallowedServiceUrl(Exception):
    """Seatdesk was asked to send to a serviceUrl outside the allow-list; nothing was sent."""


class ServiceUrlPolicy:
    """The hosts Seatdesk may send to: exact names, or `*.suffix` for any subdomain of suffix.
    (Also the hosts that may receive the bot's token for a file download: SEATDESK_FILE_HOSTS.)

    Only https, except loopback hosts over http or https when `allow_loopback` (anonymous
    development mode: the Agents Playground, tests, the benchmark)."""

    def __init__(self, patterns: Iterable[str] = DEFAULT_SERVICE_URL_ALLOWLIST, *, allow_loopback: bool = False) -> None:
        exact: set[str] = set()
        suffixes: list[str] = []
        for raw in patterns:
            pattern = raw.strip().lower().rstrip(".")
            if not pattern:
                continue
            if pattern.startswith("*."):
                suffixes.append(pattern[1:])  # ".botframework.com"
            else:
                exact.add(pattern)
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)
        self.allow_loopback = allow_loopback
        self._decided: dict[str, bool] = {}

    @classmethod
    def parse(cls, raw: str, *, allow_loopback: bool = False, defaults: Iterable[str] = DEFAULT_SERVICE_URL_ALLOWLIST) -> "ServiceUrlPolicy":
        """From the comma-separated setting; empty means Microsoft's hosts (`defaults`)."""
        patterns = [p for p in (part.strip() for part in raw.split(",")) if p]
        return cls(patterns or defaults, allow_loopback=allow_loopback)

    def allows(self, service_url: str | None) -> bool:
        if not service_url:
            return False
        decided = self._decided.get(service_url)
        if decided is None:
            decided = self._decide(service_url)
            if len(self._decided) < 10_000:  # a handful of real serviceUrls; never grow without bound
                self._decided[service_url] = decided
        return decided

    def _decide(self, service_url: str) -> bool:
        try:
            parts = urlsplit(service_url)
            host = (parts.hostname or "").lower().rstrip(".")
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            return False
        if not host or parts.username or parts.password:
            return False
        if _is_loopback(host):
            return self.allow_loopback and parts.scheme in ("http", "https")
        if parts.scheme != "https":
            return False
        return host in self._exact or any(host.endswith(suffix) for suffix in self._suffixes)

    def check(self, service_url: str | None) -> None:
        if not self.allows(service_url):
            raise DisallowedServiceUrl(f"serviceUrl {service_url!r} is not on the allow-list")


class RequestAuthenticator:
    """What /api/messages asks before a turn runs: the caller's identity, or Unauthorized."""

    def __init__(
        self,
        *,
        app_id: str,
        allow_anonymous: bool,
        metadata_url: str = BOTFRAMEWORK_METADATA_URL,
        issuer: str = BOTFRAMEWORK_ISSUER,
        keys: OpenIdKeys | None = None,
    ) -> None:
        self.anonymous = not app_id
        # Without an app id there is no audience to check; that is only ever a development mode.
        self._allow_anonymous = allow_anonymous
        self.keys = None if self.anonymous else (keys or OpenIdKeys(metadata_url))
        self._validator = None if self.anonymous else TokenValidator(self.keys, app_id=app_id, issuer=issuer)

    async def authenticate(self, authorization: str | None, *, channel_id: str | None, service_url: str | None):
        from botframework.connector.auth.authenticate_request_result import AuthenticateRequestResult

        if self.anonymous:
            if not self._allow_anonymous:
                raise Unauthorized("MicrosoftAppId is not set and anonymous development mode is off")
            identity, caller_id = anonymous_identity(), None
        else:
            identity = await self._validator.validate(authorization, channel_id=channel_id, service_url=service_url)
            caller_id = CALLER_ID_AZURE
        result = AuthenticateRequestResult()
        result.claims_identity = identity
        result.audience = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        result.caller_id = caller_id
        return result

    async def close(self) -> None:
        if self.keys is not None:
            await self.keys.close()
