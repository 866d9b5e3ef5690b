"""A load generator that drives a Bot Framework endpoint the way Teams does: activities POSTed to
/api/messages with a serviceUrl pointing at a Bot Connector that this module runs itself on
127.0.0.1, where the bot's replies arrive. A turn's latency runs from the POST until both the
HTTP answer and the expected reply are in. Everything is bounded by a turn count and a time
limit, and only ever talks to 127.0.0.1."""
from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

REPLY_TIMEOUT = 15.0  # what Teams waits for a bot


def _loopback_only(url: str) -> None:
    if urlsplit(url).hostname not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError(f"the load generator only talks to 127.0.0.1 (got {url})")


class LocalConnector:
    """The Bot Connector the bot answers to: records each conversation's replies, hands out ids."""

    def __init__(self) -> None:
        self.url = ""
        self.replies = 0
        self._waiters: dict[str, asyncio.Future] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    def expect(self, conversation_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._waiters[conversation_id] = future
        return future

    async def _post(self, request: web.Request) -> web.Response:
        activity = await request.json()
        conversation = request.match_info["conversation"]
        self.replies += 1
        self.last[conversation] = activity
        waiter = self._waiters.pop(conversation, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(activity)
        return web.json_response({"id": f"reply-{next(self._ids)}"})

    async def _put(self, request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["activity"]})

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass(frozen=True)
class Person:
    """Who the conversations are with (Teams sends the tenant and the Entra object id)."""

    tenant_id: str = "00000000-0000-0000-0000-000000000001"
    aad_object_id: str = "00000000-0000-0000-0000-0000000000aa"
    name: str = "Load Test"


@dataclass
class Scenario:
    name: str
    # conversation id, person, serviceUrl -> activity
    activity: Callable[[str, Person, str], dict[str, Any]]
    expects_reply: bool  # a message reply arrives at the connector (invokes answer in the HTTP body)
    check: Callable[[int, Any, dict[str, Any] | None], bool] = lambda status, body, reply: 200 <= status < 300


def base_activity(kind: str, conversation_id: str, who: Person, service_url: str, **extra: Any) -> dict[str, Any]:
    activity = {
        "type": kind,
        "id": uuid.uuid4().hex,
        "timestamp": "2026-11-22T09:00:00.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": f"29:{who.aad_object_id}", "name": who.name, "aadObjectId": who.aad_object_id},
        "conversation": {"conversationType": "personal", "tenantId": who.tenant_id, "id": conversation_id},
        "recipient": {"id": "28:bench-bot", "name": "Bot"},
        "channelData": {"tenant": {"id": who.tenant_id}},
        "locale": "en-US",
    }
    activity.update(extra)
    return activity


def message(text: str, name: str | None = None, check=None) -> Scenario:
    def make(conversation_id: str, who: Person, service_url: str) -> dict[str, Any]:
        return base_activity("message", conversation_id, who, service_url, text=text)

    return Scenario(name or f"message {text!r}", make, True, check or (lambda status, body, reply: 200 <= status < 300 and reply is not None))


def card_action(verb: str, data: dict[str, Any], name: str | None = None) -> Scenario:
    def make(conversation_id: str, who: Person, service_url: str) -> dict[str, Any]:
        action = {"type": "Action.Execute", "verb": verb, "data": {"verb": verb, **data}}
        return base_activity("invoke", conversation_id, who, service_url, name="adaptiveCard/action", value={"action": action, "trigger": "manual"})

    def ok(status: int, body: Any, reply: Any) -> bool:
        return status == 200 and isinstance(body, dict) and body.get("type") == "application/vnd.microsoft.card.adaptive"

    return Scenario(name or f"click {verb}", make, False, ok)


@dataclass
class Measurement:
    scenario: str
    concurrency: int
    turns: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def turns_per_second(self) -> float:
        return self.turns / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        return ordered[index]


def new_conversations(count: int) -> list[str]:
    return [f"a:bench-{uuid.uuid4().hex}" for _ in range(count)]


class LoadGenerator:
    def __init__(self, endpoint: str, connector: LocalConnector) -> None:
        _loopback_only(endpoint)
        self.endpoint = endpoint
        self.connector = connector
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "LoadGenerator":
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=REPLY_TIMEOUT + 5))
        return self

    async def __aexit__(self, *exc) -> None:
        await self._session.close()

    async def turn(self, scenario: Scenario, conversation_id: str, who: Person) -> tuple[bool, float]:
        activity = scenario.activity(conversation_id, who, self.connector.url)
        waiter = self.connector.expect(conversation_id) if scenario.expects_reply else None
        started = time.perf_counter()
        try:
            async with self._session.post(self.endpoint, json=activity) as response:
                status = response.status
                body = await response.json(content_type=None) if response.content_length else None
            reply = await asyncio.wait_for(waiter, REPLY_TIMEOUT) if waiter is not None else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return False, time.perf_counter() - started
        return scenario.check(status, body, reply), time.perf_counter() - started

    async def run(
        self,
        scenario: Scenario,
        *,
        concurrency: int,
        turns: int,
        max_seconds: float,
        people: list[Person],
        conversations: list[str] | None = None,
        label: str | None = None,
    ) -> Measurement:
        """`concurrency` conversations, each sending its next activity when the previous turn is done."""
        result = Measurement(label or scenario.name, concurrency)
        issued = 0
        deadline = time.perf_counter() + max_seconds
        conversations = conversations or new_conversations(concurrency)

        async def conversation(index: int) -> None:
            nonlocal issued
            who = people[index % len(people)]
            while issued < turns and time.perf_counter() < deadline:
                issued += 1
                ok, latency = await self.turn(scenario, conversations[index], who)
                result.turns += 1
                result.latencies.append(latency)
                if not ok:
                    result.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(conversation(i) for i in range(concurrency)))
        result.seconds = time.perf_counter() - started
        return result
