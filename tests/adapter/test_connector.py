"""bot.connector: one session for every send, the token fetched once (and fetched anew once after
a 401), retries as Teams asks (429/412/502/504 with backoff, jitter and Retry-After, a bounded
number of times; never 403 or other errors), pacing per conversation and per tenant, and the
serviceUrl allow-list checked before anything is sent. No test sleeps: delays are recorded."""
from __future__ import annotations

import asyncio
import random
import socket
from bisect import bisect_right

import pytest

from bot.auth import DisallowedServiceUrl, ServiceUrlPolicy
from bot.connector import (
    TEAMS_CONVERSATION_LIMITS,
    TEAMS_TENANT_LIMITS,
    BotConnector,
    ClientSecretToken,
    ConnectorError,
    ConversationPacer,
    RetryPolicy,
)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
async def connector(sleeps):
    made = []

    def make(**kw) -> BotConnector:
        kw.setdefault("policy", ServiceUrlPolicy(allow_loopback=True))
        c = BotConnector(sleep=sleeps, rng=random.Random(7), **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


async def test_send_reply_update_delete_reach_the_right_urls(scripted, connector):
    c = connector()
    service_url = scripted.url + "/amer/"
    assert await c.send(service_url, "a:1 x;messageid=1", {"type": "message", "text": "hi"}) == "new-1"
    assert await c.send(service_url, "a:1 x;messageid=1", {"type": "message", "text": "re"}, reply_to_id="act-1")
    assert await c.update(service_url, "a:1 x;messageid=1", "act-9", {"type": "message", "text": "edited"}) == "act-9"
    await c.delete(service_url, "a:1 x;messageid=1", "act-9")
    methods_paths = [(m, p) for m, p, _, _ in scripted.requests]
    assert methods_paths == [
        ("POST", "/amer/v3/conversations/a:1 x;messageid=1/activities"),
        ("POST", "/amer/v3/conversations/a:1 x;messageid=1/activities/act-1"),
        ("PUT", "/amer/v3/conversations/a:1 x;messageid=1/activities/act-9"),
        ("DELETE", "/amer/v3/conversations/a:1 x;messageid=1/activities/act-9"),
    ]
    assert scripted.requests[2][2]["text"] == "edited"


async def test_one_session_serves_every_send_and_service_url(scripted, connector):
    c = connector()
    for i in range(20):
        await c.send(f"{scripted.url}/{'emea' if i % 2 else 'amer'}/", f"conv-{i % 3}", {"type": "message"})
    assert c.sessions_created == 1
    assert len(scripted.requests) == 20


async def test_the_bots_token_is_fetched_once_and_sent_with_every_request(scripted, connector):
    tokens = ClientSecretToken("app-id", "app-secret", "botframework.com", authority=scripted.url)
    c = connector(tokens=tokens)
    for _ in range(3):
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert [r[3] for r in scripted.requests] == ["Bearer token-1"] * 3
    assert scripted.token_requests == [
        {"grant_type": "client_credentials", "client_id": "app-id", "client_secret": "app-secret", "scope": "https://api.botframework.com/.default"}
    ]


@pytest.mark.parametrize("status", [429, 412, 502, 504])
async def test_transient_answers_are_retried_with_growing_jittered_delays(scripted, connector, sleeps, status):
    scripted.then(status).then(status).then(status)
    c = connector(retry=RetryPolicy(attempts=4, base_seconds=0.5, max_seconds=8))
    assert await c.send(scripted.url + "/", "conv", {"type": "message"}) == "new-4"
    assert len(scripted.requests) == 4
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays):
        assert 0 <= delay <= 0.5 * 2**attempt


async def test_retry_after_is_honoured(scripted, connector, sleeps):
    scripted.then(429, {"error": {"code": "Throttled"}}, **{"Retry-After": "3"})
    c = connector()
    await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert sleeps.delays == [3.0]


async def test_within_a_turn_retries_wait_no_longer_than_the_turn_allows(scripted, connector, sleeps):
    """Guards Teams' 15 s: a reply is not held on a long Retry-After; it is given up and the turn answers."""
    scripted.then(429, {"error": {"code": "Throttled"}}, **{"Retry-After": "20"})
    c = connector()
    with pytest.raises(ConnectorError) as refused:
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert refused.value.status == 429 and sleeps.delays == [] and len(scripted.requests) == 1
    # Short waits are still retried, until they add up to the turn's budget (5 s).
    for _ in range(3):
        scripted.then(429, **{"Retry-After": "2"})
    with pytest.raises(ConnectorError):
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert sleeps.delays == [2.0, 2.0] and len(scripted.requests) == 4


