"""Seatdesk's Bot Connector client: replies, updates and proactive messages over one aiohttp session.

Why not botbuilder's ConnectorClient: the stock CloudAdapter builds a new ConnectorClient and a
UserTokenClient for every turn (≈2.8 ms of CPU each, in msrest's retry-policy set-up) and sends
through `requests` in a thread pool. Here one `ClientSession` is shared by every turn and
serviceUrl (its pool keeps connections per host), the bot's token is fetched once and cached,
and everything stays on the event loop.

Teams' rules (docs: bots/how-to/rate-limit.md): retry 429, 412, 502 and 504 with exponential
backoff and jitter, honouring Retry-After; never retry a 403 (ConversationBlockedByUser,
BotNotInConversationRoster); per conversation at most 7 messages/s, 8 per 2 s, 60 per 30 s and
1,800 per hour; per tenant at most 30 requests/s, all conversations together. A 401 means the
cached token expired or was revoked: it is dropped and the request tried once more with a new one.
"""
from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import logging
import random
import time
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from urllib.parse import quote, urlsplit

import aiohttp
from msrest.exceptions import DeserializationError
from msrest.serialization import Deserializer, Model, Serializer

from bot.auth import DEFAULT_FILE_HOSTS, ServiceUrlPolicy, _is_loopback

log = logging.getLogger("seatdesk.connector")

BOT_SCOPE = "https://api.botframework.com/.default"
LOGIN_AUTHORITY = "https://login.microsoftonline.com"
MULTI_TENANT_AUTH_TENANT = "botframework.com"
IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token"
RETRY_STATUSES = frozenset({412, 429, 502, 504})
# Teams' per-conversation limits for one bot ("per bot per thread"): (messages, seconds).
TEAMS_CONVERSATION_LIMITS = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
# Teams' limit for one app in one tenant, every conversation and request together. The docs have
# said 30 and 50 requests/s at different times; the stricter figure is kept.
TEAMS_TENANT_LIMITS = ((30, 1.0),)
# Proactive messages (a batch of notices) use at most this share of a tenant's limit, so replies
# within a turn always find a free slot and are never queued behind a batch past Teams' 15 s.
BACKGROUND_SHARE = 0.8


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

    def invalidate(self, token: str) -> None:
        """The Bot Connector refused `token` (401: expired or revoked); the next call gets a new one."""


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

    def invalidate(self, token: str) -> None:
        # Only the refused token: many requests refused with it at once lead to one new fetch, not many.
        if self._token == token:
            self._token = None

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
def _earliest(times: list[float], limits: tuple[tuple[int, float], ...], t: float) -> float:
    """The earliest moment from t on at which one more send keeps every window within its limit.

    `times` is sorted and may hold slots reserved in the future; a window is (end - period, end].
    The windows that would hold t end in [t, t + period), and the fullest of them ends at t or at
    a send. If one is full, t has to pass its end and wait until its oldest send has left it.
    """
    while True:
        start = t
        for count, period in limits:
            lo, hi = bisect_left(times, t), bisect_left(times, t + period)
            for i in range(hi - 1, lo - 2, -1):  # the latest window end first: it pushes t furthest
                end = times[i] if i >= lo else t
                oldest = bisect_right(times, end - period)
                if bisect_right(times, end) - oldest >= count:
                    t = times[oldest] + period
                    break
        if t == start:
            return t


class _Windows:
    """Send times per key (a conversation, a tenant), sorted, reserved future slots included.

    Keys are kept least recently used first; times older than the longest window are dropped, and
    so are keys idle that long or beyond `max_keys`, keeping memory flat.
    """

    def __init__(self, limits: tuple[tuple[int, float], ...], max_keys: int) -> None:
        self.limits = tuple((int(count), float(period)) for count, period in limits)
        self.background_limits = tuple((max(1, int(count * BACKGROUND_SHARE)), period) for count, period in self.limits)
        self._keep = max(period for _, period in self.limits)
        self._max = max_keys
        self._times: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._times)

    def times(self, key: str, now: float) -> list[float]:
        times = self._times.pop(key, None) or []
        del times[: bisect_right(times, now - self._keep)]
        self._times[key] = times
        return times

    def forget_idle(self, now: float) -> None:
        while self._times:
            times = next(iter(self._times.values()))
            if len(self._times) > self._max or not times or now - times[-1] > self._keep:
                self._times.popitem(last=False)
            else:
                break


