"""Issue 10: whole activities with random shapes POSTed to /api/messages (hypothesis). Whatever arrives,
the answer is one of 200, 201, 400, 401, 403, 413, 415 — never a 5xx — and no reply carries a traceback
or the apology of an unhandled exception.

Hypothesis drives async tests poorly, so each test draws its examples with a synchronous @given
(deterministic: derandomize=True) and posts them on the running loop, against one app."""
from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.models import Role
from tests.attack.conftest import APOLOGY
from tests.conftest import Teams, person

ALLOWED = {200, 201, 400, 401, 403, 413, 415}
EXAMPLES = 40
MARKUP = ["<at>Seatdesk</at>", "<at>", "</at>", "**", "__", "<script>alert(1)</script>", "&lt;b&gt;", "{{x}}", "${jndi:x}",
          "'; drop table users; --", "\u202e", "\u0000", "\ufeff", "🙂", "Größe", "日本語", "\n", "[link](javascript:x)"]


def draw(strategy: st.SearchStrategy, n: int = EXAMPLES) -> list[Any]:
    found: list[Any] = []

    @settings(max_examples=n, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much, HealthCheck.large_base_example])
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    collect()
    return found


words = st.one_of(st.text(max_size=40), st.sampled_from(MARKUP), st.lists(st.sampled_from(MARKUP + ["30", "seats", "order", "E3"]), max_size=8).map(" ".join))
long_text = st.builds(lambda piece, n: (piece * n)[:30_000], st.text(min_size=1, max_size=12) | st.sampled_from(MARKUP), st.integers(1, 30_000))
strings = st.one_of(words, long_text)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), strings)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
ACTIVITY_TYPES = ["message", "invoke", "conversationUpdate", "installationUpdate", "messageReaction", "event", "typing", "endOfConversation", "", "MESSAGE"]
INVOKE_NAMES = ["adaptiveCard/action", "composeExtension/query", "task/fetch", "signin/verifyState", "fileConsent/invoke", ""]


def _field(kept: st.SearchStrategy) -> st.SearchStrategy:
    """A field of a real activity: kept as Teams sends it, replaced by random JSON, or missing."""
    return st.one_of(kept, json_values, st.just(KeyError))


def activities(base: dict[str, Any], *, reach_the_turn: bool = False) -> st.SearchStrategy:
    """Random activities; with reach_the_turn, conversation and from stay as Teams sends them (so the
    activity passes the app's checks and reaches the turn handler)."""
    action = st.fixed_dictionaries({
        "type": st.sampled_from(["Action.Execute", "Action.Submit"]) | json_values,
        "verb": st.sampled_from(["seats.review", "seats.confirm", "subscription.details", "case.submit", "help", "kb.ask", "cart.add"]) | json_values,
        "data": st.dictionaries(st.sampled_from(["id", "v", "op", "quantity", "verb", "number", "question", "order"]), json_values, max_size=5) | json_values,
    })
    value = st.one_of(st.fixed_dictionaries({"action": action | json_values, "trigger": st.just("manual") | json_values}), json_values)
    attachment = st.fixed_dictionaries({
        "contentType": st.sampled_from(["application/vnd.microsoft.teams.file.download.info", "image/png", "text/html", "application/vnd.microsoft.card.adaptive"]) | json_values,
        "content": st.fixed_dictionaries({"downloadUrl": st.just("http://127.0.0.1:9/x") | json_values, "fileType": json_values}) | json_values,
        "contentUrl": st.just("http://127.0.0.1:9/img") | json_values,
        "name": strings,
    })
    fields = {
        "type": st.sampled_from(ACTIVITY_TYPES) | json_values,
        "name": st.sampled_from(INVOKE_NAMES) | json_values,
        "text": strings | json_values,
        "value": value,
        "channelData": _field(st.just(base["channelData"])),
        "conversation": st.just(base["conversation"]) if reach_the_turn else _field(st.just(base["conversation"])),
        "from": st.just(base["from"]) if reach_the_turn else _field(st.just(base["from"])),
        "attachments": st.lists(attachment | json_values, max_size=3) | json_values,
        "locale": st.sampled_from(["en-US", "de-DE", "xx", "", "de"]) | json_values,
        "id": st.builds(lambda: uuid.uuid4().hex) | json_values,
        "replyToId": st.none() | strings,
        "entities": st.lists(json_values, max_size=3),
        "membersAdded": st.lists(st.fixed_dictionaries({"id": st.just("28:seatdesk-bot") | strings}), max_size=2),
        "action": st.sampled_from(["add", "remove"]) | json_values,
    }

    def build(parts: dict[str, Any]) -> dict[str, Any]:
        activity = {k: v for k, v in base.items() if k not in parts}
        for key, value_ in parts.items():
            if value_ is not KeyError:
                activity[key] = value_
        return activity

    return st.fixed_dictionaries({}, optional=fields).map(build)


