"""bot.auth.TokenValidator against tokens signed by a local key, with metadata and JWKS served on
127.0.0.1. Guards: every kind of bad token is refused (Unauthorized, which the app answers 401),
and the keys are fetched asynchronously and cached, not per request."""
from __future__ import annotations

import time

import jwt
import pytest

from bot.auth import KeysUnavailable, OpenIdKeys, TokenValidator, Unauthorized
from tests.auth.conftest import APP_ID, SERVICE_URL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def keys(token_service, clock):
    keys = OpenIdKeys(token_service.metadata_url, monotonic=clock)
    yield keys
    await keys.close()


@pytest.fixture
def validator(keys):
    return TokenValidator(keys, app_id=APP_ID)


async def _validate(validator, header, *, channel="msteams", service_url=SERVICE_URL):
    return await validator.validate(header, channel_id=channel, service_url=service_url)


async def test_a_valid_token_gives_its_claims(validator, token_service):
    identity = await _validate(validator, f"Bearer {token_service.token()}")
    assert identity.is_authenticated
    assert identity.claims["aud"] == APP_ID
    assert identity.claims["serviceurl"] == SERVICE_URL


def _bad_tokens(service):
    now = time.time()
    return {
        "expired": service.token(now=now - 7200),  # exp one hour ago, beyond the 5 min skew
        "not yet valid": service.token(nbf=int(now) + 3600),
        "wrong audience": service.token(aud="someone-elses-bot"),
        "wrong issuer": service.token(iss="https://sts.windows.net/evil/"),
        "unknown key id": service.token(kid="stranger-key"),
        "key not endorsed for msteams": service.token(kid="webchat-key"),
        "serviceUrl mismatch": service.token(service_url="https://smba.trafficmanager.net/other/"),
        "no expiry": service.token(exp=None),
        "no audience": service.token(aud=None),
    }


@pytest.mark.parametrize(
    "case, why",
    [
        ("expired", "ExpiredSignatureError"),
        ("not yet valid", "ImmatureSignatureError"),
        ("wrong audience", "InvalidAudienceError"),
        ("wrong issuer", "InvalidIssuerError"),
        ("unknown key id", "unknown"),
        ("key not endorsed for msteams", "not endorsed"),
        ("serviceUrl mismatch", "serviceurl claim"),
        ("no expiry", "MissingRequiredClaimError"),
        ("no audience", "MissingRequiredClaimError"),
    ],
)
async def test_bad_tokens_are_refused_for_the_right_reason(validator, token_service, case, why):
    with pytest.raises(Unauthorized, match=why):
        await _validate(validator, f"Bearer {_bad_tokens(token_service)[case]}")


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Basic dXNlcjpwYXNz", "Bearer a b", "Bearer not-a-jwt", "Bearer a.b.c", "bearer"])
async def test_missing_and_malformed_headers_are_refused(validator, header):
    with pytest.raises(Unauthorized):
        await _validate(validator, header)


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
async def test_tokens_not_signed_with_rsa_are_refused(validator, algorithm):
    """Guards algorithm confusion (an HMAC "signed" with a guessable secret) and unsigned tokens."""
    claims = {"aud": APP_ID, "iss": "https://api.botframework.com", "exp": int(time.time()) + 60, "serviceurl": SERVICE_URL}
    key = "a-secret-anyone-could-have-chosen-32b" if algorithm == "HS256" else None
    forged = jwt.encode(claims, key, algorithm=algorithm, headers={"kid": "teams-key"})
    with pytest.raises(Unauthorized, match="algorithm"):
        await _validate(validator, f"Bearer {forged}")


async def test_a_tampered_signature_is_refused(validator, token_service):
    token = token_service.token()
    head, body, signature = token.split(".")
    other = token_service.token(aud="someone-elses-bot").split(".")[1]
    with pytest.raises(Unauthorized):
        await _validate(validator, f"Bearer {head}.{other}.{signature}")


async def test_the_key_must_be_endorsed_for_the_activitys_channel(validator, token_service):
    token = token_service.token(kid="webchat-key")
    assert await _validate(validator, f"Bearer {token}", channel="webchat")
    with pytest.raises(Unauthorized):
        await _validate(validator, f"Bearer {token}", channel=None)


async def test_clock_skew_of_a_few_minutes_is_tolerated(validator, token_service):
    now = time.time()
    assert await _validate(validator, f"Bearer {token_service.token(exp=int(now) - 120)}")
    assert await _validate(validator, f"Bearer {token_service.token(nbf=int(now) + 120)}")


async def test_keys_are_fetched_once_and_reused(validator, token_service):
    for _ in range(5):
        await _validate(validator, f"Bearer {token_service.token()}")
    assert (token_service.metadata_hits, token_service.jwks_hits) == (1, 1)


async def test_an_unknown_key_id_refetches_at_most_once_per_cooldown(validator, token_service, clock):
    """Guards against random key ids making Seatdesk hammer the metadata endpoint."""
    await _validate(validator, f"Bearer {token_service.token()}")
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await _validate(validator, f"Bearer {token_service.token(kid='stranger-key')}")
    assert token_service.jwks_hits == 1  # the first fetch just happened: within the cooldown
    clock.now += 301
    with pytest.raises(Unauthorized):
        await _validate(validator, f"Bearer {token_service.token(kid='stranger-key')}")
    assert token_service.jwks_hits == 2


async def test_a_rolled_over_key_is_picked_up(validator, token_service, clock):
    from tests.auth.conftest import _jwk

    await _validate(validator, f"Bearer {token_service.token()}")
    token_service.published.append(_jwk("stranger-key", ["msteams"]))  # the Bot Framework publishes a new key
    clock.now += 301
    assert await _validate(validator, f"Bearer {token_service.token(kid='stranger-key')}")


async def test_keys_are_refreshed_periodically_and_kept_when_a_refresh_fails(validator, token_service, clock):
    await _validate(validator, f"Bearer {token_service.token()}")
    token_service.up = False
    clock.now += 24 * 3600 + 1
    assert await _validate(validator, f"Bearer {token_service.token()}")  # the cached keys still serve
    token_service.up = True
    clock.now += 24 * 3600 + 1
    await _validate(validator, f"Bearer {token_service.token()}")
    assert token_service.jwks_hits == 2


async def test_no_keys_at_all_is_not_the_callers_fault(token_service):
    token_service.up = False
    keys = OpenIdKeys(token_service.metadata_url)
    try:
        with pytest.raises(KeysUnavailable):
            await TokenValidator(keys, app_id=APP_ID).validate(f"Bearer {token_service.token()}", channel_id="msteams", service_url=SERVICE_URL)
    finally:
        await keys.close()


async def test_an_unreachable_key_endpoint_is_not_hammered(token_service, clock):
    token_service.up = False
    keys = OpenIdKeys(token_service.metadata_url, monotonic=clock)
    validator = TokenValidator(keys, app_id=APP_ID)
    try:
        for _ in range(5):
            with pytest.raises(KeysUnavailable):
                await _validate(validator, f"Bearer {token_service.token()}")
        assert keys.fetches == 1
        token_service.up = True
        clock.now += 11
        assert await _validate(validator, f"Bearer {token_service.token()}")
        assert keys.fetches == 2
    finally:
        await keys.close()