@pytest.mark.parametrize("status", [429, 412, 502, 504])
async def test_giving_up_after_the_last_attempt_names_the_status(scripted, connector, sleeps, status):
    for _ in range(4):
        scripted.then(status, {"error": {"code": "Upstream", "message": "try later"}})
    c = connector(retry=RetryPolicy(attempts=4))
    with pytest.raises(ConnectorError) as raised:
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert raised.value.status == status and raised.value.code == "Upstream"
    assert len(scripted.requests) == 4 and len(sleeps.delays) == 3


@pytest.mark.parametrize("code", ["ConversationBlockedByUser", "BotNotInConversationRoster"])
async def test_403_is_never_retried(scripted, connector, sleeps, code):
    scripted.then(403, {"error": {"code": code, "message": "no"}})
    c = connector()
    with pytest.raises(ConnectorError) as raised:
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert raised.value.status == 403 and raised.value.code == code
    assert len(scripted.requests) == 1 and sleeps.delays == []


async def test_a_non_json_gateway_error_is_still_retried(scripted, connector, sleeps):
    scripted.script.append((502, None, {}))
    c = connector()
    await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert len(scripted.requests) == 2


async def test_a_service_url_off_the_allow_list_is_never_contacted(scripted, connector):
    c = connector(policy=ServiceUrlPolicy())  # Microsoft's hosts only: loopback refused
    with pytest.raises(DisallowedServiceUrl):
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    with pytest.raises(DisallowedServiceUrl):
        await c.update("https://collector.evil.example/", "conv", "1", {"type": "message"})
    assert scripted.requests == []


async def test_sends_to_teams_are_paced_per_conversation(scripted, connector, sleeps):
    clock = [0.0]
    pacer = ConversationPacer(monotonic=lambda: clock[0], sleep=sleeps)
    c = connector(pacer=pacer, pace_loopback=True)
    for _ in range(8):
        await c.send(scripted.url + "/", "conv-a", {"type": "message"})
    await c.send(scripted.url + "/", "conv-b", {"type": "message"})
    assert sleeps.delays == [pytest.approx(1.0)]  # the 8th message within one second waits; conv-b does not


def test_pacer_keeps_teams_limits():
    clock = [0.0]
    pacer = ConversationPacer(monotonic=lambda: clock[0])
    waits = []
    for _ in range(60):
        waits.append(pacer.reserve("c"))
        clock[0] += 0.25  # 4 per second: within 7 per second and 8 per 2 seconds
    assert all(w == 0 for w in waits)
    # 60 in 30 s: the 61st message, 15 s after the first, waits until 30 s after the first.
    assert pacer.reserve("c") == pytest.approx(15.0)
    # Queued senders take consecutive slots rather than all waking at once.
    assert pacer.reserve("c") == pytest.approx(15.25)


def test_pacer_keeps_eight_messages_per_two_seconds():
    """7 per second alone would allow 14 in two seconds; Teams allows 8."""
    pacer = ConversationPacer(monotonic=lambda: 0.0)
    assert [pacer.reserve("c") for _ in range(16)] == [0.0] * 7 + [1.0] + [2.0] * 7 + [3.0]


def test_pacer_forgets_idle_conversations():
    clock = [0.0]
    pacer = ConversationPacer(monotonic=lambda: clock[0], max_conversations=100)
    for i in range(500):
        pacer.reserve(f"c{i}")
    assert len(pacer) == 100
    clock[0] += 3601
    pacer.reserve("fresh")
    assert len(pacer) == 1


@pytest.mark.parametrize(
    "value, expected",
    [("120", 30.0), ("Wed, 21 Oct 2099 07:28:00 GMT", 30.0), ("Mon, 01 Jan 2001 00:00:00 GMT", 0.0), ("soon", None)],
)
async def test_retry_after_as_seconds_or_date_is_honoured_up_to_a_cap(scripted, connector, sleeps, value, expected):
    """A proactive send honours Retry-After up to 30 s; one that cannot be read falls back to backoff."""
    scripted.then(429, **{"Retry-After": value})
    c = connector()
    await c.send(scripted.url + "/", "conv", {"type": "message"}, background=True)
    if expected is None:
        assert len(sleeps.delays) == 1 and 0 <= sleeps.delays[0] <= 0.5
    else:
        assert sleeps.delays == [pytest.approx(expected)]


