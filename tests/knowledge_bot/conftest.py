"""Fixtures for the knowledge base in the bot: extra article folders in a temporary directory,
the bot's real app with chosen settings, and a fake OpenAI chat-completions server on 127.0.0.1."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import Settings
from services.models import Role
from tests.conftest import Teams, person

VPN_ARTICLE = """\
---
id: fabrikam-vpn
title: Connecting to the Fabrikam VPN
category: security
tags: [VPN, GlobalProtect, remote access]
language: en
audience: [fabrikam]
---

# Connecting to the Fabrikam VPN

Fabrikam staff working from home connect to the office network with the GlobalProtect VPN client.

## Connect with GlobalProtect

1. Open **GlobalProtect** from the system tray.
2. Enter the portal address vpn.fabrikam.example and sign in with your work account.
3. Approve the sign-in in Microsoft Authenticator.

## If the VPN does not connect

Restart GlobalProtect, check that you are online, and try again. If it still fails, open a support
case and mention the error message GlobalProtect shows.
"""


def long_article() -> str:
    sections = []
    for n in range(1, 8):
        paragraph = (
            f"Step {n} of the Teams rollout covers channels, owners and naming. Plan who owns each team, how channels "
            "are named, and which guests may join. Write the plan down and share it with every owner before you start. "
        ) * 4
        sections.append(f"## Rollout phase {n}\n\n{paragraph.strip()}\n")
    return (
        "---\nid: teams-rollout-guide\ntitle: Teams rollout guide for large companies\ncategory: teams\n"
        "tags: [rollout, governance]\nlanguage: en\n---\n\n# Teams rollout guide for large companies\n\n"
        "A long guide, shown in parts.\n\n" + "\n".join(sections)
    )


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "kb-extra"
    folder.mkdir()
    (folder / "fabrikam-vpn.md").write_text(VPN_ARTICLE, encoding="utf-8")
    (folder / "teams-rollout-guide.md").write_text(long_article(), encoding="utf-8")
    return folder


@dataclass
class FakeOpenAI:
    """Speaks the chat-completions wire format. `reply` decides the answer's text from the request;
    `mode` makes it fail: "ok", "http_500", "hang" (never answers), "trickle" (sends the body a
    byte at a time, forever)."""

    url: str = ""
    mode: str = "ok"
    reply: Callable[[dict[str, Any]], str] = lambda request: "You can do that within 7 days [1]."
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def user_data(self, index: int = -1) -> dict[str, Any]:
        """The JSON data the bot sent as the user message."""
        messages = self.requests[index]["messages"]
        return json.loads(next(m["content"] for m in messages if m["role"] == "user"))

    def system_prompt(self, index: int = -1) -> str:
        return next(m["content"] for m in self.requests[index]["messages"] if m["role"] == "system")


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876},
    }


@pytest.fixture
async def fake_openai():
    fake = FakeOpenAI()

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        fake.requests.append(body)
        fake.paths.append(str(request.rel_url))
        fake.headers.append(dict(request.headers))
        if fake.mode == "http_500":
            return web.json_response({"error": {"message": "The server had an error", "type": "server_error"}}, status=500)
        if fake.mode == "hang":
            await fake.release.wait()
        payload = json.dumps(completion(fake.reply(body))).encode()
        if fake.mode == "trickle":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for i in range(len(payload)):  # each byte comes well within the read timeout, the whole never does
                if fake.release.is_set():
                    break
                await response.write(payload[i : i + 1])
                await asyncio.sleep(0.05)
            return response
        return web.Response(body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    fake.release.set()
    await server.close()


@pytest.fixture
async def make_bot(settings, engine, clock, demo_db):
    """Start the bot's app with `settings` changed as given; closed after the test."""
    clients: list[TestClient] = []

    async def start(**changes: Any) -> TestClient:
        app = create_app(replace(settings, **changes), clock=clock, engine=engine)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def teams_for(client, connector, db, customer: str = "fabrikam", role: Role = Role.VIEW, *, partner_staff: bool = False, **kw) -> Teams:
    return Teams(client, connector, await person(db, customer, role, partner_staff=partner_staff), **kw)


def model_settings(fake: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {"openai_api_key": "sk-test-not-a-real-key", "openai_base_url": fake.url + "/v1", "llm_timeout_seconds": 5.0, **extra}
