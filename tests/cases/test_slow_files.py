"""Files for a case are downloaded outside the turn when they take long: the person hears "adding …"
at once and then which files were added or refused; a failure is a sentence. Pasted images are
fetched with the bot's own token, which only goes to hosts on the file-host allow-list (SEATDESK_FILE_HOSTS).
The file server holds a download until the test releases it; nothing sleeps."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import RUNTIME
from bot.auth import ServiceUrlPolicy
from bot.connector import BotConnector, TokenSource
from services import attachments
from tests.cases.conftest import teams_for
from tests.cases.test_case_files import DOWNLOAD_INFO, _open_case, _stored

PDF = b"%PDF-1.7 error report"


@pytest.fixture
async def slow_files():
    """/files/{name} like Teams' downloadUrl; a name in `held` waits for its Event; `seen` records each request's Authorization."""
    server_state = {"files": {"report.pdf": PDF, "image": b"\x89PNG\r\n\x1a\nfake"}, "held": {}, "reached": asyncio.Event(), "seen": []}

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        server_state["seen"].append((name, request.headers.get("Authorization")))
        if name in server_state["held"]:
            server_state["reached"].set()
            await server_state["held"][name].wait()
        data = server_state["files"].get(name)
        return web.Response(body=data, content_type="application/octet-stream") if data is not None else web.Response(status=404)

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    server.state = server_state  # type: ignore[attr-defined]
    yield server
    for held in server_state["held"].values():
        held.set()
    await server.close()


def _upload(server, name: str, file_type: str) -> dict:
    return {"contentType": DOWNLOAD_INFO, "name": name, "content": {"downloadUrl": str(server.make_url(f"/files/{name}")), "uniqueId": "1", "fileType": file_type}}


async def test_slow_downloads_are_acknowledged_then_reported(bot_client, connector, demo_db, slow_files, deadline):
    bot = bot_client.server.app[RUNTIME].bot
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    release = slow_files.state["held"]["report.pdf"] = asyncio.Event()
    message = teams.activity("message", attachments=[_upload(slow_files, "report.pdf", "pdf"), _upload(slow_files, "gone.log", "log")])

    sending = asyncio.create_task(teams.post(message))
    await slow_files.state["reached"].wait()
    deadline.passed.set()
    assert (await sending).status in (200, 201)
    assert connector.texts() == [
        f"I'm adding report.pdf, gone.log to case {number}. The download takes a moment: I'll tell you here what was added."
    ]
    assert (await teams.post(message)).status in (200, 201)  # Teams retrying the message meanwhile
    assert connector.texts() == [] and [n for n, _ in slow_files.state["seen"]] == ["report.pdf"]

    release.set()
    await bot.idle()
    texts = connector.texts()
    assert texts[0] == f"I added report.pdf (21 B) to case {number}."
    assert texts[1].startswith("I couldn't download gone.log from Teams") and len(texts) == 2
    assert [(a.filename, a.data) for a in await _stored(demo_db, number)] == [("report.pdf", PDF)]
    assert [n for n, _ in slow_files.state["seen"]] == ["report.pdf", "gone.log"]


async def test_a_failure_while_attaching_in_the_background_is_a_sentence(bot_client, connector, demo_db, slow_files, deadline, monkeypatch):
    bot = bot_client.server.app[RUNTIME].bot
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    reached, release = asyncio.Event(), asyncio.Event()

    async def broken_download(*args, **kwargs):
        reached.set()
        await release.wait()
        raise RuntimeError("disk full at /var/lib/seatdesk")

    monkeypatch.setattr(attachments, "download", broken_download)
    sending = asyncio.create_task(teams.post(teams.activity("message", attachments=[_upload(slow_files, "report.pdf", "pdf")])))
    await reached.wait()
    deadline.passed.set()
    await sending
    assert connector.texts()[0].startswith("I'm adding report.pdf")
    release.set()
    await bot.idle()
    [sentence] = connector.texts()
    assert sentence.startswith("Sorry, something went wrong on my side") and "quote reference" in sentence
    assert "disk full" not in sentence and "Traceback" not in sentence
    assert await _stored(demo_db, number) == []


async def test_a_pasted_image_is_fetched_with_the_bots_token_and_an_upload_without(bot_client, connector, demo_db, slow_files, monkeypatch):
    async def bot_token(self, session):
        return "bot-token-1"

    monkeypatch.setattr(TokenSource, "token", bot_token)  # the development token source, as a real one would answer
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    pasted = {"contentType": "image/png", "name": "image", "contentUrl": str(slow_files.make_url("/files/image"))}
    response = await teams.post(teams.activity("message", attachments=[_upload(slow_files, "report.pdf", "pdf"), pasted]))
    assert response.status in (200, 201)
    assert connector.texts() == [f"I added report.pdf (21 B) to case {number}.", f"I added image.png (12 B) to case {number}."]
    assert slow_files.state["seen"] == [("report.pdf", None), ("image", "Bearer bot-token-1")]


async def test_the_bots_token_goes_only_to_hosts_on_the_allow_list():
    class Token(TokenSource):
        async def token(self, session):
            return "bot-token-2"

    connector = BotConnector(policy=ServiceUrlPolicy(), tokens=Token())
    try:
        assert await connector.token_for("https://smba.trafficmanager.net/emea/v3/attachments/0-weu-d1-x/views/original") == "bot-token-2"
        for elsewhere in ("https://files.example.com/image.png", "http://smba.trafficmanager.net/emea/v3/attachments/1", "http://127.0.0.1:8080/image"):
            assert await connector.token_for(elsewhere) is None, elsewhere
    finally:
        await connector.close()


async def test_the_bots_token_goes_to_teams_file_hosts_and_nowhere_else():
    """Guards the regression where images Teams serves from its media hosts (*.asm.skype.com) were
    downloaded without the bot's token and failed, without letting the token go anywhere else, and
    without the reply allow-list growing (SEATDESK_FILE_HOSTS is a list of its own)."""
    from bot.app import file_host_policy, service_url_policy
    from bot.config import Settings

    class Token(TokenSource):
        async def token(self, session):
            return "bot-token-3"

    def connector_for(settings: Settings) -> BotConnector:
        return BotConnector(policy=service_url_policy(settings), file_hosts=file_host_policy(settings), tokens=Token())

    production = connector_for(Settings(app_id="app", app_password="secret"))
    contoso = connector_for(Settings(app_id="app", app_password="secret", file_hosts="files.contoso.example"))
    development = connector_for(Settings(allow_anonymous=True))
    try:
        for allowed in (
            "https://us-api.asm.skype.com/v1/objects/0-wus-d3-4a1b/views/imgo",
            "https://eu-api.asm.skype.com/v1/objects/0-weu-d1-9f2c/views/imgpsh_fullsize_anim",
            "https://smba.trafficmanager.net/amer/v3/attachments/0-wus-d3-4a1b/views/original",
        ):
            assert await production.token_for(allowed) == "bot-token-3", allowed
        for refused in (
            "http://us-api.asm.skype.com/v1/objects/0-wus-d3-4a1b/views/imgo",  # https only
            "https://us-api.asm.skype.com.evil.example/v1/objects/1",
            "https://asm.skype.com.example.net/v1/objects/1",
            "https://user:secret@us-api.asm.skype.com/v1/objects/1",
            "https://files.example.com/image.png",
            "http://127.0.0.1:8080/image",  # loopback only in anonymous development mode
        ):
            assert await production.token_for(refused) is None, refused
        # Replies still go only to Bot Connectors: a media host never receives one.
        assert not production.policy.allows("https://us-api.asm.skype.com/")
        assert await contoso.token_for("https://files.contoso.example/image.png") == "bot-token-3"
        assert await contoso.token_for("https://us-api.asm.skype.com/v1/objects/1/views/imgo") is None
        assert await development.token_for("http://127.0.0.1:8080/image") == "bot-token-3"
    finally:
        for connector in (production, contoso, development):
            await connector.close()


async def test_a_pasted_image_from_a_host_off_the_file_list_is_fetched_without_the_token(bot_client, connector, demo_db, slow_files, monkeypatch):
    async def bot_token(self, session):
        return "bot-token-4"

    monkeypatch.setattr(TokenSource, "token", bot_token)
    bot_client.server.app[RUNTIME].adapter.connector.file_hosts = ServiceUrlPolicy(["files.contoso.example"])
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    pasted = {"contentType": "image/png", "name": "image", "contentUrl": str(slow_files.make_url("/files/image"))}
    response = await teams.post(teams.activity("message", attachments=[pasted]))
    assert response.status in (200, 201)
    assert connector.texts() == [f"I added image.png (12 B) to case {number}."]
    assert slow_files.state["seen"] == [("image", None)]
