"""The fixed phrases people type (and the manifest's command menu) reach a flow."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialogs import router

MANIFEST = Path(__file__).resolve().parents[2] / "manifest" / "manifest.template.json"


def test_every_manifest_command_is_understood():
    manifest = json.loads(MANIFEST.read_text())
    for command_list in manifest["bots"][0]["commandLists"]:
        for command in command_list["commands"]:
            assert router.normalize(command["title"]) in router._LOOKUP, command["title"]


@pytest.mark.parametrize(
    "said,verb",
    [
        ("Dashboard", "overview"),
        ("What do we have?", "overview"),
        ("<at>Seatdesk</at> dashboard", "overview"),
        ("  SUBSCRIPTIONS ", "subscriptions.list"),
        ("help", "help"),
        ("Switch customer", "customer.choose"),
    ],
)
def test_fixed_phrases(said, verb):
    assert router._LOOKUP[router.normalize(said)] == verb


def test_every_verb_in_the_phrase_table_exists():
    assert set(router._LOOKUP.values()) <= set(router.VERBS)
