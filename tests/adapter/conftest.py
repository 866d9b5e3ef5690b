"""A scriptable Bot Connector and token endpoint on 127.0.0.1 for the connector's tests."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class ScriptedConnector:
    """Answers each request with the next scripted (status, body, headers), then 200; a request
    bearing `refused_token` gets 401 (an expired or revoked token) whatever the script says."""

    url: str = ""
    script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    refused_token: str | None = None
    requests: list[tuple[str, str, Any, str | None]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def then(self, status: int, body: Any = None, **headers: str) -> "ScriptedConnector":
        self.script.append((status, body, headers))
        return self


@pytest.fixture
async def scripted():
    recorder = ScriptedConnector()

    async def activity(request: web.Request) -> web.Response:
        payload = await request.json() if request.can_read_body else None
        recorder.requests.append((request.method, request.path, payload, request.headers.get("Authorization")))
        if recorder.refused_token and request.headers.get("Authorization") == f"Bearer {recorder.refused_token}":
            return web.json_response({"error": {"code": "Unauthorized", "message": "token expired"}}, status=401)
        if recorder.script:
            status, body, headers = recorder.script.pop(0)
            return web.json_response(body, status=status, headers=headers) if body is not None else web.Response(status=status, headers=headers)
        if request.method == "DELETE":
            return web.Response(status=200)
        return web.json_response({"id": request.match_info.get("activity") if request.method == "PUT" else f"new-{len(recorder.requests)}"})

    async def token(request: web.Request) -> web.Response:
        recorder.token_requests.append(dict(await request.post()))
        return web.json_response({"access_token": f"token-{len(recorder.token_requests)}", "expires_in": 3600, "token_type": "Bearer"})

    app = web.Application()
    app.router.add_route("*", "/{prefix:.*}v3/conversations/{conversation}/activities", activity)
    app.router.add_route("*", "/{prefix:.*}v3/conversations/{conversation}/activities/{activity}", activity)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    recorder.url = str(server.make_url("/")).rstrip("/")
    yield recorder
    await server.close()
