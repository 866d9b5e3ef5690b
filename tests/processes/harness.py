"""Real `python -m bot serve` processes against stand-ins that this test process runs on 127.0.0.1.

- Partner Center, Graph and the token endpoint: `tests/partnercenter/fake.py` over HTTPS with a
  test CA (the servers trust it through SSL_CERT_FILE and REQUESTS_CA_BUNDLE). A `Hold` keeps one
  chosen request waiting, *before* the stand-in applies it or *after* it applied it but before it
  answers: the natural moments to SIGKILL a server, with no test hook in Seatdesk itself.
- A Bot Connector that records every reply, new message and card update a server sends.

The stand-ins serve from an event loop in a thread of their own, so the tests stay plain
synchronous code that starts, kills and restarts servers. Every wait has a deadline; polling
loops poll a condition, they never sleep for something to happen.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.cardwalk import card_text
from tests.cardwalk import nodes as _walk
from tests.partnercenter.fake import BODY, FakeMicrosoft, make_ca

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
WAIT = 20.0  # the longest any one expected thing may take
POLL = 0.02  # the interval of a polling loop (a poll, not a wait for something to happen)
CARD = "application/vnd.microsoft.card.adaptive"
PARTNER_TENANT = "a0b610e8-484d-4e4e-aacc-ee4504d6786d"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"


class HarnessError(AssertionError):
    """A server or stand-in did not do in time what the test waited for."""


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(f"not within {timeout:.0f} s: {what}")
        time.sleep(POLL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# -- the stand-ins' event loop ---------------------------------------------------------------
class Background:
    """An asyncio loop in a daemon thread; the synchronous tests hand it coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="stand-ins", daemon=True)
        self._thread.start()

    def run(self, coroutine, timeout: float = WAIT) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def submit(self, coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


# -- holding a request at the stand-in --------------------------------------------------------
@dataclass(eq=False)
class Hold:
    """One request the stand-in keeps waiting. `before`: it has arrived but is not applied (and,
    once released, never will be: its caller is gone). `after`: it was applied, the answer waits.
    `pause`: it waits, then is served as usual (to order two things that would otherwise race)."""

    method: str
    path: str  # a regex searched in the request's path
    stage: str
    arrived: threading.Event = field(default_factory=threading.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    request_id: str | None = None

    def wait(self, timeout: float = WAIT) -> "Hold":
        if not self.arrived.wait(timeout):
            raise HarnessError(f"no {self.method} {self.path} reached the stand-in within {timeout:.0f} s")
        return self


class Gates:
    """The stand-in's innermost middleware: requests that match a `Hold` wait there."""

    def __init__(self, background: Background) -> None:
        self._background = background
        self._holds: list[Hold] = []

    def hold(self, method: str, path: str, stage: str) -> Hold:
        assert stage in ("before", "after", "pause")
        hold = Hold(method, path, stage)
        self._holds.append(hold)
        return hold

    def release(self, hold: Hold) -> None:
        if hold in self._holds:
            self._holds.remove(hold)
        self._background.loop.call_soon_threadsafe(hold.released.set)

    def release_all(self) -> None:
        for hold in list(self._holds):
            self.release(hold)

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        hold = next(
            (h for h in self._holds if not h.arrived.is_set() and h.method == request.method and re.search(h.path, request.path)), None
        )
        if hold is None:
            return await handler(request)
        hold.request_id = request.headers.get("MS-RequestId")
        if hold.stage in ("before", "pause"):
            hold.arrived.set()
            await hold.released.wait()
            if hold.stage == "pause":
                return await handler(request)
            return web.json_response({"code": 503, "description": "not applied: the caller went away"}, status=503)
        response = await handler(request)
        hold.arrived.set()
        await hold.released.wait()
        return response


# -- the Bot Connector ------------------------------------------------------------------------
class Connector:
    """Records what the servers send, per conversation: replies and new messages, and card updates."""

    def __init__(self) -> None:
        self.url = ""
        self.sent: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def _post(self, request: web.Request) -> web.Response:
        activity = await request.json()
        activity["_conversation"] = request.match_info["conversation"]
        activity["_id"] = f"sent-{next(self._ids)}"
        self.sent.append(activity)
        return web.json_response({"id": activity["_id"]})

    async def _put(self, request: web.Request) -> web.Response:
        activity = await request.json()
        activity["_conversation"] = request.match_info["conversation"]
        self.updates.append(activity)
        return web.json_response({"id": request.match_info["activity"]})

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0)
        await site.start()
        self.url = f"http://{HOST}:{self._runner.addresses[0][1]}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def to(self, conversation_id: str) -> list[dict[str, Any]]:
        return [a for a in list(self.sent) if a["_conversation"] == conversation_id]

    def texts(self, conversation_id: str) -> list[str]:
        return [a.get("text") or "" for a in self.to(conversation_id)]


# -- everything the servers talk to -------------------------------------------------------------
class Microsoft(FakeMicrosoft):
    """The stand-in, with tokens that name the app they were issued to: each server of a test can
    sign in as an app of its own, so every request it sends says which server sent it."""

    async def token(self, request: web.Request) -> web.Response:
        response = await super().token(request)
        if response.status == 200:
            body = json.loads(response.body)
            body["access_token"] += "|" + (request[BODY] or {}).get("client_id", "")
            return web.json_response(body)
        return response


def sent_by(recorded) -> str:
    """The app (client id) whose token a recorded request carried."""
    return recorded.headers.get("Authorization", "").rpartition("|")[2]


@dataclass
class StandIns:
    background: Background
    microsoft: Microsoft
    gates: Gates
    connector: Connector
    ca_bundle: Path
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @classmethod
    def start(cls, folder: Path) -> "StandIns":
        background = Background()
        bundle, context = make_ca(folder)
        # One page per customer, and orders that are done at their first poll: the worker runs once
        # a minute, so provisioning must not need several passes.
        microsoft = Microsoft(page_size=100, order_polls_pending=0, provisioning_polls_pending=0)
        stand_ins = cls(background, microsoft, Gates(background), Connector(), bundle)
        background.run(stand_ins._serve(context))
        return stand_ins

    async def _serve(self, context) -> None:
        app = self.microsoft.app()
        app.middlewares.append(self.gates.middleware)  # inside the fake's own: every request is recorded first
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0, ssl_context=context)
        await site.start()
        self.microsoft.base = f"https://{HOST}:{self._runner.addresses[0][1]}"
        await self.connector.start()
        self._session = aiohttp.ClientSession()

    def close(self) -> None:
        self.gates.release_all()

        async def stop() -> None:
            if self._session is not None:
                await self._session.close()
            await self.connector.stop()
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            self.background.run(stop())
        finally:
            self.background.close()

    # -- what Partner Center saw ---------------------------------------------------------------
    def requests(self, method: str, path: str) -> list:
        return [r for r in list(self.microsoft.requests) if r.method == method and re.search(path, r.path)]

    # -- HTTP as Teams sends it ----------------------------------------------------------------
    async def _post(self, url: str, activity: dict[str, Any]) -> tuple[int, Any]:
        async with self._session.post(url, json=activity, timeout=aiohttp.ClientTimeout(total=WAIT)) as response:
            body = await response.json(content_type=None) if response.content_length != 0 else None
            return response.status, body

    def post(self, url: str, activity: dict[str, Any]) -> concurrent.futures.Future:
        return self.background.submit(self._post(url, activity))


