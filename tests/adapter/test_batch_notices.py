"""A batch of 500 proactive notices to one tenant goes out without a 429 storm.

The notices take the real path (ProactiveNotifier → SeatdeskAdapter.continue_conversation →
BotConnector) to a Bot Connector on 127.0.0.1 that keeps Teams' limits as Teams would: 30
requests per second per tenant, and per conversation 7/1 s, 8/2 s, 60/30 s, 1,800/h, answering
429 with Retry-After beyond them. Pacer, retries and that connector share one virtual clock, so
the ~16 s the batch is spread over take no real time. Guards the per-tenant pacing: without it
the same batch meets hundreds of 429s and loses notices.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botbuilder.core import TurnContext
from botbuilder.schema import Activity

from bot.adapter import SeatdeskAdapter
from bot.auth import ServiceUrlPolicy
from bot.connector import TEAMS_CONVERSATION_LIMITS, TEAMS_TENANT_LIMITS, BotConnector, ConversationPacer
from bot.proactive import ProactiveNotifier
from dialogs.base import Reply
from services.models import ConversationRef, Customer, Role, User

NORTHWIND = "9f0e5c8a-0000-4000-8000-00000000000a"
TAILSPIN = "9f0e5c8a-0000-4000-8000-00000000000b"


class VirtualClock:
    """Time that moves only when every task of the batch waits for it; a sleep takes no real time.

    While any task works (a database query, an HTTP request), the clock stands still; so every
    request is seen by the stand-in connector at the very moment the pacer gave it.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(delay, 0.0), next(self._order), wake))
        self._changed.set()
        await wake

    async def run(self, *batches):
        """Run batches of coroutines; a batch starts when every task started before it waits for the clock."""
        tasks: list[asyncio.Task] = []
        waiting = list(batches)
        while True:
            if sum(not task.done() for task in tasks) > len(self._sleepers):
                self._changed.clear()
                await self._changed.wait()
            elif waiting:
                for coroutine in waiting.pop(0):
                    task = asyncio.ensure_future(coroutine)
                    task.add_done_callback(lambda _: self._changed.set())
                    tasks.append(task)
            elif self._sleepers:
                self.now = self._sleepers[0][0]
                while self._sleepers and self._sleepers[0][0] <= self.now:
                    heapq.heappop(self._sleepers)[2].set_result(None)
            else:
                return [task.result() for task in tasks]


@dataclass
class Answer:
    at: float
    tenant: str
    conversation: str
    status: int


