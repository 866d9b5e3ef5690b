"""bot.connector.to_json sends exactly what msrest's Activity.serialize() would (the stock SDK's
wire format), only without msrest's per-node copying of card content."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
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

from bot.connector import json_default, to_json

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
