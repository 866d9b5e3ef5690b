"""Fixtures for the support-case tests: a helpdesk API key, a file server on 127.0.0.1 for
attachments, and Teams-shaped helpers."""
from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.cases import create_key
from services.models import Role
from tests.conftest import Teams, person


@pytest.fixture
async def api_key(demo_db, clock) -> dict[str, str]:
    async with demo_db() as session, session.begin():
        raw = await create_key(session, "Contoso helpdesk", clock.now())
    return {"X-Api-Key": raw}


@pytest.fixture
async def file_server():
    """Serves /files/{name} (add ?chunked to omit Content-Length): what Teams' downloadUrl would give; `files` maps a name to (bytes, status)."""
    files: dict[str, tuple[bytes, int]] = {}

    async def serve(request: web.Request) -> web.StreamResponse:
        data, status = files.get(request.match_info["name"], (b"", 404))
        if status != 200 or "chunked" not in request.query:
            return web.Response(body=data, status=status, content_type="application/octet-stream")
        response = web.StreamResponse()  # no Content-Length: the size is known only while reading
        await response.prepare(request)
        for start in range(0, len(data), 1024 * 1024):
            await response.write(data[start : start + 1024 * 1024])
        return response

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    server.files = files  # type: ignore[attr-defined]
    yield server
    await server.close()


async def teams_for(bot_client, connector, db, customer: str = "fabrikam", role: Role = Role.VIEW) -> Teams:
    return Teams(bot_client, connector, await person(db, customer, role))


def cards_of(activities) -> list[dict]:
    return [a["content"] for activity in activities for a in activity.get("attachments") or []]


