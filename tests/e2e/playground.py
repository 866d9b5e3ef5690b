"""Seatdesk and the Microsoft 365 Agents Playground as real processes on 127.0.0.1.

The end-to-end tests talk to Seatdesk the way a developer does by hand: `python -m bot serve`
against a fresh SQLite file with the demo data, and the Playground (the Teams client simulator,
which is also the bot's Bot Connector) pointed at it. Everything here binds 127.0.0.1 only and
every wait is bounded.

What was learned about the Playground 0.2.28 (undocumented; read from its bundle):
- `POST /_debug/conversation/{id}/installation` is what the web UI calls the first time it shows a
  conversation: the Playground then sends the bot an `installationUpdate` (action "add") and a
  `conversationUpdate` (membersAdded: the user and the bot) at the same time, not one after the
  other. Nothing is sent on start-up.
- Bot messages reach the UI as WebSocket frames `{"action": "createMessage", "message": {...}}` on
  `/_ws_conversation/v1/conversations/stream`; with no client connected they are buffered and
  handed to the next one that connects.
- `POST /_conversation/v1/invoke` forwards an `adaptiveCard/action` invoke and answers with the
  bot's invoke response body (without its `statusCode`); when that names a card, the Playground
  stores it in place of the clicked message's card.
- When a button is pressed, the web UI sends `{"action": {"type", "title", "verb", "data"}}` where
  `data` is the button's data plus the card's inputs that have a value, each as a string (an
  Input.Number's "122"); empty inputs are left out, and so are all inputs for a button with
  `associatedInputs: "none"`. `pressed()` builds the same.
- A bot's update of a posted message (`update_activity`) shows in the log panel as a "message" from
  the bot whose body `id` is that message's id.
- There is no way to switch the current user: no `/_internal` route changes it (only config, configAuth,
  configDebugOptions, customActivities, testConfig exist) and the UI has no user picker. A message's or
  invoke's `from.id` must be a member of the conversation: in the personal chat only `currentUser`
  (anyone else gets 400 UserNotFound), in the group chat any of the configured `users`. So two people
  each with their own 1:1 chat (a requester and an approver) are two Playgrounds, each with its own
  config, port and personal chat id, against the same bot (`requester_playground` in conftest.py).
- A bot's proactive message (`continue_conversation` to the stored reference) reaches that person's
  Playground as an ordinary `createMessage` frame, and its web UI shows it at once.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from sqlalchemy import select

from bot.cardcheck import CHROMIUM, SETUP_HINT
from services import db as database
from services.cases import merge_questions
from services.models import ApprovalRequest, CaseQuestion, Customer, Offer, Order, Product, Subscription, SupportCase, User
from services.subscriptions import Overview, load_views, overview
from tests.cardwalk import card_text
from tests.cardwalk import nodes as _walk

REPO_ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
NODE_MODULES = REPO_ROOT / "node_modules"
PLAYGROUND_CLI = NODE_MODULES / "@microsoft" / "m365agentsplayground" / "cli.js"
FORCE_LOOPBACK = E2E_DIR / "force-loopback.cjs"
CONFIG_TEMPLATE = E2E_DIR / "playground-config.template.yml"
SCREENSHOTS = REPO_ROOT / "build" / "e2e"

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
REPLY_TIMEOUT = 15.0
# Customers whose admin may be the Playground's user, in order of preference (customer staff, not the MSP).
CUSTOMERS = ("Fabrikam GmbH", "Northwind Traders")
PLAYGROUND_USERS = 5  # the Playground's config schema wants exactly five `users`
LISTENING = re.compile(r"Listening on (\d+)")
CARD = "application/vnd.microsoft.card.adaptive"


class HarnessError(RuntimeError):
    """A process of the harness could not be started or did not answer in time."""


def missing_tools(*, browser: bool = False) -> list[str]:
    """What the end-to-end tests need but this machine lacks."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (Node.js)")
    if not PLAYGROUND_CLI.is_file():
        missing.append(str(PLAYGROUND_CLI.relative_to(REPO_ROOT)))
    if browser and not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (Debian's chromium)")
    return missing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds


@dataclass
class Process:
    """A child in its own process group whose output goes to a log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    _pump: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, max_chars: int = 20_000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"(no log: {error})"
        return text if len(text) <= max_chars else "…" + text[-max_chars:]

    def stop(self) -> None:
        """Stop the whole process group: TERM, then KILL after 5 s."""
        if self.running:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=5)
        if self._pump is not None:
            self._pump.join(timeout=5)

    def fail(self, message: str) -> HarnessError:
        state = "running" if self.running else f"exited with {self.popen.returncode}"
        return HarnessError(f"{self.name}: {message} ({state}); its log {self.log_path}:\n{self.log_tail(8_000)}")


def _spawn(
    name: str, command: list[str], *, env: dict[str, str], cwd: Path, log_path: Path, on_line: Callable[[str], None] | None = None
) -> Process:
    """Start `command` in a new session (so its whole group can be stopped), logging to `log_path`."""
    log = log_path.open("w", encoding="utf-8")
    if on_line is None:
        popen = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return Process(name, popen, log_path)
    popen = subprocess.Popen(
        command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, text=True, encoding="utf-8", errors="replace", bufsize=1,
    )

    def pump() -> None:
        with log:
            for line in popen.stdout:
                log.write(line)
                log.flush()
                on_line(line)

    thread = threading.Thread(target=pump, name=f"{name}-output", daemon=True)
    thread.start()
    return Process(name, popen, log_path, thread)


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def _wait_for_http(process: Process, url: str, timeout: float = START_TIMEOUT) -> None:
    deadline = _deadline(timeout)
    while time.monotonic() < deadline:
        if not process.running:
            raise process.fail(f"stopped before {url} answered")
        if _http_status(url) == 200:
            return
        time.sleep(0.1)  # a poll interval, not a wait for something to happen
    raise process.fail(f"{url} did not answer 200 within {timeout:.0f} s")


# -- Seatdesk ------------------------------------------------------------------------------


@dataclass
class Seatdesk:
    process: Process
    port: int
    database_url: str
    env: dict[str, str]

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}/api/messages"

    def log_sections(self) -> list[tuple[str, str]]:
        return [(f"seatdesk log ({self.process.log_path})", self.process.log_tail())]

    def users(self) -> list[dict[str, Any]]:
        """`python -m bot users --json` against the same database."""
        done = subprocess.run(
            [sys.executable, "-m", "bot", "users", "--json"], env=self.env, cwd=self.process.log_path.parent,
            capture_output=True, text=True, timeout=START_TIMEOUT,
        )
        if done.returncode != 0:
            raise HarnessError(f"`python -m bot users --json` failed ({done.returncode}):\n{done.stderr}")
        return json.loads(done.stdout)


def seatdesk_env(workdir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEATDESK_", "MicrosoftApp"))}
    env.update(
        SEATDESK_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'seatdesk.db'}",
        SEATDESK_HOST=HOST,
        SEATDESK_PORT=str(port),
        SEATDESK_ALLOW_ANONYMOUS="1",  # the Playground sends no token; only ever on 127.0.0.1
        SEATDESK_LOAD_DEMO="1",
        SEATDESK_LOG_LEVEL="INFO",
        MicrosoftAppId="",
        MicrosoftAppPassword="",
        PYTHONUNBUFFERED="1",
        # It runs in the tmp dir (so a developer's .env and var/ are left alone) but imports from here.
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


def start_seatdesk(workdir: Path) -> Seatdesk:
    """`python -m bot serve` on a free port against a new SQLite file; returns once /healthz says 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = seatdesk_env(workdir, port)
    process = _spawn("seatdesk", [sys.executable, "-m", "bot", "serve"], env=env, cwd=workdir, log_path=workdir / "seatdesk.log")
    try:
        _wait_for_http(process, f"http://{HOST}:{port}/healthz")
    except BaseException:
        process.stop()
        raise
    return Seatdesk(process, port, env["SEATDESK_DATABASE_URL"], env)


# -- the Playground's mock tenant ----------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """The demo person the Playground plays, and their colleagues in the same tenant."""

    customer: str
    tenant_id: str
    user: dict[str, Any]
    colleagues: tuple[dict[str, Any], ...]


def choose_identity(users: list[dict[str, Any]], customers: tuple[str, ...] = CUSTOMERS) -> Identity:
    """An active admin of the first customer in `customers` the demo has, with their colleagues."""
    for customer in customers:
        admins = [
            u for u in users
            if u["customer"] == customer and u["role"] == "admin" and not u["partner_staff"] and u.get("status", "active") == "active"
        ]
        if admins:
            admin = admins[0]
            colleagues = tuple(u for u in users if u["tenant_id"] == admin["tenant_id"] and u["aad_object_id"] != admin["aad_object_id"])
            return Identity(customer, admin["tenant_id"], admin, colleagues)
    raise HarnessError(f"the demo data has no active admin at {' or '.join(customers)}: {json.dumps(users, indent=1)[:2000]}")


def choose_colleague(users: list[dict[str, Any]], identity: Identity, role: str) -> Identity:
    """An active person with `role` at `identity`'s customer (someone else), with their colleagues."""
    found = [
        u for u in users
        if u["tenant_id"] == identity.tenant_id and u["role"] == role and not u["partner_staff"]
        and u.get("status", "active") == "active" and u["aad_object_id"] != identity.user["aad_object_id"]
    ]
    if not found:
        raise HarnessError(f"the demo data has no active {role} user at {identity.customer}: {json.dumps(users, indent=1)[:2000]}")
    person = found[0]
    colleagues = tuple(u for u in users if u["tenant_id"] == identity.tenant_id and u["aad_object_id"] != person["aad_object_id"])
    return Identity(identity.customer, identity.tenant_id, person, colleagues)


def _playground_user(user: dict[str, Any]) -> dict[str, str]:
    given, _, surname = user["name"].partition(" ")
    return {
        "id": f"29:{user['aad_object_id']}",
        "name": user["name"],
        "userPrincipleName": user["email"],  # sic: the Playground's spelling
        "aadObjectId": user["aad_object_id"],
        "givenName": given,
        "surname": surname or given,
        "email": user["email"],
    }


def _stand_in(number: int, email_domain: str) -> dict[str, str]:
    """A tenant member Seatdesk does not know, to make up the Playground's five users."""
    aad = f"00000000-0000-4000-8000-{number:012d}"
    return {
        "id": f"29:{aad}",
        "name": f"Unregistered Colleague {number}",
        "userPrincipleName": f"unregistered.{number}@{email_domain}",
        "aadObjectId": aad,
        "givenName": "Unregistered",
        "surname": f"Colleague {number}",
        "email": f"unregistered.{number}@{email_domain}",
    }


def playground_config(identity: Identity, template: Path = CONFIG_TEMPLATE, *, personal_chat_id: str | None = None) -> dict[str, Any]:
    """The mock tenant with `identity` as the current user. A second Playground for another person (their
    own Teams client) gets its own `personal_chat_id`: in Teams every person's chat with the bot has its own id."""
    config = yaml.safe_load(template.read_text(encoding="utf-8"))
    if personal_chat_id is not None:
        config["personalChat"] = {**config["personalChat"], "id": personal_chat_id}
    domain = identity.user["email"].rpartition("@")[2] or "example.com"
    users = [_playground_user(u) for u in identity.colleagues[:PLAYGROUND_USERS]]
    users += [_stand_in(n, domain) for n in range(1, PLAYGROUND_USERS - len(users) + 1)]
    config.update(tenantId=identity.tenant_id, currentUser=_playground_user(identity.user), users=users)
    return config


def write_config(config: dict[str, Any], path: Path) -> Path:
    header = "# Written by tests/e2e/playground.py for one test run.\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# -- the Playground ------------------------------------------------------------------------


@dataclass
class Playground:
    process: Process
    port: int
    config: dict[str, Any]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def transcript_path(self) -> Path:
        return self.log_path.with_name("exchanges.jsonl")

    def record(self, frame: dict[str, Any]) -> None:
        """Keep a log-panel entry: with a log client connected the Playground writes it nowhere else."""
        entry = frame.get("log") or {}
        if frame.get("logAction") == "appendLog" and "activityName" in entry:
            with self.transcript_path.open("a", encoding="utf-8") as transcript:
                transcript.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def transcript(self) -> list[dict[str, Any]]:
        """The log-panel entries recorded so far (by `record`)."""
        if not self.transcript_path.is_file():
            return []
        return [json.loads(line) for line in self.transcript_path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def cards_sent(self) -> list[dict[str, Any]]:
        """Every card the bot has sent so far, in order: in messages it posted and in invoke responses."""
        found = []
        for entry in self.transcript():
            body = (entry.get("request") or {}).get("body") or {}
            if entry.get("from") == "User Application" and entry.get("activityName") == "message":
                found += [a["content"] for a in body.get("attachments") or [] if a.get("contentType") == CARD]
            elif entry.get("to") == "User Application" and entry.get("activityName") == "invoke":
                answer = (entry.get("response") or {}).get("body") or {}
                if isinstance(answer, dict) and answer.get("type") == CARD:
                    found.append(answer["value"])
        return found

    async def card_sent(self, title: str, *, after: int = 0, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        """The first card titled `title` the bot sent from card number `after` on, once the log panel has shown it."""
        deadline = _deadline(timeout)
        while True:
            cards = self.cards_sent()[after:]
            found = next((c for c in cards if card_title(c) == title), None)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"the log panel shows no card titled {title!r} within {timeout:.0f} s; it shows {[card_title(c) for c in cards]}")
            await asyncio.sleep(0.05)  # a poll interval: the transcript is a file written by the page's log feed

    def log_sections(self) -> list[tuple[str, str]]:
        """Its console, its own log, and every activity and answer it logged (exchanges.jsonl)."""
        sections = [(f"playground console ({self.process.log_path})", self.process.log_tail(4_000))]
        for name, path in (("playground log", self.log_path), ("playground exchanges", self.transcript_path)):
            if path.is_file():
                text = path.read_text(errors="replace")
                sections.append((f"{name} ({path})", text if len(text) <= 30_000 else "…" + text[-30_000:]))
        return sections

    @property
    def personal_chat_id(self) -> str:
        return self.config["personalChat"]["id"]

    def chat(self) -> PlaygroundChat:
        return PlaygroundChat(self.url, self.personal_chat_id, self.config["currentUser"]["id"], on_log=self.record)


def _start_playground_once(workdir: Path, bot_endpoint: str, config_path: Path, attempt: int) -> tuple[Process, int, int]:
    requested = free_port()
    env = dict(os.environ)
    env.update(
        TEAMSAPPTESTER_BROWSER="none",
        BOT_ENDPOINT=bot_endpoint,
        NODE_OPTIONS=f'-r "{FORCE_LOOPBACK}"',
        M365_AGENTS_PLAYGROUND_CONFIG_PATH=str(config_path),
        M365_AGENTS_PLAYGROUND_LOGFILE=str(workdir / f"playground-{attempt}.log"),
    )
    command = [
        shutil.which("node") or "node", str(PLAYGROUND_CLI),
        "--port", str(requested), "-c", "msteams",
        "--service-url", f"http://{HOST}:{requested}/_connector",
        "--disable-telemetry",
    ]
    listening: list[int] = []
    ready = threading.Event()

    def on_line(line: str) -> None:
        match = LISTENING.search(line)
        if match and not ready.is_set():
            listening.append(int(match.group(1)))
            ready.set()

    process = _spawn("playground", command, env=env, cwd=workdir, log_path=workdir / f"playground-{attempt}.out", on_line=on_line)
    deadline = _deadline(START_TIMEOUT)
    while not ready.wait(timeout=0.1):
        if not process.running or time.monotonic() > deadline:
            process.stop()
            # A bad config file (ConfigFileParseError) is explained only in its own log.
            logfile = Path(env["M365_AGENTS_PLAYGROUND_LOGFILE"])
            own_log = logfile.read_text(errors="replace")[-8_000:] if logfile.is_file() else "(none)"
            error = process.fail(f"no `Listening on N` line within {START_TIMEOUT:.0f} s")
            raise HarnessError(f"{error}\nits own log {logfile}:\n{own_log}")
    return process, requested, listening[0]


def start_playground(workdir: Path, bot_endpoint: str, config: dict[str, Any]) -> Playground:
    """The Playground on a free loopback port, for `bot_endpoint`; returns once its API answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = write_config(config, workdir / "m365agentsplayground.yml")
    for attempt in range(1, 4):
        process, requested, actual = _start_playground_once(workdir, bot_endpoint, config_path, attempt)
        if actual == requested:
            break
        # It moved to another port, so the --service-url it gives the bot is wrong: try again.
        process.stop()
    else:
        raise HarnessError(f"the Playground would not listen on the port it was given (asked {requested}, got {actual})")
    try:
        # Not /_internal/v1/config: that one keeps logging after it answers, and 0.2.28 crashes
        # (ERR_HTTP_HEADERS_SENT) if a log WebSocket closes meanwhile.
        _wait_for_http(process, f"http://{HOST}:{actual}/_internal/v1/testConfig")
    except BaseException:
        process.stop()
        raise
    return Playground(process, actual, config, workdir / f"playground-{attempt}.log")


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket `pid` listens on, read from /proc (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            cols = row.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            address = socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, words)
            found.add((address, int(hex_port, 16)))
    return found


# -- talking to the Playground's own API ------------------------------------------------------


@dataclass
class BotMessage:
    """A message the bot posted, as the Playground's web UI receives it."""

    id: str
    text: str
    cards: list[dict[str, Any]]
    frame: dict[str, Any]


@dataclass
class PlaygroundChat:
    """The personal chat as the Playground's web UI drives it: its WebSocket and its REST calls."""

    base_url: str
    conversation_id: str
    user_id: str
    on_log: Callable[[dict[str, Any]], None] | None = None
    messages: list[BotMessage] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    # The log panel's feed: one entry per activity exchanged, with the request and the response.
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None
    _sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)
    _readers: list[asyncio.Task] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _activities_sent: int = 0  # activities the Playground was asked to send to the bot

    async def __aenter__(self) -> PlaygroundChat:
        self._session = aiohttp.ClientSession(base_url=self.base_url, timeout=aiohttp.ClientTimeout(total=REPLY_TIMEOUT))
        for path, handle in (("/_ws_conversation/v1/conversations/stream", self._on_conversation), ("/_ws/log/stream", self._on_log)):
            socket_ = await self._session.ws_connect(path)
            self._sockets.append(socket_)
            self._readers.append(asyncio.create_task(self._read(socket_, handle)))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # 0.2.28 can crash (ERR_HTTP_HEADERS_SENT) when a log socket closes while it is still logging,
        # so close only once everything sent has been answered and logged.
        try:
            await self.until(self._settled, timeout=5, what="the Playground logging every exchange")
        except AssertionError:
            pass
        for reader in self._readers:
            reader.cancel()
        for socket_ in self._sockets:
            await socket_.close()
        if self._session is not None:
            await self._session.close()

    async def _read(self, socket_: aiohttp.ClientWebSocketResponse, handle: Callable[[dict[str, Any]], None]) -> None:
        async for frame in socket_:
            if frame.type == aiohttp.WSMsgType.TEXT:
                handle(json.loads(frame.data))
                self._arrived.set()

    def _on_conversation(self, data: dict[str, Any]) -> None:
        self.frames.append(data)
        message = data.get("message") or {}
        if data.get("action") == "createMessage" and data.get("actionConversationId") == self.conversation_id:
            cards = [a["content"] for a in message.get("attachments") or [] if a.get("contentType") == CARD]
            self.messages.append(BotMessage(str(message.get("messageId")), message.get("text") or "", cards, data))

    def _on_log(self, data: dict[str, Any]) -> None:
        if self.on_log is not None:
            self.on_log(data)
        entry = data.get("log") or {}
        if data.get("logAction") == "appendLog" and "activityName" in entry:
            self.exchanges.append(entry)

    def _settled(self) -> bool:
        answered = sum(1 for e in self.exchanges if e.get("to") == "User Application")
        posted = sum(1 for e in self.exchanges if e.get("from") == "User Application")
        return answered >= self._activities_sent and posted >= len(self.messages)

    def sent_to_bot(self, activity_type: str) -> list[dict[str, Any]]:
        """The Playground's activities of this type that the bot has answered: {request, response, ...}."""
        return [e for e in self.exchanges if e.get("to") == "User Application" and e.get("activityName") == activity_type]

    async def until(self, condition: Callable[[], Any], *, timeout: float = REPLY_TIMEOUT, what: str = "the condition") -> Any:
        """Wait until `condition()` is truthy, re-checking whenever a frame arrives."""
        deadline = _deadline(timeout)
        while not (result := condition()):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or any(reader.done() for reader in self._readers):
                raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return result

    async def config(self) -> dict[str, Any]:
        """The mock tenant as the Playground loaded it (the side-effect-free twin of /_internal/v1/config)."""
        async with self._session.get("/_internal/v1/testConfig") as response:
            response.raise_for_status()
            return await response.json()

    async def install(self) -> None:
        """What the web UI does when it first shows the chat: installationUpdate + conversationUpdate."""
        async with self._session.post(f"/_debug/conversation/{self.conversation_id}/installation", json={}) as response:
            assert response.status == 200, f"install: HTTP {response.status} {await response.text()}"
        self._activities_sent += 2

    async def say(self, text: str) -> str:
        body = {"type": "text", "text": text, "textFormat": "plain", "from": {"id": self.user_id}}
        async with self._session.post(f"/_conversation/v1/conversations/{self.conversation_id}/messages", json=body) as response:
            assert response.status == 200, f"say {text!r}: HTTP {response.status} {await response.text()}"
            self._activities_sent += 1
            return (await response.json())["messageId"]

    async def click(self, message: BotMessage, action: dict[str, Any]) -> dict[str, Any]:
        """Press an Action.Execute button of `message`; returns the invoke response the Playground got."""
        body = {
            "name": "adaptiveCard/action",
            "value": {"action": action},  # as the web UI sends it (Teams adds "trigger": "manual")
            "from": {"id": self.user_id},
            "conversation": {"id": self.conversation_id},
            "replyToId": message.id,
        }
        async with self._session.post("/_conversation/v1/invoke", json=body) as response:
            text = await response.text()
            assert response.status == 200, f"invoke {action.get('verb')}: HTTP {response.status} {text}"
            self._activities_sent += 1
            return json.loads(text)

    async def wait_for(
        self, predicate: Callable[[BotMessage], bool], *, after: int = 0, timeout: float = REPLY_TIMEOUT, what: str = "a message"
    ) -> BotMessage:
        """The first bot message from index `after` on that satisfies `predicate`."""
        try:
            return await self.until(lambda: next((m for m in self.messages[after:] if predicate(m)), None), timeout=timeout, what=what)
        except AssertionError:
            seen = [(m.text, [card_title(c) for c in m.cards]) for m in self.messages[after:]]
            raise AssertionError(f"no bot message with {what} within {timeout:.0f} s; the bot sent {seen}") from None

    async def wait_for_card(
        self, title: str | Callable[[str], bool], *, after: int = 0, timeout: float = REPLY_TIMEOUT
    ) -> tuple[BotMessage, dict[str, Any]]:
        """The first bot card from message `after` on whose heading is `title` (or satisfies it)."""
        matches = title if callable(title) else (lambda t: t == title)
        message = await self.wait_for(
            lambda m: any(matches(card_title(c)) for c in m.cards), after=after, timeout=timeout, what=f"a card titled {title!r}"
        )
        return message, next(c for c in message.cards if matches(card_title(c)))


# -- what the bot should show, read from the database it serves -------------------------------


async def _read(database_url: str, work):
    engine = database.create_engine(database_url)
    try:
        async with database.session_factory(engine)() as session:
            return await work(session)
    finally:
        await engine.dispose()


async def _customer_id(session, name: str) -> int:
    return (await session.execute(select(Customer.id).where(Customer.name == name))).scalar_one()


async def expected_overview(database_url: str, customer: str) -> Overview:
    """The dashboard figures for `customer` now."""

    async def work(session):
        return await overview(session, await _customer_id(session, customer), datetime.now(timezone.utc))

    return await _read(database_url, work)


async def subscription_names(database_url: str, customer: str) -> dict[int, str]:
    """{subscription id: display name} of every subscription of `customer`."""

    async def work(session):
        views = await load_views(session, await _customer_id(session, customer), datetime.now(timezone.utc))
        return {v.id: v.name for v in views}

    return await _read(database_url, work)


async def subscription_quantity(database_url: str, subscription_id: int) -> int:
    """The seats of one subscription as the database holds them now."""

    async def work(session):
        return (await session.execute(select(Subscription.quantity).where(Subscription.id == subscription_id))).scalar_one()

    return await _read(database_url, work)


async def required_case_questions(database_url: str, customer: str) -> list[str]:
    """The labels of the reseller's required case questions for `customer` (its own and everyone's)."""

    async def work(session):
        customer_id = await _customer_id(session, customer)
        rows = (
            await session.execute(select(CaseQuestion).where((CaseQuestion.customer_id.is_(None)) | (CaseQuestion.customer_id == customer_id)))
        ).scalars().all()
        return [q.label for q in merge_questions(list(rows), customer_id) if q.required]

    return await _read(database_url, work)


async def support_case(database_url: str, number: str) -> dict[str, Any] | None:
    """A case as the database holds it: {title, status, answers}, or None."""

    async def work(session):
        row = (await session.execute(select(SupportCase).where(SupportCase.number == number))).scalar_one_or_none()
        return None if row is None else {"title": row.title, "status": row.status.value, "answers": row.answers}

    return await _read(database_url, work)


async def order_record(database_url: str, number: str) -> dict[str, Any] | None:
    """An order as the database holds it: {status, requester, approval, decided_by, lines: [{product, quantity,
    term, billing, offer_id, subscription: {id, offer_id, quantity, status, is_trial, provider_id} or None}]}, or None."""

    async def work(session):
        order = (await session.execute(select(Order).where(Order.number == number))).scalar_one_or_none()
        if order is None:
            return None
        approval = (await session.execute(select(ApprovalRequest).where(ApprovalRequest.order_id == order.id))).scalar_one_or_none()
        decided_by = await session.get(User, approval.decided_by_id) if approval and approval.decided_by_id else None
        lines = []
        for line in order.lines:
            product = (await session.execute(select(Product.name).join(Offer, Offer.product_id == Product.id).where(Offer.id == line.offer_id))).scalar_one()
            sub = await session.get(Subscription, line.subscription_id) if line.subscription_id else None
            lines.append({
                "product": product, "quantity": line.quantity, "term": line.term.value, "billing": line.billing.value, "offer_id": line.offer_id,
                "subscription": None if sub is None else {
                    "id": sub.id, "offer_id": sub.offer_id, "quantity": sub.quantity, "status": sub.status.value, "is_trial": sub.is_trial, "provider_id": sub.provider_id,
                },
            })
        return {
            "status": order.status.value,
            "requester": (await session.get(User, order.requester_id)).name,
            "approval": approval.status.value if approval else None,
            "decided_by": decided_by.name if decided_by else None,
            "lines": lines,
        }

    return await _read(database_url, work)


async def product_subscriptions(database_url: str, customer: str, product: str) -> list[dict[str, Any]]:
    """Every subscription of `customer` to `product` (by name): [{id, quantity, status, is_trial, provider_id}]."""

    async def work(session):
        rows = (
            await session.execute(
                select(Subscription).join(Offer, Subscription.offer_id == Offer.id).join(Product, Offer.product_id == Product.id)
                .where(Subscription.customer_id == await _customer_id(session, customer), Product.name == product)
            )
        ).scalars().all()
        return [{"id": s.id, "quantity": s.quantity, "status": s.status.value, "is_trial": s.is_trial, "provider_id": s.provider_id} for s in rows]

    return await _read(database_url, work)


# -- reading cards --------------------------------------------------------------------------


def card_title(card: dict[str, Any]) -> str:
    """The text of a card's first TextBlock (Seatdesk's heading)."""
    return next((n.get("text", "") for n in _walk(card.get("body", [])) if n.get("type") == "TextBlock"), "")


def card_facts(card: dict[str, Any]) -> dict[str, str]:
    return {f["title"]: f["value"] for n in _walk(card) if n.get("type") == "FactSet" for f in n.get("facts", [])}


def card_figures(card: dict[str, Any]) -> dict[str, str]:
    """Big figures drawn as columns of a value TextBlock over a label TextBlock: {label: value}."""
    figures = {}
    for node in _walk(card):
        if node.get("type") != "Column":
            continue
        blocks = [i for i in node.get("items", []) if i.get("type") == "TextBlock"]
        if len(blocks) == 2:
            figures[blocks[1]["text"]] = blocks[0]["text"]
    return figures


def card_actions(card: dict[str, Any], *, verb: str | None = None) -> list[dict[str, Any]]:
    return [n for n in _walk(card) if n.get("type") == "Action.Execute" and (verb is None or n.get("verb") == verb)]


def card_action(card: dict[str, Any], title: str) -> dict[str, Any]:
    """The one Action.Execute button titled `title`."""
    found = [a for a in card_actions(card) if a.get("title") == title]
    assert len(found) == 1, f"{len(found)} buttons titled {title!r} on the card {card_title(card)!r}: {[a.get('title') for a in card_actions(card)]}"
    return found[0]


def card_inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every input of the card by its id."""
    return {n["id"]: n for n in _walk(card) if str(n.get("type", "")).startswith("Input.") and "id" in n}


def pressed(card: dict[str, Any], action: dict[str, Any], values: dict[str, Any] | None = None) -> dict[str, Any]:
    """`action` as the web UI sends it when pressed: its data plus the card's inputs that have a value
    (as shown, then as filled in by `values`), unless the button sends no inputs. Like the UI, it
    leaves empty inputs out and sends what was typed as text (an Input.Number's "122")."""
    data = dict(action.get("data") or {})
    if action.get("associatedInputs") != "none":
        shown = {key: element["value"] for key, element in card_inputs(card).items() if element.get("value") not in (None, "")}
        data.update({key: value for key, value in {**shown, **(values or {})}.items() if value not in (None, "")})
    sent = {key: action[key] for key in ("type", "title", "verb") if key in action}
    return {**sent, "data": data}
