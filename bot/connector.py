"""Seatdesk's Bot Connector client: replies, updates and proactive messages over one aiohttp session.

Why not botbuilder's ConnectorClient: the stock CloudAdapter builds a new ConnectorClient and a
UserTokenClient for every turn (≈2.8 ms of CPU each, in msrest's retry-policy set-up) and sends
through `requests` in a thread pool. Here one `ClientSession` is shared by every turn and
serviceUrl (its pool keeps connections per host), the bot's token is fetched once and cached,
and everything stays on the event loop.

Teams' rules (docs: bots/how-to/rate-limit.md): retry 429, 412, 502 and 504 with exponential
backoff and jitter, honouring Retry-After; never retry a 403 (ConversationBlockedByUser,
BotNotInConversationRoster); per conversation at most 7 messages/s, 60 per 30 s, 1,800 per hour.
"""
from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from urllib.parse import quote, urlsplit

import aiohttp
from msrest.serialization import Model, Serializer

from bot.auth import ServiceUrlPolicy, _is_loopback

log = logging.getLogger("seatdesk.connector")

BOT_SCOPE = "https://api.botframework.com/.default"
LOGIN_AUTHORITY = "https://login.microsoftonline.com"
MULTI_TENANT_AUTH_TENANT = "botframework.com"
IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token"
RETRY_STATUSES = frozenset({412, 429, 502, 504})
# Teams' per-conversation limits for one bot: (messages, seconds).
TEAMS_CONVERSATION_LIMITS = ((7, 1.0), (60, 30.0), (1800, 3600.0))


class ConnectorError(Exception):
    """The Bot Connector refused or failed a request; `code` is its error code when it gave one."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(f"Bot Connector answered {status} {code or ''}: {message}".strip())
        self.status = status
        self.code = code


class TokenError(Exception):
    """The bot's own access token could not be obtained (nothing was sent)."""


# -- the bot's access token -----------------------------------------------------------------
class TokenSource:
    """The bearer token Seatdesk presents to the Bot Connector; None sends no token (development)."""

    async def token(self, session: aiohttp.ClientSession) -> str | None:
        return None


class _CachedToken(TokenSource):
    """Fetched once, reused until 5 minutes before it expires; concurrent turns share one fetch."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._now = monotonic
        self.fetches = 0

    async def token(self, session: aiohttp.ClientSession) -> str | None:
        if self._token is not None and self._now() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token is None or self._now() >= self._expires_at:
                self.fetches += 1
                try:
                    token, lifetime = await self._fetch(session)
                except (aiohttp.ClientError, asyncio.TimeoutError, KeyError, ValueError) as error:
                    raise TokenError(f"could not obtain the bot's access token: {error}") from error
                self._token, self._expires_at = token, self._now() + max(0.0, lifetime - 300)
        return self._token

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        raise NotImplementedError


class ClientSecretToken(_CachedToken):
    """MultiTenant and SingleTenant apps: the OAuth client-credentials grant with the app's secret."""

    def __init__(self, app_id: str, password: str, tenant: str = MULTI_TENANT_AUTH_TENANT, *, authority: str = LOGIN_AUTHORITY, **kw) -> None:
        super().__init__(**kw)
        self._url = f"{authority.rstrip('/')}/{tenant or MULTI_TENANT_AUTH_TENANT}/oauth2/v2.0/token"
        self._form = {"grant_type": "client_credentials", "client_id": app_id, "client_secret": password, "scope": BOT_SCOPE}

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        async with session.post(self._url, data=self._form) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise ValueError(f"{response.status} {body.get('error') if isinstance(body, dict) else ''}")
        return body["access_token"], float(body.get("expires_in", 3600))


class ManagedIdentityToken(_CachedToken):
    """UserAssignedMSI apps: the token comes from the Azure instance metadata service."""

    def __init__(self, client_id: str, *, endpoint: str = IMDS_TOKEN_URL, **kw) -> None:
        super().__init__(**kw)
        self._url = endpoint
        self._params = {"api-version": "2018-02-01", "resource": "https://api.botframework.com", "client_id": client_id}

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        async with session.get(self._url, params=self._params, headers={"Metadata": "true"}) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise ValueError(f"{response.status}")
        return body["access_token"], float(body.get("expires_in", 3600))


