"""The resilience rules of every Partner Center and Graph call, against the local HTTPS fake with
msal's real token path."""
from __future__ import annotations

import pytest

from services.partnercenter import ApiError, ApiUnavailable, RateLimiter
from tests.partnercenter.conftest import FABRIKAM


async def test_msal_gets_an_app_only_token_from_the_https_endpoint(fake, pc):
    fake.add_subscription(FABRIKAM, "s1")
    await pc.get_subscription(FABRIKAM, "s1")
    token_calls = [r for r in fake.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert len(token_calls) == 1
    assert token_calls[0].body["grant_type"] == "client_credentials" and token_calls[0].body["scope"] == f"{fake.base}/.default"
    call = next(r for r in fake.requests if r.path.startswith("/v1/customers"))
    assert call.headers["Authorization"].startswith("Bearer token|")


async def test_429_waits_what_retry_after_says_and_keeps_the_request_id(fake, pc, sleeps):
    fake.add_subscription(FABRIKAM, "s1")
    fake.fail("GET", "/subscriptions/s1", status=429, retry_after="7", body={"code": 429, "description": "Too many requests"})
    remote = await pc.get_subscription(FABRIKAM, "s1")
    assert remote.id == "s1" and sleeps.waits == [7.0]
    calls = [r for r in fake.requests if r.path.endswith("/subscriptions/s1")]
    assert len(calls) == 2 and calls[0].headers["MS-RequestId"] == calls[1].headers["MS-RequestId"]


async def test_5xx_and_timeouts_back_off_exponentially(fake, pc, sleeps):
    fake.add_subscription(FABRIKAM, "s1")
    fake.fail("GET", "/subscriptions/s1", status=500, times=2)
    fake.fail("GET", "/subscriptions/s1", status=200, delay=1.0)  # longer than the 0.5 s timeout
    await pc.get_subscription(FABRIKAM, "s1")
    assert sleeps.waits == [0.5, 1.0, 2.0]  # jitter pinned at its top (factor 1.0)


async def test_the_retry_budget_ends_with_unavailable(fake, pc, sleeps):
    fake.add_subscription(FABRIKAM, "s1")
    fake.fail("GET", "/subscriptions/s1", status=503, times=100)
    with pytest.raises(ApiUnavailable):
        await pc.get_subscription(FABRIKAM, "s1")
    assert len(sleeps.waits) == 4 and sum(sleeps.waits) <= 30


async def test_a_4xx_is_not_retried(fake, pc, sleeps):
    with pytest.raises(ApiError) as raised:
        await pc.get_subscription(FABRIKAM, "nope")
    assert raised.value.status == 404 and sleeps.waits == []


async def test_the_limiter_keeps_500_calls_per_minute_per_tenant():
    clock = [0.0]
    waits = []

    async def sleep(seconds):
        waits.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(500, now=lambda: clock[0], sleep=sleep)
    for _ in range(500):
        await limiter.acquire("fabrikam")
    await limiter.acquire("northwind")  # another tenant is not held up
    assert waits == []
    clock[0] = 10.0
    await limiter.acquire("fabrikam")
    assert waits == [50.0]


async def test_collections_follow_the_continuation_token(fake, pc):
    for i in range(5):
        fake.add_subscription(FABRIKAM, f"s{i}")
    found = await pc.list_subscriptions(FABRIKAM)
    assert [s.id for s in found] == [f"s{i}" for i in range(5)]
    tokens = [r.headers.get("MS-ContinuationToken") for r in fake.requests if r.path.endswith("/subscriptions")]
    assert tokens == [None, "2", "4"]