# -- a Seatdesk server process ------------------------------------------------------------------
def server_env(stand_ins: StandIns, database_url: str, port: int, client_id: str = CLIENT_ID) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEATDESK_", "MicrosoftApp"))}
    bundle = str(stand_ins.ca_bundle)
    env.update(
        SEATDESK_DATABASE_URL=database_url,
        SEATDESK_HOST=HOST,
        SEATDESK_PORT=str(port),
        SEATDESK_ALLOW_ANONYMOUS="1",  # the tests send no tokens; accepted on loopback only
        SEATDESK_LOAD_DEMO="0",  # the test prepared the database; two servers must not both load it
        SEATDESK_LOG_LEVEL="INFO",
        SEATDESK_PROVIDER="partnercenter",
        SEATDESK_PARTNER_CENTER_URL=stand_ins.microsoft.base,
        SEATDESK_GRAPH_URL=stand_ins.microsoft.base,
        SEATDESK_AUTHORITY_URL=stand_ins.microsoft.base,
        SEATDESK_PC_TENANT_ID=PARTNER_TENANT,
        SEATDESK_PC_CLIENT_ID=client_id,
        SEATDESK_PC_CLIENT_SECRET="test-secret",
        MicrosoftAppId="",
        MicrosoftAppPassword="",
        # aiohttp's default context reads SSL_CERT_FILE; msal's requests reads REQUESTS_CA_BUNDLE.
        SSL_CERT_FILE=bundle,
        REQUESTS_CA_BUNDLE=bundle,
        CURL_CA_BUNDLE=bundle,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


class Seatdesk:
    """`python -m bot serve` in its own process group, on one port for its whole life (a restart
    comes back where Teams, or the load balancer, sends the activities)."""

    def __init__(self, name: str, workdir: Path, stand_ins: StandIns, database_url: str, *, client_id: str = CLIENT_ID) -> None:
        self.name = name
        self.workdir = workdir
        self.port = free_port()
        self.client_id = client_id
        self.env = server_env(stand_ins, database_url, self.port, client_id)
        self.log_path = workdir / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.starts = 0

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}/api/messages"

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def spawn(self) -> None:
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n----- start {self.starts} -----\n")
            log.flush()
            # The working directory is the test's: a developer's .env and var/ are left alone.
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"], env=self.env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_ready(self) -> None:
        url = f"http://{HOST}:{self.port}/healthz"

        def healthy() -> bool:
            if not self.running:
                raise HarnessError(f"{self.name} stopped before it answered /healthz:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status == 200
            except (urllib.error.URLError, OSError):
                return False

        wait_until(healthy, f"{self.name} answers {url}", START_TIMEOUT)

    def start(self) -> "Seatdesk":
        self.spawn()
        self.wait_ready()
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no finishing of what is in flight."""
        if self.popen is None:
            return
        if self.running:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        """TERM (aiohttp's graceful shutdown), KILL after 5 s."""
        if not self.running:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, chars: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return text[-chars:]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


# -- Teams ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    user_id: int
    name: str
    tenant_id: str
    aad_object_id: str


class Teams:
    """One person's personal chat with the bot: activities shaped as Teams sends them."""

    def __init__(self, stand_ins: StandIns, who: Person) -> None:
        self.stand_ins = stand_ins
        self.who = who
        self.conversation_id = f"a:1{uuid.uuid4().hex}"

    def activity(self, type_: str, **extra: Any) -> dict[str, Any]:
        base = {
            "type": type_,
            "id": f"1{uuid.uuid4().int % 10**12:012d}",
            "timestamp": "2026-11-22T09:00:00.000Z",
            "serviceUrl": self.stand_ins.connector.url,
            "channelId": "msteams",
            "from": {"id": f"29:{self.who.aad_object_id}", "name": self.who.name, "aadObjectId": self.who.aad_object_id},
            "conversation": {"conversationType": "personal", "tenantId": self.who.tenant_id, "id": self.conversation_id},
            "recipient": {"id": "28:seatdesk-bot", "name": "Seatdesk"},
            "channelData": {"tenant": {"id": self.who.tenant_id}},
            "locale": "en-US",
        }
        base.update(extra)
        return base

    def say(self, server: Seatdesk, text: str) -> list[dict[str, Any]]:
        """Send a message; returns what the bot sent to this chat during the turn."""
        before = len(self.stand_ins.connector.to(self.conversation_id))
        status, body = self.stand_ins.post(server.endpoint, self.activity("message", text=text)).result(WAIT)
        assert status in (200, 201), f"{server.name} answered {status}: {body}"
        return self.stand_ins.connector.to(self.conversation_id)[before:]

    def invoke(self, verb: str, data: dict[str, Any], *, reply_to: str | None = None) -> dict[str, Any]:
        action = {"type": "Action.Execute", "verb": verb, "data": {"verb": verb, **data}}
        extra = {"replyToId": reply_to} if reply_to else {}
        return self.activity("invoke", name="adaptiveCard/action", value={"action": action, "trigger": "manual"}, **extra)

    def click_later(self, server: Seatdesk, activity: dict[str, Any]) -> concurrent.futures.Future:
        return self.stand_ins.post(server.endpoint, activity)

    def click(self, server: Seatdesk, verb: str, data: dict[str, Any], *, activity: dict[str, Any] | None = None) -> dict[str, Any]:
        """Press a button (or send `activity` again, as Teams retries it); returns the invoke answer."""
        status, body = self.click_later(server, activity or self.invoke(verb, data)).result(WAIT)
        assert status == 200 and isinstance(body, dict), f"{server.name} answered {status}: {body}"
        return body


# -- cards --------------------------------------------------------------------------------------
def buttons(card: dict[str, Any], verb: str | None = None) -> list[dict[str, Any]]:
    return [n for n in _walk(card) if n.get("type") == "Action.Execute" and (verb is None or n.get("verb") == verb)]


def pressed(card: dict[str, Any], verb: str, values: dict[str, Any] | None = None, *, where: Callable[[dict], bool] = lambda data: True) -> dict[str, Any]:
    """The data Teams sends for the `verb` button of `card`: the button's data plus the card's inputs
    that have a value, as shown or as filled in by `values`, each as text (Teams sends "12", not 12)."""
    found = [b for b in buttons(card, verb) if where(b.get("data") or {})]
    assert found, f"no {verb} button on the card: {[b.get('verb') for b in buttons(card)]}\n{card_text(card)}"
    data = dict(found[0].get("data") or {})
    if found[0].get("associatedInputs") != "none":
        shown = {n["id"]: n["value"] for n in _walk(card) if str(n.get("type", "")).startswith("Input.") and n.get("value") not in (None, "")}
        data.update({k: str(v) for k, v in {**shown, **(values or {})}.items() if v not in (None, "")})
    data.pop("verb", None)
    return data


def answered_card(body: dict[str, Any]) -> dict[str, Any]:
    """The card of an invoke answer (it replaces the clicked card)."""
    assert body.get("type") == CARD, f"the invoke was not answered with a card: {body}"
    return body["value"]


def cards_in(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a["content"] for activity in sent for a in activity.get("attachments") or [] if a.get("contentType") == CARD]