def token_source(app_id: str, password: str, app_type: str, tenant_id: str) -> TokenSource:
    if not app_id:
        return TokenSource()
    if app_type == "UserAssignedMSI":
        return ManagedIdentityToken(app_id)
    return ClientSecretToken(app_id, password, tenant_id if app_type == "SingleTenant" else MULTI_TENANT_AUTH_TENANT)


# -- pacing ---------------------------------------------------------------------------------
class ConversationPacer:
    """Sliding windows per conversation so Seatdesk stays under Teams' limits instead of collecting 429s.

    Each conversation keeps the times of its last messages (at most as many as the largest
    limit); the next message may go when every window has room. A sender reserves its slot at
    once and then sleeps, so concurrent senders queue in order without a lock. Conversations
    idle for longer than the longest window are forgotten, keeping memory flat.
    """

    def __init__(
        self,
        limits: tuple[tuple[int, float], ...] = TEAMS_CONVERSATION_LIMITS,
        *,
        max_conversations: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limits = tuple((int(count), float(period)) for count, period in limits)
        self._longest = max(count for count, _ in self._limits)
        self._forget_after = max(period for _, period in self._limits)
        self._max = max_conversations
        self._now = monotonic
        self._sleep = sleep
        self._sent: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sent)

    def reserve(self, conversation_id: str) -> float:
        """Take the next slot of this conversation; returns how many seconds to wait before sending."""
        now = self._now()
        times = self._sent.pop(conversation_id, None)
        if times is None:
            times = deque(maxlen=self._longest)
        at = now
        for count, period in self._limits:
            if len(times) >= count:
                at = max(at, times[-count] + period)
        times.append(at)
        self._sent[conversation_id] = times
        self._forget_idle(now)
        return at - now

    def _forget_idle(self, now: float) -> None:
        while self._sent:
            times = next(iter(self._sent.values()))
            if len(self._sent) > self._max or now - times[-1] > self._forget_after:
                self._sent.popitem(last=False)
            else:
                break

    async def wait(self, conversation_id: str) -> None:
        delay = self.reserve(conversation_id)
        if delay > 0:
            await self._sleep(delay)


