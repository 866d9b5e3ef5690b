"""Typed licence requests reach the licence flow (which says so when Graph is not connected)."""
from __future__ import annotations

import pytest

from services.models import Role
from tests.conftest import Teams, person


@pytest.mark.parametrize("said", ["who has Visio?", "give Megan an E3 licence", "remove Visio from Alex"])
async def test_licence_requests_are_understood(bot_client, connector, demo_db, said):
    teams = Teams(bot_client, connector, await person(demo_db, "northwind", Role.ADMIN))
    sent = await teams.say(said)
    assert len(sent) == 1 and "Microsoft Graph" in (sent[0].get("text") or ""), sent
