"""bot.connector: one session for every send, the token fetched once, retries as Teams asks
(429/412/502/504 with backoff, jitter and Retry-After; never 403), per-conversation pacing, and
the serviceUrl allow-list checked before anything is sent. No test sleeps: delays are recorded."""
from __future__ import annotations

import random

import pytest

from bot.auth import DisallowedServiceUrl, ServiceUrlPolicy
from bot.connector import BotConnector, ClientSecretToken, ConnectorError, ConversationPacer, RetryPolicy


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


async def test_giving_up_after_the_last_attempt_names_the_status(scripted, connector, sleeps):
    for _ in range(4):
        scripted.then(502, {"error": {"code": "BadGateway", "message": "upstream"}})
    c = connector(retry=RetryPolicy(attempts=4))
    with pytest.raises(ConnectorError) as raised:
        await c.send(scripted.url + "/", "conv", {"type": "message"})
    assert raised.value.status == 502 and raised.value.code == "BadGateway"
    assert len(scripted.requests) == 4


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
        clock[0] += 0.15  # a little slower than 7 per second
    assert all(w == 0 for w in waits)
    # 60 in 30 s: the 61st message, 9 s after the first, waits until 30 s after the first.
    assert pacer.reserve("c") == pytest.approx(21.0)
    # Queued senders take consecutive slots rather than all waking at once.
    assert pacer.reserve("c") == pytest.approx(21.15)


def test_pacer_forgets_idle_conversations():
    clock = [0.0]
    pacer = ConversationPacer(monotonic=lambda: clock[0], max_conversations=100)
    for i in range(500):
        pacer.reserve(f"c{i}")
    assert len(pacer) == 100
    clock[0] += 3601
    pacer.reserve("fresh")
    assert len(pacer) == 1