# -- retries --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # in all, the first one included
    base_seconds: float = 0.5
    max_seconds: float = 8.0
    max_retry_after: float = 30.0  # Teams waits 15 s for a turn; a longer Retry-After is not honoured in full

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        # "Full jitter": spreads retries of many conversations that failed at the same moment.
        return rng.uniform(0, min(self.max_seconds, self.base_seconds * 2**attempt))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json_or_text(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")


def _error_code(body: object) -> tuple[str | None, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return error.get("code"), str(error.get("message") or "")
    return None, str(body)[:200] if body else ""


def to_json(value: object) -> object:
    """What msrest's `Model.serialize()` gives for botbuilder's schema models, ≈20× faster.

    msrest walks and copies every nested dict (an Adaptive Card is hundreds of them) and
    validates each attribute; card content here is already plain JSON, so it is passed through.
    """
    if isinstance(value, Model):
        out = {}
        for attr, info in type(value)._attribute_map.items():
            item = getattr(value, attr, None)
            if item is None:
                continue
            if info["type"] == "iso-8601" and isinstance(item, datetime):
                out[info["key"]] = Serializer.serialize_iso(item)
            elif info["type"] == "bytearray" and isinstance(item, (bytes, bytearray)):
                out[info["key"]] = base64.b64encode(item).decode()
            else:
                out[info["key"]] = to_json(item)
        extra = getattr(value, "additional_properties", None)
        if isinstance(extra, dict):
            for key, item in extra.items():
                out.setdefault(key, to_json(item))
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [to_json(item) for item in value]
    # Plain JSON (card content, channelData, invoke values) goes out as it is; anything else in
    # it (a model, a datetime) is converted when the connector encodes the body (json_default).
    return value


def json_default(value: object) -> object:
    if isinstance(value, (Model, Enum)):
        return to_json(value)
    if isinstance(value, datetime):
        return Serializer.serialize_iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# -- the connector ----------------------------------------------------------------------------
class BotConnector:
    """POSTs and PUTs activities to the Bot Connector of a serviceUrl on the allow-list."""

    def __init__(
        self,
        *,
        policy: ServiceUrlPolicy,
        tokens: TokenSource | None = None,
        pacer: ConversationPacer | None = None,
        retry: RetryPolicy = RetryPolicy(),
        pace_loopback: bool = False,
        timeout_seconds: float = 15,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self._tokens = tokens or TokenSource()
        self._pacer = pacer
        self._retry = retry
        self._pace_loopback = pace_loopback
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._bases: dict[str, tuple[str, bool]] = {}
        self.requests = 0  # HTTP requests made, retries included (diagnostics, tests)
        self.sessions_created = 0

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily, inside the running loop; reused by every turn and every serviceUrl.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=aiohttp.TCPConnector(limit=200, limit_per_host=64))
            self.sessions_created += 1
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _base(self, service_url: str) -> tuple[str, bool]:
        """(base URL without trailing slash, whether to pace), checked against the allow-list once per serviceUrl."""
        known = self._bases.get(service_url)
        if known is None:
            self.policy.check(service_url)
            loopback = _is_loopback((urlsplit(service_url).hostname or "").lower())
            known = (service_url.rstrip("/"), self._pacer is not None and (self._pace_loopback or not loopback))
            if len(self._bases) < 1_000:
                self._bases[service_url] = known
        return known

    @staticmethod
    def _path(conversation_id: str, activity_id: str | None = None) -> str:
        path = f"/v3/conversations/{quote(conversation_id, safe='')}/activities"
        return f"{path}/{quote(activity_id, safe='')}" if activity_id else path

    async def send(self, service_url: str, conversation_id: str, activity: dict, *, reply_to_id: str | None = None) -> str | None:
        """Send a new message (a reply when reply_to_id is given); returns the new activity's id."""
        base, pace = self._base(service_url)
        if pace:
            await self._pacer.wait(conversation_id)
        body = await self._request("POST", base + self._path(conversation_id, reply_to_id), activity)
        return body.get("id") if isinstance(body, dict) else None

    async def update(self, service_url: str, conversation_id: str, activity_id: str, activity: dict) -> str | None:
        base, pace = self._base(service_url)
        if pace:
            await self._pacer.wait(conversation_id)
        body = await self._request("PUT", base + self._path(conversation_id, activity_id), activity)
        return body.get("id") if isinstance(body, dict) else None

    async def delete(self, service_url: str, conversation_id: str, activity_id: str) -> None:
        base, _ = self._base(service_url)
        await self._request("DELETE", base + self._path(conversation_id, activity_id), None)

    async def _request(self, method: str, url: str, payload: dict | None) -> object:
        session = self._client()
        attempt = 0
        while True:
            headers = {}
            token = await self._tokens.token(session)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            self.requests += 1
            try:
                data = None if payload is None else json.dumps(payload, default=json_default, separators=(",", ":"))
                if data is not None:
                    headers["Content-Type"] = "application/json; charset=utf-8"
                async with session.request(method, url, data=data, headers=headers) as response:
                    status = response.status
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    body = _json_or_text(await response.read())
            except aiohttp.ClientConnectorError as error:
                # Nothing reached the connector, so trying again cannot duplicate a message.
                status, retry_after, body = 0, None, str(error)
            if 200 <= status < 300:
                return body
            retryable = status == 0 or status in RETRY_STATUSES
            attempt += 1
            if not retryable or attempt >= self._retry.attempts:
                if status == 0:
                    raise ConnectorError(0, "Unreachable", str(body))
                code, message = _error_code(body)
                raise ConnectorError(status, code, message)
            delay = self._retry.delay(attempt - 1, retry_after, self._rng)
            log.info("Bot Connector answered %s to %s %s; retry %d in %.2f s", status or "no connection", method, url, attempt, delay)
            await self._sleep(delay)