@dataclass
class TeamsConnector:
    """Teams' Bot Connector as far as its limits go, judged by the virtual clock. It knows each
    conversation's tenant itself, as Teams does, rather than trusting what the bot writes."""

    clock: VirtualClock
    tenant_of: dict[str, str] = field(default_factory=dict)
    url: str = ""
    answers: list[Answer] = field(default_factory=list)
    _times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def retry_after(self, conversation: str) -> float | None:
        """Counts this request (refused ones count too) and says how long to wait if it is one too many."""
        now = self.clock.now
        rules = [(("tenant", self.tenant_of[conversation]), TEAMS_TENANT_LIMITS), (("conversation", conversation), TEAMS_CONVERSATION_LIMITS)]
        for key, _ in rules:
            self._times[key].append(now)
        for key, limits in rules:
            for count, period in limits:
                inside = [t for t in self._times[key] if t > now - period]
                if len(inside) > count:
                    return inside[len(inside) - count] + period - now
        return None

    async def activities(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        await request.json()
        wait = self.retry_after(conversation)
        status = 201 if wait is None else 429
        self.answers.append(Answer(self.clock.now, self.tenant_of[conversation], conversation, status))
        if wait is not None:
            body = {"error": {"code": "Throttled", "message": "Too many requests"}}
            return web.json_response(body, status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return web.json_response({"id": f"{conversation}|{len(self.answers)}"}, status=201)

    def of(self, tenant: str, status: int | None = None) -> list[Answer]:
        return [a for a in self.answers if a.tenant == tenant and (status is None or a.status == status)]


@pytest.fixture
async def teams():
    clock = VirtualClock()
    stand_in = TeamsConnector(clock)
    app = web.Application()
    app.router.add_post("/v3/conversations/{conversation}/activities", stand_in.activities)
    app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", stand_in.activities)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stand_in.url = str(server.make_url("/"))
    yield stand_in
    await server.close()


async def _people(db, teams: TeamsConnector, tenant: str, key: str, count: int) -> list[int]:
    """`count` people of one customer, each with a stored 1:1 conversation with Seatdesk."""
    now = datetime.now(timezone.utc)
    async with db() as session, session.begin():
        customer = Customer(key=key, tenant_id=tenant, name=key.title(), created_at=now)
        session.add(customer)
        await session.flush()
        users = [
            User(customer_id=customer.id, aad_object_id=f"{key}-{i:04}", email=f"p{i}@{key}.example", name=f"Person {i}", role=Role.VIEW)
            for i in range(count)
        ]
        session.add_all(users)
        await session.flush()
        for user in users:
            conversation = f"a:1{key}-{user.aad_object_id}"
            teams.tenant_of[conversation] = tenant
            # Stored as bot/handler.py stores it, from a Teams-shaped activity (which loses the tenant).
            incoming = Activity().deserialize(
                {
                    "type": "message", "id": "incoming-1", "channelId": "msteams", "serviceUrl": teams.url, "locale": "en-US",
                    "from": {"id": f"29:{user.aad_object_id}", "aadObjectId": user.aad_object_id},
                    "recipient": {"id": "28:seatdesk-bot", "name": "Seatdesk"},
                    "conversation": {"conversationType": "personal", "tenantId": tenant, "id": conversation},
                    "channelData": {"tenant": {"id": tenant}},
                }
            )
            reference = TurnContext.get_conversation_reference(incoming).serialize()
            reference.pop("activityId", None)
            session.add(
                ConversationRef(
                    customer_id=customer.id, user_id=user.id, conversation_id=conversation, conversation_type="personal",
                    service_url=teams.url, reference=reference, updated_at=now,
                )
            )
        return [user.id for user in users]


async def _send_batch(db, teams: TeamsConnector, pacer: ConversationPacer) -> list[list[str]]:
    clock = teams.clock
    northwind = await _people(db, teams, NORTHWIND, "northwind", 500)
    tailspin = await _people(db, teams, TAILSPIN, "tailspin", 5)
    connector = BotConnector(
        policy=ServiceUrlPolicy(allow_loopback=True), pacer=pacer, pace_loopback=True, sleep=clock.sleep, rng=random.Random(5)
    )
    notifier = ProactiveNotifier(SeatdeskAdapter(connector), db, "")
    notice = [Reply(text="Your seat change for Microsoft 365 E3 was applied.")]
    try:
        # Tailspin's five notices are queued after all of Northwind's 500 have taken their slots.
        return await clock.run([notifier.send(u, notice) for u in northwind], [notifier.send(u, notice) for u in tailspin])
    finally:
        await connector.close()


async def test_500_notices_to_one_tenant_go_out_paced_without_a_429(db, teams):
    clock = teams.clock
    sent = await _send_batch(db, teams, ConversationPacer(monotonic=clock, sleep=clock.sleep))

    assert all(len(ids) == 1 for ids in sent) and len(sent) == 505
    assert [a for a in teams.answers if a.status != 201] == []
    northwind = sorted(a.at for a in teams.of(NORTHWIND))
    assert len(northwind) == 500
    # Notices are proactive: 24 of the tenant's 30 requests per second (6 stay free for replies
    # within turns), and no slower: 21 one-second windows (20 full, the last with 20), so the last
    # notice goes 20 s after the first and its window closes at 21 s ≥ 500/24 s.
    assert Counter(northwind) == {float(s): 24 for s in range(20)} | {20.0: 20}
    assert northwind[-1] - northwind[0] == 20.0 >= math.ceil(500 / 24) - 1
    assert northwind[-1] + 1.0 >= 500 / 24
    # The other tenant is not held up behind the first one's queue.
    assert [a.at for a in teams.of(TAILSPIN)] == [0.0] * 5


async def test_without_pacing_per_tenant_the_same_batch_meets_a_429_storm(db, teams):
    """The stand-in has teeth: with per-conversation pacing only (before the fix), Teams refuses most of the batch."""
    clock = teams.clock
    sent = await _send_batch(db, teams, ConversationPacer(tenant_limits=(), monotonic=clock, sleep=clock.sleep))

    refused = teams.of(NORTHWIND, 429)
    delivered = sum(len(ids) for ids in sent)
    assert len(refused) > 1000
    assert delivered < 200  # four attempts each, 30 get through per second: the rest are lost