def test_backoff_is_full_jitter_under_a_growing_cap():
    """Retries of many conversations that failed together spread over the whole interval, not one moment."""
    policy = RetryPolicy(base_seconds=0.5, max_seconds=8.0)
    rng = random.Random(3)
    for attempt, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (7, 8.0)]:
        draws = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert 0 <= min(draws) < 0.1 * cap and 0.9 * cap < max(draws) <= cap
        assert len(set(draws)) == len(draws)


@pytest.mark.parametrize("status", [400, 404, 500])
async def test_other_errors_are_not_retried(scripted, connector, sleeps, status):
    scripted.then(status, {"error": {"code": "BadArgument", "message": "no"}})
    c = connector()
    with pytest.raises(ConnectorError) as raised:
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert raised.value.status == status
    assert len(scripted.requests) == 1 and sleeps.delays == []


async def test_an_unreachable_connector_is_retried_then_reported(connector, sleeps):
    with socket.socket() as probe:  # a port on 127.0.0.1 that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    c = connector(retry=RetryPolicy(attempts=3))
    with pytest.raises(ConnectorError) as raised:
        await c.send(f"http://127.0.0.1:{port}/", "conv", {"type": "message"})
    assert raised.value.status == 0 and raised.value.code == "Unreachable"
    assert c.requests == 3 and len(sleeps.delays) == 2


# -- an expired or revoked token ------------------------------------------------------------------
async def test_a_refused_token_is_dropped_and_the_request_tried_once_more_with_a_new_one(scripted, connector, sleeps):
    """A 401 from the Bot Connector: the cached token is dropped and the send tried once more, at once."""
    tokens = ClientSecretToken("app-id", "app-secret", "botframework.com", authority=scripted.url)
    c = connector(tokens=tokens)
    scripted.refused_token = "token-1"
    assert await c.send(scripted.url + "/", "conv", {"type": "message"}) == "new-2"
    await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert [r[3] for r in scripted.requests] == ["Bearer token-1", "Bearer token-2", "Bearer token-2"]
    assert len(scripted.token_requests) == 2 and sleeps.delays == []


async def test_a_second_401_is_reported_not_retried_again(scripted, connector, sleeps):
    tokens = ClientSecretToken("app-id", "app-secret", "botframework.com", authority=scripted.url)
    c = connector(tokens=tokens)
    scripted.then(401, {"error": {"code": "Unauthorized", "message": "no"}}).then(401, {"error": {"code": "Unauthorized", "message": "no"}})
    with pytest.raises(ConnectorError) as raised:
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert raised.value.status == 401
    assert len(scripted.requests) == 2 and len(scripted.token_requests) == 2 and sleeps.delays == []


async def test_many_sends_refused_with_one_token_fetch_one_new_token(scripted, connector):
    tokens = ClientSecretToken("app-id", "app-secret", "botframework.com", authority=scripted.url)
    c = connector(tokens=tokens)
    await c.send(scripted.url + "/", "conv", {"type": "message"})  # token-1 is cached
    scripted.refused_token = "token-1"  # ... and now revoked
    ids = await asyncio.gather(*(c.send(scripted.url + "/", f"conv-{i}", {"type": "message"}) for i in range(10)))
    assert all(ids)
    assert len(scripted.token_requests) == 2
    assert sum(r[3] == "Bearer token-2" for r in scripted.requests) == 10


async def test_without_a_token_a_401_is_not_retried(scripted, connector):
    scripted.then(401, {"error": {"code": "Unauthorized", "message": "no"}})
    c = connector()
    with pytest.raises(ConnectorError) as raised:
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert raised.value.status == 401 and len(scripted.requests) == 1


# -- pacing per tenant ----------------------------------------------------------------------------
async def test_a_tenants_requests_are_paced_across_its_conversations(scripted, connector, sleeps):
    pacer = ConversationPacer(monotonic=lambda: 0.0, sleep=sleeps)
    c = connector(pacer=pacer, pace_loopback=True)
    for i in range(31):
        await c.send(scripted.url + "/", f"conv-{i}", {"type": "message"}, tenant_id="tenant-a")
    await c.send(scripted.url + "/", "conv-x", {"type": "message"}, tenant_id="tenant-b")
    await c.delete(scripted.url + "/", "conv-0", "act-1", tenant_id="tenant-a")
    # The 31st request of tenant-a in one second waits, and so does its delete; tenant-b does not.
    assert sleeps.delays == [pytest.approx(1.0), pytest.approx(1.0)]
    assert len(scripted.requests) == 33


