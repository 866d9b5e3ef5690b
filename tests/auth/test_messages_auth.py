"""POST /api/messages with authentication on: every bad or missing token is answered 401 (never
500, which botbuilder 4.17.1 gives for a missing header), the turn never runs, and nothing is
sent; only the valid token gets a reply. Replies go only to allow-listed serviceUrl hosts."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import RUNTIME, create_app
from bot.auth import DisallowedServiceUrl
from bot.config import Settings
from services.models import Role
from tests.auth.conftest import APP_ID, SERVICE_URL
from tests.conftest import person


@dataclass
class RecordingConnector:
    """Stands in for the Bot Connector client (the one seam patched): records instead of sending."""

    policy: object
    sent: list[dict] = field(default_factory=list)

    async def send(self, service_url, conversation_id, activity, *, reply_to_id=None, tenant_id=None, background=False):
        self.policy.check(service_url)
        self.sent.append(activity)
        return f"sent-{len(self.sent)}"

    async def update(self, service_url, conversation_id, activity_id, activity, *, tenant_id=None, background=False):
        self.policy.check(service_url)
        return activity_id

    async def close(self):
        pass


@pytest.fixture
async def secured(db_url, engine, clock, demo_db, token_service):
    settings = Settings(database_url=db_url, app_id=APP_ID, app_password="not-used-here", openid_metadata_url=token_service.metadata_url)
    app = create_app(settings, clock=clock, engine=engine)
    adapter = app[RUNTIME].adapter
    recorder = RecordingConnector(adapter.connector.policy)
    adapter.connector = recorder
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client, recorder
    await client.close()


async def _message(demo_db, service_url=SERVICE_URL, text="dashboard"):
    who = await person(demo_db, "fabrikam", Role.ADMIN)
    return {
        "type": "message",
        "id": uuid.uuid4().hex,
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": f"29:{who.aad_object_id}", "name": who.name, "aadObjectId": who.aad_object_id},
        "conversation": {"conversationType": "personal", "tenantId": who.tenant_id, "id": f"a:1{uuid.uuid4().hex}"},
        "recipient": {"id": f"28:{APP_ID}", "name": "Seatdesk"},
        "channelData": {"tenant": {"id": who.tenant_id}},
        "text": text,
    }


async def test_a_valid_token_runs_the_turn(secured, demo_db, token_service):
    client, recorder = secured
    response = await client.post("/api/messages", json=await _message(demo_db), headers={"Authorization": f"Bearer {token_service.token()}"})
    assert response.status in (200, 201), await response.text()
    assert len(recorder.sent) == 1 and recorder.sent[0]["attachments"]


def _headers(service, case):
    now = time.time()
    tokens = {
        "expired": service.token(now=now - 7200),
        "not yet valid": service.token(nbf=int(now) + 3600),
        "wrong audience": service.token(aud="someone-elses-bot"),
        "wrong issuer": service.token(iss="https://sts.windows.net/evil/"),
        "unknown key id": service.token(kid="stranger-key"),
        "key not endorsed for msteams": service.token(kid="webchat-key"),
        "serviceUrl mismatch": service.token(service_url="https://smba.trafficmanager.net/other/"),
    }
    if case == "missing header":
        return {}
    if case == "malformed header":
        return {"Authorization": "Bearer this-is-not-a-jwt"}
    if case == "not bearer":
        return {"Authorization": f"Basic {service.token()}"}
    return {"Authorization": f"Bearer {tokens[case]}"}


@pytest.mark.parametrize(
    "case",
    [
        "expired", "not yet valid", "wrong audience", "wrong issuer", "unknown key id",
        "key not endorsed for msteams", "serviceUrl mismatch", "missing header", "malformed header", "not bearer",
    ],
)
async def test_bad_or_missing_tokens_get_401_and_nothing_runs(secured, demo_db, token_service, case):
    client, recorder = secured
    response = await client.post("/api/messages", json=await _message(demo_db), headers=_headers(token_service, case))
    assert response.status == 401
    assert (await response.json()) == {"error": "unauthorized"}
    assert recorder.sent == []


async def test_an_authenticated_activity_for_a_foreign_service_url_is_refused(secured, demo_db, token_service):
    """A token whose serviceurl claim names a host off the allow-list: nothing is sent there."""
    client, recorder = secured
    evil = "https://collector.evil.example/"
    response = await client.post(
        "/api/messages", json=await _message(demo_db, evil), headers={"Authorization": f"Bearer {token_service.token(service_url=evil)}"}
    )
    assert response.status == 403
    assert recorder.sent == []


async def test_loopback_service_urls_are_refused_when_authentication_is_on(secured, demo_db, token_service):
    client, recorder = secured
    local = "http://127.0.0.1:9/"
    response = await client.post(
        "/api/messages", json=await _message(demo_db, local), headers={"Authorization": f"Bearer {token_service.token(service_url=local)}"}
    )
    assert response.status == 403
    assert recorder.sent == []


async def test_unreachable_signing_keys_answer_503_not_401_or_500(secured, demo_db, token_service):
    client, recorder = secured
    token_service.up = False
    response = await client.post("/api/messages", json=await _message(demo_db), headers={"Authorization": f"Bearer {token_service.token()}"})
    assert response.status == 503
    assert "correlationId" in await response.json()


async def test_without_an_app_id_and_without_the_development_flag_everything_is_refused(db_url, engine, clock, demo_db):
    app = create_app(Settings(database_url=db_url, allow_anonymous=False), clock=clock, engine=engine)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post("/api/messages", json=await _message(demo_db, "http://127.0.0.1:9/"))
        assert response.status == 401


async def test_a_proactive_message_to_a_stored_foreign_service_url_is_not_sent(secured, demo_db):
    from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

    client, recorder = secured
    adapter = client.server.app[RUNTIME].adapter
    reference = ConversationReference(
        channel_id="msteams", service_url="https://collector.evil.example/", conversation=ConversationAccount(id="a:1x"),
        bot=ChannelAccount(id="28:bot"), user=ChannelAccount(id="29:user"),
    )
    ran = []

    async def callback(turn_context):
        ran.append(True)
        await turn_context.send_activity("hello")

    with pytest.raises(DisallowedServiceUrl):
        await adapter.continue_conversation(reference, callback, APP_ID)
    assert ran == [] and recorder.sent == []