class ConversationPacer:
    """Teams' limits kept before sending instead of collecting 429s: per conversation, and per
    tenant for all of that tenant's conversations together.

    A sender reserves its slot at once and then sleeps, so concurrent senders queue without a
    lock. One slot time is recorded in both the conversation's and the tenant's windows, so
    neither undercounts what was really sent. A conversation's messages keep their order; a
    tenant's free slots go to whichever conversation may use them, so one busy conversation does
    not hold up the others, and one tenant's batch never delays another tenant.
    """

    def __init__(
        self,
        limits: tuple[tuple[int, float], ...] = TEAMS_CONVERSATION_LIMITS,
        *,
        tenant_limits: tuple[tuple[int, float], ...] = TEAMS_TENANT_LIMITS,
        max_conversations: int = 10_000,
        max_tenants: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._conversations = _Windows(limits, max_conversations)
        self._tenants = _Windows(tenant_limits, max_tenants) if tenant_limits else None
        self._now = monotonic
        self._sleep = sleep

    def __len__(self) -> int:
        return len(self._conversations)

    @property
    def tenants(self) -> int:
        """How many tenants' windows are kept (diagnostics, tests)."""
        return len(self._tenants) if self._tenants is not None else 0

    def reserve(self, conversation_id: str | None, tenant_id: str | None = None, *, background: bool = False) -> float:
        """Take the next slot of this conversation and tenant; returns how many seconds to wait before sending.

        Without a tenant (not Teams) only the conversation is paced; without a conversation (a
        delete) only the tenant. A `background` send (proactive) may fill only BACKGROUND_SHARE
        of the tenant's windows: the rest stays free for replies within a turn.
        """
        now = self._now()
        conversation = self._conversations.times(conversation_id, now) if conversation_id is not None else None
        tenant = self._tenants.times(tenant_id, now) if tenant_id and self._tenants is not None else None
        at = max(now, conversation[-1]) if conversation else now
        while True:
            start = at
            if conversation is not None:
                at = _earliest(conversation, self._conversations.limits, at)
            if tenant is not None:
                at = _earliest(tenant, self._tenants.background_limits if background else self._tenants.limits, at)
            if at == start:
                break
        if conversation is not None:
            conversation.append(at)
            self._conversations.forget_idle(now)
        if tenant is not None:
            insort(tenant, at)
            self._tenants.forget_idle(now)
        return at - now

    async def wait(self, conversation_id: str | None, tenant_id: str | None = None, background: bool = False) -> None:
        delay = self.reserve(conversation_id, tenant_id, background=background)
        if delay > 0:
            await self._sleep(delay)


# -- retries --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # in all, the first one included
    base_seconds: float = 0.5
    max_seconds: float = 8.0
    max_retry_after: float = 30.0  # a longer Retry-After is not honoured in full
    # Within a turn (not a proactive send) retries wait this long in all at most: Teams waits 15 s
    # for the turn's answer, and a reply that needs longer is given up (and logged) so the turn answers.
    turn_budget_seconds: float = 5.0

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


def from_json(cls: type[Model], data: object) -> Model:
    """What msrest's `cls().deserialize(data)` gives for JSON (a botbuilder schema model), ≈8× faster.

    msrest looks up each attribute's type and copies every nested value on every call; here each
    model's plan is worked out once and plain JSON (`object` attributes: channelData, invoke values)
    is taken as it is. Bad input raises msrest's DeserializationError where msrest would.
    """
    try:
        return _read_model(cls, data)
    except DeserializationError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise DeserializationError(f"Unable to deserialize to object: {cls.__name__}: {error}") from error


_PLANS: dict[type, tuple[tuple[tuple[str, str, Callable[[object], object]], ...], frozenset[str]]] = {}


def _read_model(cls: type[Model], data: object) -> Model:
    if not isinstance(data, dict):
        raise DeserializationError(f"Unable to deserialize to object: {cls.__name__}")
    plan = _PLANS.get(cls) or _plan(cls)
    attributes, keys = plan
    model = cls(**{attr: None if (raw := data.get(key)) is None else read(raw) for attr, key, read in attributes})
    if len(data) > len(keys) or not keys.issuperset(data):
        model.additional_properties = {key: value for key, value in data.items() if key not in keys}
    return model


def _plan(cls: type[Model]):
    models = cls._infer_class_models()
    plan = (
        tuple((attr, info["key"], _reader(info["type"], models)) for attr, info in cls._attribute_map.items()),
        frozenset(info["key"] for info in cls._attribute_map.values()),
    )
    _PLANS[cls] = plan
    return plan


def _reader(type_name: str, models: dict[str, type]) -> Callable[[object], object]:
    if type_name == "str":
        return str
    if type_name == "bool":
        return _bool
    if type_name == "int":
        return int
    if type_name == "float":
        return float
    if type_name == "object":
        return _as_is
    if type_name == "iso-8601":
        return Deserializer.deserialize_iso
    if type_name == "bytearray":
        return Deserializer.deserialize_bytearray
    if type_name.startswith("["):
        item = _reader(type_name[1:-1], models)

        def read_list(raw: object) -> list:
            if not isinstance(raw, (list, set)):
                raise DeserializationError(f"Cannot deserialize as {type_name} an object of type {type(raw)}")
            return [None if x is None else item(x) for x in raw]

        return read_list
    if type_name.startswith("{"):
        value = _reader(type_name[1:-1], models)

        def read_dict(raw: object) -> dict:
            pairs = ((x["key"], x["value"]) for x in raw) if isinstance(raw, list) else raw.items()
            return {k: None if v is None else value(v) for k, v in pairs}

        return read_dict
    model = models[type_name]
    return lambda raw: _read_model(model, raw)


def _bool(raw: object) -> bool:
    if raw in (True, False, 1, 0):
        return bool(raw)
    if isinstance(raw, str) and raw.lower() in ("true", "1", "false", "0"):
        return raw.lower() in ("true", "1")
    raise TypeError(f"Invalid boolean value: {raw}")


def _as_is(raw: object) -> object:
    return raw  # JSON in, JSON out: msrest would build an equal copy, and nothing else holds the body


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
        file_hosts: ServiceUrlPolicy | None = None,
        tokens: TokenSource | None = None,
        pacer: ConversationPacer | None = None,
        retry: RetryPolicy = RetryPolicy(),
        pace_loopback: bool = False,
        timeout_seconds: float = 15,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        # Where the bot's token may go with a file download (SEATDESK_FILE_HOSTS): not the reply allow-list.
        self.file_hosts = file_hosts or ServiceUrlPolicy(DEFAULT_FILE_HOSTS)
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

    async def send(
        self, service_url: str, conversation_id: str, activity: dict, *, reply_to_id: str | None = None, tenant_id: str | None = None,
        background: bool = False,
    ) -> str | None:
        """Send a new message (a reply when reply_to_id is given); returns the new activity's id.

        `tenant_id` (the conversation's Microsoft Entra tenant) paces the tenant's requests together;
        `background` (a proactive message) leaves part of the tenant's limit to replies within turns.
        """
        base, pace = self._base(service_url)
        slot = (conversation_id, tenant_id, background) if pace else None
        body = await self._request("POST", base + self._path(conversation_id, reply_to_id), activity, slot, background)
        return body.get("id") if isinstance(body, dict) else None

    async def update(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict, *, tenant_id: str | None = None,
        background: bool = False,
    ) -> str | None:
        base, pace = self._base(service_url)
        slot = (conversation_id, tenant_id, background) if pace else None
        body = await self._request("PUT", base + self._path(conversation_id, activity_id), activity, slot, background)
        return body.get("id") if isinstance(body, dict) else None

    async def delete(
        self, service_url: str, conversation_id: str, activity_id: str, *, tenant_id: str | None = None, background: bool = False
    ) -> None:
        base, pace = self._base(service_url)
        # Not a message in the conversation, but a request of the tenant's.
        slot = (None, tenant_id, background) if pace else None
        await self._request("DELETE", base + self._path(conversation_id, activity_id), None, slot, background)

    async def token_for(self, url: str) -> str | None:
        """The bot's own token for a file Teams hosts (a pasted image's contentUrl). Only for a host on
        the file-host allow-list (Teams' media hosts and Bot Connectors, https): never anyone else."""
        if not self.file_hosts.allows(url):
            return None
        return await self._tokens.token(self._client())

    async def _request(
        self, method: str, url: str, payload: dict | None, slot: tuple[str | None, str | None, bool] | None, background: bool
    ) -> object:
        session = self._client()
        data = None if payload is None else json.dumps(payload, default=json_default, separators=(",", ":"))
        attempt = 0
        refreshed = False
        waited = 0.0
        while True:
            if slot is not None:
                await self._pacer.wait(*slot)  # every attempt is a request that counts against the limits
            headers = {}
            token = await self._tokens.token(session)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            if data is not None:
                headers["Content-Type"] = "application/json; charset=utf-8"
            self.requests += 1
            try:
                async with session.request(method, url, data=data, headers=headers) as response:
                    status = response.status
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    body = _json_or_text(await response.read())
            except aiohttp.ClientConnectorError as error:
                # Nothing reached the connector, so trying again cannot duplicate a message.
                status, retry_after, body = 0, None, str(error)
            if 200 <= status < 300:
                return body
            if status == 401 and token and not refreshed:
                # The cached token expired early or was revoked: one more try with a new token, no backoff.
                refreshed = True
                self._tokens.invalidate(token)
                log.info("Bot Connector refused the bot's token for %s %s; trying once more with a new one", method, url)
                continue
            retryable = status == 0 or status in RETRY_STATUSES
            attempt += 1
            delay = self._retry.delay(attempt - 1, retry_after, self._rng) if retryable else 0.0
            out_of_time = not background and waited + delay > self._retry.turn_budget_seconds
            if not retryable or attempt >= self._retry.attempts or out_of_time:
                if out_of_time and retryable:
                    log.warning("Bot Connector answered %s to %s %s; no retry in %.2f s within a turn", status or "no connection", method, url, delay)
                if status == 0:
                    raise ConnectorError(0, "Unreachable", str(body))
                code, message = _error_code(body)
                raise ConnectorError(status, code, message)
            waited += delay
            log.info("Bot Connector answered %s to %s %s; retry %d in %.2f s", status or "no connection", method, url, attempt, delay)
            await self._sleep(delay)