def _problems(status: int, body: str, sent: list[dict[str, Any]]) -> list[str]:
    found = []
    if status not in ALLOWED:
        found.append(f"HTTP {status}: {body[:300]}")
    everything = body + json.dumps(sent, ensure_ascii=False)
    if "Traceback" in everything:
        found.append("a traceback in a reply")
    if APOLOGY in everything:
        found.append("an unhandled exception in the turn (error.apology)")
    if '"statusCode": 500' in everything or '"statusCode":500' in everything:
        found.append("an invoke answered with statusCode 500")
    return found


async def _fuzz(bot_client, connector, examples: list[Any], post) -> list[str]:
    failures = []
    for example in examples:
        status, body = await post(example)
        sent = connector.take() + connector.updates
        connector.updates.clear()
        for problem in _problems(status, body, sent):
            failures.append(f"{problem} <- {json.dumps(example, ensure_ascii=False)[:400]}")
    return failures


async def test_random_activities_never_5xx(bot_client, connector, demo_db):
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.ADMIN))
    base = teams.activity("message", text="hello")
    examples = draw(activities(base, reach_the_turn=True)) + draw(activities(base))
    assert len(examples) >= EXAMPLES

    async def post(activity):
        response = await bot_client.post("/api/messages", data=json.dumps(activity), headers={"Content-Type": "application/json"})
        return response.status, await response.text()

    failures = await _fuzz(bot_client, connector, examples, post)
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:20])


async def test_random_card_actions_never_5xx(bot_client, connector, demo_db):
    """The invoke every card button sends, with random verbs and data (all other fields as Teams sends them)."""
    teams = Teams(bot_client, connector, await person(demo_db, "fabrikam", Role.MODIFY))
    from dialogs.router import VERBS

    verbs = st.sampled_from(sorted(VERBS)) | strings
    data = st.dictionaries(st.sampled_from(["id", "v", "op", "quantity", "delta", "timing", "date", "enable", "order", "decision", "number",
                                            "comment", "query", "question", "page", "product", "offer", "item", "customer", "users", "form_id", "title"]) | st.text(max_size=8),
                           json_values, max_size=6)
    examples = draw(st.tuples(verbs, data))

    async def post(example):
        verb, data_ = example
        action = {"type": "Action.Execute", "verb": verb, "data": {"verb": verb, **data_}}
        response = await teams.post(teams.activity("invoke", name="adaptiveCard/action", value={"action": action, "trigger": "manual"}))
        return response.status, await response.text()

    failures = await _fuzz(bot_client, connector, examples, post)
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:20])


async def test_random_raw_bodies_never_5xx(bot_client, connector, demo_db):
    """Bodies that are not activities at all: other JSON, broken JSON, other content types, empty."""
    raw = st.one_of(
        json_values.map(lambda v: (json.dumps(v), "application/json")),
        st.binary(max_size=200).map(lambda b: (b, "application/json")),
        st.tuples(strings, st.sampled_from(["text/plain", "application/xml", "", "application/json; charset=latin-1", "multipart/form-data"])),
        st.just(("{", "application/json")),
        st.just(("", "application/json")),
    )
    examples = draw(raw)

    async def post(example):
        body, content_type = example
        headers = {"Content-Type": content_type} if content_type else {}
        response = await bot_client.post("/api/messages", data=body, headers=headers)
        return response.status, await response.text()

    failures = await _fuzz(bot_client, connector, examples, post)
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:20])

