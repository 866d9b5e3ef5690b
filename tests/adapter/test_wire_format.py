"""bot.connector.to_json sends exactly what msrest's Activity.serialize() would (the stock SDK's
wire format), only without msrest's per-node copying of card content."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import strategies as st
from msrest.exceptions import DeserializationError
from msrest.serialization import Model
from botbuilder.core import MessageFactory
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    Attachment,
    CardAction,
    ChannelAccount,
    ConversationAccount,
    Mention,
    SuggestedActions,
)

from bot.connector import from_json, json_default, to_json
from tests.attack.test_fuzz import draw, json_values

CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Ünïcode €", "wrap": True}], "actions": [{"type": "Action.Execute", "verb": "x", "data": {"n": 1, "ok": True, "none": None}}]}


def _activities():
    card = MessageFactory.attachment(Attachment(content_type="application/vnd.microsoft.card.adaptive", content=CARD))
    card.text = "with text"
    typed = Activity(
        type=ActivityTypes.message,
        text="hi <at>Anna</at>",
        timestamp=datetime(2026, 11, 22, 9, 0, 0, 123000, tzinfo=timezone.utc),
        from_property=ChannelAccount(id="28:bot", name="Seatdesk"),
        recipient=ChannelAccount(id="29:user", name="Anna", aad_object_id="oid"),
        conversation=ConversationAccount(id="a:1", conversation_type="personal", tenant_id="t"),
        reply_to_id="act-1",
        service_url="https://smba.trafficmanager.net/emea/",
        channel_id="msteams",
        entities=[Mention(mentioned=ChannelAccount(id="29:user", name="Anna"), text="<at>Anna</at>", type="mention")],
        channel_data={"tenant": {"id": "t"}, "notification": {"alert": True}},
        suggested_actions=SuggestedActions(actions=[CardAction(type="imBack", title="Help", value="help")]),
        locale="de-DE",
    )
    return [MessageFactory.text("plain"), card, typed, Activity(type="typing")]


@pytest.mark.parametrize("activity", _activities())
def test_same_json_as_msrest(activity):
    ours = json.loads(json.dumps(to_json(activity), default=json_default))
    assert ours == json.loads(json.dumps(activity.serialize()))


def test_card_content_is_sent_as_is_not_copied():
    activity = MessageFactory.attachment(Attachment(content_type="application/vnd.microsoft.card.adaptive", content=CARD))
    assert to_json(activity)["attachments"][0]["content"] is CARD


# -- reading: bot.connector.from_json is msrest's Activity().deserialize(), only faster -----------
def _plausible(type_name: str, depth: int = 0) -> st.SearchStrategy:
    """Values as a channel sends them for a schema type, or random JSON in their place."""
    models = Activity._infer_class_models()
    if type_name.startswith("["):
        return st.one_of(st.lists(_plausible(type_name[1:-1], depth + 1) | st.none(), max_size=3), json_values)
    if type_name.startswith("{"):
        return st.one_of(st.dictionaries(st.text(max_size=6), _plausible(type_name[1:-1], depth + 1), max_size=3), json_values)
    if type_name in models:
        if depth > 2:
            return json_values
        fields = {info["key"]: _plausible(info["type"], depth + 1) for info in models[type_name]._attribute_map.values()}
        shaped = st.fixed_dictionaries({}, optional={**fields, "extra": json_values, "Text": json_values})
        return shaped if depth == 0 else st.one_of(shaped, json_values)  # the app takes JSON objects only
    return st.one_of(
        {
            "str": st.text(max_size=20),
            "bool": st.sampled_from([True, False, 0, 1, "true", "False", "1", "yes"]),
            "int": st.integers(-5, 5) | st.sampled_from(["3", "x"]),
            "float": st.floats(allow_nan=False, allow_infinity=False),
            "iso-8601": st.sampled_from(["2026-11-22T09:00:00.123Z", "2026-11-22T10:00:00+01:00", "2026-11-22", "yesterday", ""]),
            "object": json_values,
            "bytearray": st.sampled_from(["aGVsbG8=", "not base64!"]),
        }[type_name],
        json_values,
    )


def _shape(value: object) -> object:
    """A model tree as plain data, so two deserializations compare attribute by attribute."""
    if isinstance(value, Model):
        return {"__model__": type(value).__name__, **{k: _shape(v) for k, v in vars(value).items()}}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return value


def _outcome(read) -> object:
    try:
        return _shape(read())
    except DeserializationError:
        return DeserializationError


def test_reads_what_msrest_reads():
    bodies = draw(_plausible("Activity"), 400)
    outcomes = [(body, _outcome(lambda: from_json(Activity, body)), _outcome(lambda: Activity().deserialize(body))) for body in bodies]
    assert [(body, ours) for body, ours, theirs in outcomes if ours != theirs] == []
    refused = sum(ours is DeserializationError for _, ours, _ in outcomes)
    assert 40 < refused < 360  # both kinds were tried: activities read and activities refused


def test_a_teams_message_reads_as_msrest_reads_it():
    body = {
        "type": "message", "id": "1", "timestamp": "2026-11-22T09:00:00.123Z", "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "channelId": "msteams", "from": {"id": "29:u", "name": "Anna", "aadObjectId": "oid"},
        "conversation": {"conversationType": "personal", "tenantId": "t", "id": "a:1"}, "recipient": {"id": "28:bot", "name": "Seatdesk"},
        "channelData": {"tenant": {"id": "t"}}, "locale": "de-DE", "text": "dashboard",
        "entities": [{"type": "clientInfo", "locale": "de-DE", "country": "DE", "platform": "Web"}],
    }
    ours = from_json(Activity, body)
    assert _shape(ours) == _shape(Activity().deserialize(body))
    assert ours.from_property.aad_object_id == "oid" and ours.entities[0].additional_properties["country"] == "DE"
    assert ours.timestamp.tzinfo is not None and ours.channel_data is body["channelData"]
