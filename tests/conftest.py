"""Shared fixtures: a migrated SQLite database with the demo data, the bot's real aiohttp app on
127.0.0.1, and a recording Bot Connector that receives the bot's replies like Teams would."""
from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.config import Settings
from services import db as database
from services.clock import FixedClock
from services.models import Customer, Role, User
from tests.cardwalk import card_text  # noqa: F401 - tests import it from here


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(scope="session")
def postgres_template():
    """With SEATDESK_TEST_DATABASE_URL set (see tests/postgres.py): a migrated template database."""
    from tests import postgres

    url = postgres.test_database_url()
    if url is None:
        yield None
        return
    name = postgres.create_template(url)
    yield url, name
    postgres.drop(url, name)


@pytest.fixture
def db_url(tmp_path: Path, postgres_template) -> str:
    if postgres_template is not None:
        from sqlalchemy.engine import make_url

        from tests import postgres

        url = postgres.create_from_template(*postgres_template)
        yield url
        postgres.drop(postgres_template[0], make_url(url).database)
        return
    url = f"sqlite+aiosqlite:///{tmp_path / 'seatdesk.db'}"
    database.migrate(url)
    yield url


@pytest.fixture
async def engine(db_url):
    engine = database.create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def db(engine):
    return database.session_factory(engine)


@pytest.fixture
async def demo_db(db, clock):
    from services.importer import load_demo

    await load_demo(db, clock=clock)
    return db


@dataclass
class Connector:
    """A Bot Connector on 127.0.0.1 that records what the bot sends (replies, new messages, updates)."""

    url: str = ""
    activities: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    # Conversations whose requests wait until the test releases them: (release, reached).
    held: dict[str, tuple[asyncio.Event, asyncio.Event]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def hold(self, conversation_id: str) -> tuple[asyncio.Event, asyncio.Event]:
        """(release, reached): set `release` to let the requests through; `reached` is set when one waits.
        Held requests are recorded once released, as Teams would accept them then."""
        self.held[conversation_id] = (asyncio.Event(), asyncio.Event())
        return self.held[conversation_id]

    async def _wait_if_held(self, request: web.Request) -> None:
        held = self.held.get(request.match_info["conversation"])
        if held is not None:
            release, reached = held
            reached.set()
            await release.wait()

    def take(self) -> list[dict[str, Any]]:
        taken, self.activities = self.activities, []
        return taken

    def cards(self) -> list[dict[str, Any]]:
        return [a["content"] for activity in self.take() for a in activity.get("attachments") or []]

    def texts(self) -> list[str]:
        return [a.get("text") or "" for a in self.take()]


@pytest.fixture
async def connector():
    recorder = Connector()

    async def post(request: web.Request) -> web.Response:
        payload = await request.json()
        await recorder._wait_if_held(request)
        recorder.activities.append(payload)
        return web.json_response({"id": f"activity-{next(recorder._ids)}"})

    async def put(request: web.Request) -> web.Response:
        payload = await request.json()
        await recorder._wait_if_held(request)
        recorder.updates.append(payload)
        return web.json_response({"id": request.match_info["activity"]})

    app = web.Application()
    app.router.add_post("/v3/conversations/{conversation}/activities", post)
    app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", post)
    app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", put)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    recorder.url = str(server.make_url("/")).rstrip("/") + "/"
    yield recorder
    for release, _ in recorder.held.values():
        release.set()
    await server.close()


@pytest.fixture
def settings(db_url) -> Settings:
    return Settings(database_url=db_url, allow_anonymous=True, page_size=10, support_contact="Contoso IT Services (help@contoso-it.example)")


@pytest.fixture
async def bot_client(settings, engine, clock, demo_db):
    app = create_app(settings, clock=clock, engine=engine)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


class Deadline:
    """The turn deadline (dialogs/slow.py) under the test's control: it passes when the test says so,
    never by itself. Clear `passed` again for a turn that should have its deadline ahead of it."""

    def __init__(self) -> None:
        self.passed = asyncio.Event()
        self.asked: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.passed.wait()


@pytest.fixture
def deadline(bot_client) -> Deadline:
    from bot.app import RUNTIME
    from dialogs.slow import SlowWork

    bot = bot_client.server.app[RUNTIME].bot
    held = Deadline()
    bot.slow_work = SlowWork(5, tasks=bot.slow_work.tasks, sleep=held.sleep)
    return held


@dataclass(frozen=True)
class Person:
    tenant_id: str
    aad_object_id: str
    name: str
    customer_key: str
    user_id: int


async def person(db, customer_key: str, role: Role, *, partner_staff: bool = False) -> Person:
    async with db() as session:
        row = (
            await session.execute(
                select(User, Customer)
                .join(Customer, User.customer_id == Customer.id)
                .where(Customer.key == customer_key, User.role == role, User.is_partner_staff.is_(partner_staff))
                .order_by(User.id)
            )
        ).first()
    assert row is not None, f"the demo has no {role.value} user at {customer_key}"
    user, customer = row
    return Person(customer.tenant_id, user.aad_object_id, user.name, customer.key, user.id)


class Teams:
    """Sends Teams-shaped activities for one person to /api/messages and reads what came back."""

    def __init__(self, client: TestClient, connector: Connector, who: Person, *, locale: str = "en-US") -> None:
        self.client = client
        self.connector = connector
        self.who = who
        self.locale = locale
        self.conversation_id = f"a:1{uuid.uuid4().hex}"

    def activity(self, type_: str, **extra: Any) -> dict[str, Any]:
        base = {
            "type": type_,
            "id": uuid.uuid4().hex,
            "timestamp": "2026-11-22T09:00:00.000Z",
            "serviceUrl": self.connector.url,
            "channelId": "msteams",
            "from": {"id": f"29:{self.who.aad_object_id}", "name": self.who.name, "aadObjectId": self.who.aad_object_id},
            "conversation": {"conversationType": "personal", "tenantId": self.who.tenant_id, "id": self.conversation_id},
            "recipient": {"id": "28:seatdesk-bot", "name": "Seatdesk"},
            "channelData": {"tenant": {"id": self.who.tenant_id}},
            "locale": self.locale,
        }
        base.update(extra)
        return base

    async def post(self, activity: dict[str, Any]):
        return await self.client.post("/api/messages", json=activity)

    async def say(self, text: str) -> list[dict[str, Any]]:
        response = await self.post(self.activity("message", text=text))
        assert response.status in (200, 201), await response.text()
        return self.connector.take()

    async def install(self) -> list[dict[str, Any]]:
        activity = self.activity("installationUpdate", action="add")
        response = await self.post(activity)
        assert response.status in (200, 201), await response.text()
        return self.connector.take()

    async def click(self, verb: str, data: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        action = {"type": "Action.Execute", "verb": verb, "data": {"verb": verb, **(data or {})}}
        response = await self.post(self.activity("invoke", name="adaptiveCard/action", value={"action": action, "trigger": "manual"}))
        body = await response.json()
        return response.status, body


def card_inputs(card: Any) -> list[dict[str, Any]]:
    """Every Input.* element of a card, in order."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("type"), str) and node["type"].startswith("Input."):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def card_input(card: Any, input_id: str) -> dict[str, Any] | None:
    return next((i for i in card_inputs(card) if i.get("id") == input_id), None)


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute":
                found.append(node)
            for value in node.values():
                if isinstance(value, (dict, list)) and value is not node.get("fallback"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found
