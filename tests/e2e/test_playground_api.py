"""Seatdesk as the Agents Playground drives it, through the Playground's own (web UI) API.

The bot and the Playground are real processes (see conftest.py); these tests stand where the
Playground's web UI stands: its WebSocket for what the bot posts, its REST calls for what the
user does. Expected figures come from the same database file the bot serves, never from
numbers that depend on today's date.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from tests.e2e.playground import (
    HOST,
    BotMessage,
    PlaygroundChat,
    card_actions,
    card_facts,
    card_figures,
    card_text,
    card_title,
    expected_overview,
    listening_addresses,
    subscription_names,
)


def test_playground_listens_on_loopback_only(playground):
    """Guards the force-loopback preload: the Playground is the bot's unauthenticated connector."""
    addresses = listening_addresses(playground.process.popen.pid)
    assert addresses, "found no listening socket of the Playground"
    assert {address for address, _ in addresses} == {HOST}, addresses
    assert (HOST, playground.port) in addresses


async def test_playground_plays_the_demo_admin(chat, identity):
    config = (await chat.config())["config"]
    assert config["tenantId"] == identity.tenant_id
    assert config["currentUser"]["aadObjectId"] == identity.user["aad_object_id"]
    assert len(config["users"]) == 5


WELCOME = "Welcome to Seatdesk"


@dataclass
class Installed:
    chat: PlaygroundChat
    welcomes: list[BotMessage]
    installation_update: dict
    conversation_update: dict


@pytest.fixture(scope="module")
def installed(playground) -> Installed:
    """Install Seatdesk once in the personal chat, as the web UI does when it first shows it."""

    async def install() -> Installed:
        async with playground.chat() as chat:
            await chat.install()
            await chat.until(
                lambda: chat.sent_to_bot("installationUpdate") and chat.sent_to_bot("conversationUpdate"),
                what="the bot answering the installationUpdate and the conversationUpdate",
            )
            # Any welcome was posted inside those turns; a later reply comes after it on the same socket.
            before = len(chat.messages)
            await chat.say("help")
            await chat.wait_for(lambda m: any(card_title(c) != WELCOME for c in m.cards), after=before, what="the reply to help")
        welcomes = [m for m in chat.messages if any(card_title(c) == WELCOME for c in m.cards)]
        return Installed(chat, welcomes, chat.sent_to_bot("installationUpdate")[0], chat.sent_to_bot("conversationUpdate")[0])

    return asyncio.run(install())


def test_install_sends_the_welcome_card(installed, identity):
    assert installed.welcomes, f"no welcome card after install; the bot sent {[m.frame for m in installed.chat.messages]}"
    card = next(c for c in installed.welcomes[0].cards if card_title(c) == WELCOME)
    text = card_text(card)
    assert identity.customer in text
    assert identity.user["name"] in text
    assert "**Admin**" in text
    assert {a["verb"] for a in card_actions(card)} >= {"overview", "subscriptions.list"}


def test_install_activities_carry_the_demo_admin(installed, identity):
    """What the Playground sends for "install", as later flows will rely on it."""
    for exchange in (installed.installation_update, installed.conversation_update):
        activity = exchange["request"]["body"]
        assert activity["channelId"] == "msteams"
        assert activity["from"]["aadObjectId"] == identity.user["aad_object_id"]
        assert activity["conversation"]["tenantId"] == identity.tenant_id
        assert activity["conversation"]["conversationType"] == "personal"
        assert activity["channelData"]["tenant"]["id"] == identity.tenant_id
        assert exchange["response"]["statusCode"] < 300, exchange["response"]
    assert installed.installation_update["request"]["body"]["action"] == "add"
    update = installed.conversation_update["request"]["body"]
    assert {m["id"] for m in update["membersAdded"]} == {update["recipient"]["id"], update["from"]["id"]}


def test_install_welcomes_only_once(installed):
    assert len(installed.welcomes) == 1, f"{len(installed.welcomes)} welcome cards after one install"


async def test_dashboard_shows_the_demo_figures(chat, seatdesk, identity):
    await chat.say("dashboard")
    _, card = await chat.wait_for_card(f"{identity.customer}: Microsoft 365 at a glance")
    expected = await expected_overview(seatdesk.database_url, identity.customer)
    assert expected.active_subscriptions > 0, "the demo customer should have subscriptions"
    figures = card_figures(card)
    assert figures["Active subscriptions"] == str(expected.active_subscriptions)
    assert figures["Active licences"] == f"{expected.active_licenses:,}"
    assert figures["Active trials"] == str(expected.active_trials)
    facts = card_facts(card)
    assert facts["Scheduled changes"] == str(expected.pending_changes)
    assert facts["Term ends within 30 days"].startswith(f"{expected.ending_soon} ")
    assert f"{expected.monthly_cost:,.2f}" in facts["Monthly cost"]  # admins see prices


async def test_subscriptions_lists_the_customers_subscriptions(chat, seatdesk, identity):
    await chat.say("subscriptions")
    _, card = await chat.wait_for_card(f"{identity.customer}: subscriptions")
    names = await subscription_names(seatdesk.database_url, identity.customer)
    details = card_actions(card, verb="subscription.details")
    assert details, "the list card has no Details buttons"
    shown = {a["data"]["id"] for a in details}
    assert shown <= set(names), f"Details buttons for subscriptions that are not {identity.customer}'s: {shown - set(names)}"
    text = card_text(card)
    for subscription_id in shown:
        assert names[subscription_id] in text


async def test_details_button_replaces_the_list_card(chat, seatdesk, identity):
    await chat.say("subscriptions")
    listed, card = await chat.wait_for_card(f"{identity.customer}: subscriptions")
    button = card_actions(card, verb="subscription.details")[0]
    subscription_id = button["data"]["id"]
    name = (await subscription_names(seatdesk.database_url, identity.customer))[subscription_id]

    answer = await chat.click(listed, button)

    # The Playground hands back the bot's invoke response body (it drops the inner statusCode).
    assert answer.get("statusCode", 200) == 200, answer
    assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
    details = answer["value"]
    assert card_title(details) == name
    facts = card_facts(details)
    assert facts["Status"] == "Active"
    assert facts["Seats"].split()[0].replace(",", "").isdigit()
    assert "Cancellation window" in facts
    invoke = chat.sent_to_bot("invoke")[-1]["request"]["body"]
    assert invoke["replyToId"] == listed.id and invoke["value"]["action"]["verb"] == "subscription.details"
