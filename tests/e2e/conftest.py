"""End-to-end fixtures: Seatdesk and the Agents Playground as real processes on 127.0.0.1.

Each test module gets its own bot (fresh SQLite file with the demo data) and its own Playground,
so every module starts with a chat in which the bot has not been installed yet. Both processes are
stopped (whole process group) when the module is done; a failing test gets their logs attached.
Missing tools fail the tests, they never skip them: run `make system-deps node-deps`.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# Loaded by path: pytest runs with --import-mode=importlib, and `tests` need not be importable.
_spec = importlib.util.spec_from_file_location("tests.e2e.playground", Path(__file__).with_name("playground.py"))
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness
_spec.loader.exec_module(harness)


def _require(*, browser: bool = False) -> None:
    missing = harness.missing_tools(browser=browser)
    if missing:
        pytest.fail(f"the end-to-end tests need {', '.join(missing)}: {harness.SETUP_HINT}", pytrace=False)


@pytest.fixture(scope="module")
def seatdesk(tmp_path_factory):
    """`python -m bot serve` on a free 127.0.0.1 port with a new database holding the demo data."""
    _require()
    try:
        bot = harness.start_seatdesk(tmp_path_factory.mktemp("seatdesk"))
    except harness.HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    yield bot
    bot.process.stop()


@pytest.fixture(scope="module")
def identity(seatdesk):
    """The demo admin the Playground plays (from `python -m bot users --json`)."""
    try:
        return harness.choose_identity(seatdesk.users())
    except harness.HarnessError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def playground(seatdesk, identity, tmp_path_factory):
    """The Agents Playground for `seatdesk`, with `identity` as its current user."""
    _require()
    try:
        simulator = harness.start_playground(
            tmp_path_factory.mktemp("playground"), seatdesk.endpoint, harness.playground_config(identity)
        )
    except harness.HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    yield simulator
    simulator.process.stop()


@pytest.fixture(scope="module")
def requester(seatdesk, identity):
    """A Modify user of `identity`'s customer (the demo's Anna Müller at Fabrikam): her orders need approval."""
    try:
        return harness.choose_colleague(seatdesk.users(), identity, "modify")
    except harness.HarnessError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def requester_playground(seatdesk, requester, tmp_path_factory):
    """A second Agents Playground for `seatdesk` with `requester` as its current user: her own Teams
    client (own port, own personal chat), while `playground` stays the admin's."""
    _require()
    config = harness.playground_config(requester, personal_chat_id=f"seatdesk-personal-chat-{requester.user['aad_object_id'][:8]}")
    try:
        simulator = harness.start_playground(tmp_path_factory.mktemp("playground-requester"), seatdesk.endpoint, config)
    except harness.HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    yield simulator
    simulator.process.stop()


@pytest.fixture
async def chat(playground):
    """The personal chat through the Playground's own API (`harness.PlaygroundChat`), open for one test."""
    async with playground.chat() as conversation:
        yield conversation
        # Whatever the test did, the bot must have answered every activity without a server error.
        failed = [
            (e["activityName"], e.get("response"))
            for e in conversation.exchanges
            if e.get("to") == "User Application" and (e.get("response") or {}).get("statusCode", 200) >= 500
        ]
        assert not failed, f"the bot answered with a server error: {failed}"


@pytest.fixture
def require_browser():
    _require(browser=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for name in ("seatdesk", "playground", "requester_playground"):
            running = funcargs.get(name)
            if running is not None:
                report.sections.extend(running.log_sections())
    return report