async def test_a_retry_is_paced_like_any_request(scripted, connector, sleeps):
    scripted.then(429, **{"Retry-After": "0"})
    pacer = ConversationPacer(limits=((1, 10.0),), tenant_limits=(), monotonic=lambda: 0.0, sleep=sleeps)
    c = connector(pacer=pacer, pace_loopback=True)
    await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert sleeps.delays == [0.0, pytest.approx(10.0)]  # Retry-After, then the conversation's next slot


def test_pacer_keeps_a_tenant_under_30_requests_per_second():
    pacer = ConversationPacer(monotonic=lambda: 0.0)
    waits = [pacer.reserve(f"c{i}", "tenant-a") for i in range(100)]
    assert waits == [0.0] * 30 + [1.0] * 30 + [2.0] * 30 + [3.0] * 10
    assert pacer.reserve("other", "tenant-b") == 0.0


def test_replies_within_a_turn_are_not_queued_behind_a_batch_of_notices():
    """Guards the 15 s turn: a batch takes 24 of the tenant's 30 requests per second, replies the rest."""
    pacer = ConversationPacer(monotonic=lambda: 0.0)
    batch = [pacer.reserve(f"notice-{i}", "t", background=True) for i in range(500)]
    assert batch[:25] == [0.0] * 24 + [1.0] and max(batch) == 20.0
    assert [pacer.reserve(f"chat-{i}", "t") for i in range(7)] == [0.0] * 6 + [1.0]
    assert pacer.reserve("chat-elsewhere", "other-tenant") == 0.0


def test_a_busy_conversation_does_not_hold_up_its_tenant():
    """A message that waits for its conversation leaves the tenant's earlier slots to the others."""
    pacer = ConversationPacer(monotonic=lambda: 0.0)
    assert [pacer.reserve("busy", "t") for _ in range(8)] == [0.0] * 7 + [1.0]
    assert pacer.reserve("quiet", "t") == 0.0
    # ... and the tenant still counts the busy conversation's slot at 1 s: 30 in (0, 1] at most.
    assert [pacer.reserve(f"c{i}", "t") for i in range(52)] == [0.0] * 22 + [1.0] * 29 + [2.0]


def _overflows(times: list[float], limits) -> list[tuple[float, int, float]]:
    times = sorted(times)
    found = []
    for count, period in limits:
        for i, end in enumerate(times):
            inside = i + 1 - bisect_right(times, end - period)
            if inside > count:
                found.append((end, count, period))
    return found


def test_pacer_keeps_every_window_under_a_mixed_load():
    """Thousands of sends to 60 conversations of three tenants, one conversation chatty enough to
    be held back, the clock moving irregularly: no window of any conversation or tenant holds more
    than Teams allows, no slot lies in the past, and a conversation's messages keep their order.
    (Recording a slot in the tenant's windows earlier than the message really goes fails here.)"""
    rng = random.Random(11)
    clock = [0.0]
    pacer = ConversationPacer(monotonic=lambda: clock[0])
    by_conversation: dict[str, list[float]] = {}
    by_tenant: dict[str, list[float]] = {}
    chatty_waits = []
    for _ in range(4000):
        conversation = "chatty" if rng.random() < 0.02 else f"c{rng.randrange(60)}"
        tenant = "t0" if conversation == "chatty" else f"t{int(conversation[1:]) % 3}"
        wait = pacer.reserve(conversation, tenant)
        assert wait >= 0
        if conversation == "chatty":
            chatty_waits.append(wait)
        by_conversation.setdefault(conversation, []).append(clock[0] + wait)
        by_tenant.setdefault(tenant, []).append(clock[0] + wait)
        # Binary fractions keep `clock + wait` exactly the slot the pacer recorded.
        clock[0] += rng.choice([0.0, 0.0, 0.0, 1 / 1024, 1 / 128, 1 / 16])
    for times in by_conversation.values():
        assert times == sorted(times)
        assert _overflows(times, TEAMS_CONVERSATION_LIMITS) == []
    for times in by_tenant.values():
        assert _overflows(times, TEAMS_TENANT_LIMITS) == []
    assert max(chatty_waits) > 1.0  # the chatty conversation was really held back


def test_pacer_forgets_idle_tenants():
    clock = [0.0]
    pacer = ConversationPacer(monotonic=lambda: clock[0], max_tenants=50)
    for i in range(300):
        pacer.reserve(f"c{i}", f"t{i}")
    assert pacer.tenants == 50
    clock[0] += 3601
    pacer.reserve("fresh", "t-fresh")
    assert pacer.tenants == 1 and len(pacer) == 1
