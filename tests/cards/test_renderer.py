"""Seatdesk's cards as Microsoft's own Adaptive Cards renderer sees them.

One headless Chromium serves the whole module: every example card, the deliberately
broken cards and a reference card are checked in a single pass by the `rendered` fixture.
Needs Debian's chromium and the npm packages: `make system-deps node-deps`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bot.cardcheck import (
    CARD_WIDTH_PX,
    CHROMIUM,
    SETUP_HINT,
    RendererUnavailable,
    check_cards,
    check_cards_sync,
    renderer_scripts,
)
from cards.examples import all_examples

EXAMPLES = all_examples()


def _card(*body: dict, actions: list[dict] | None = None, version: str = "1.5") -> dict:
    card = {"type": "AdaptiveCard", "version": version, "body": list(body)}
    if actions is not None:
        card["actions"] = actions
    return card


# Each broken card has one fault, and the renderer's own words for it.
BROKEN_CARDS = {
    "broken-unknown-element": (
        _card({"type": "Foo", "text": "?"}),
        'Unknown element type "Foo"',
    ),
    "broken-unknown-action": (
        _card({"type": "TextBlock", "text": "Hi"}, actions=[{"type": "Action.Teleport", "title": "Go"}]),
        'Unknown action type "Action.Teleport"',
    ),
    "broken-execute-with-1-6-feature": (
        _card(
            {"type": "Input.Number", "id": "seats", "label": "Seats"},
            actions=[
                {
                    "type": "Action.Execute",
                    "title": "Change seats",
                    "verb": "quantity.change",
                    "disabledUnlessAssociatedInputsChange": True,
                }
            ],
        ),
        'Property "disabledUnlessAssociatedInputsChange" is supported in version 1.6',
    ),
    "broken-invalid-enum": (
        _card({"type": "TextBlock", "text": "Seats", "size": "huge"}),
        'Invalid value "huge" for property "size"',
    ),
    "broken-card-version-1-6": (
        _card({"type": "TextBlock", "text": "Hi"}, version="1.6"),
        "The specified card version (1.6) is not supported",
    ),
    "broken-duplicate-id": (
        _card(
            {"type": "Input.Text", "id": "note", "label": "Note"},
            {"type": "Input.Text", "id": "note", "label": "Another note"},
        ),
        'Duplicate Id "note"',
    ),
    "broken-not-a-card": ({"body": []}, 'not "AdaptiveCard"'),
}

# Exercises what a Seatdesk card uses: markdown, facts, an input, Action.Execute buttons.
REFERENCE_CARD = _card(
    {"type": "TextBlock", "text": "Microsoft 365 Business Premium", "size": "large", "weight": "bolder"},
    {"type": "TextBlock", "text": "**25 seats**, renews on *12 March 2026*.", "wrap": True},
    {
        "type": "FactSet",
        "facts": [{"title": "Term", "value": "Annual, paid monthly"}, {"title": "Seats", "value": "25"}],
    },
    {"type": "Input.Number", "id": "seats", "label": "New seat count", "min": 1, "value": 25},
    actions=[
        {"type": "Action.Execute", "title": "Change seats", "verb": "quantity.change", "style": "positive"},
        {"type": "Action.Execute", "title": "Cancel", "verb": "cancel.start"},
    ],
)
REFERENCE_NAME = "reference-subscription"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    """(PNG folder, problems per card) for every card of this module, in one browser."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: {SETUP_HINT}", pytrace=False)
    try:
        renderer_scripts()
    except RendererUnavailable as error:
        pytest.fail(str(error), pytrace=False)

    own_cards = {name: card for name, (card, _) in BROKEN_CARDS.items()}
    own_cards[REFERENCE_NAME] = REFERENCE_CARD
    clashes = set(own_cards) & set(EXAMPLES)
    assert not clashes, f"example card names clash with this test's cards: {clashes}"

    out_dir = tmp_path_factory.mktemp("rendered-cards")
    return out_dir, check_cards_sync({**EXAMPLES, **own_cards}, out_dir)


def test_there_are_example_cards() -> None:
    assert EXAMPLES, "cards.examples.all_examples() returned no cards"


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_card_has_no_renderer_problems(rendered, name: str) -> None:
    """Guards against cards Teams would show broken, partly or not at all."""
    _, problems = rendered
    if problems[name]:
        pytest.fail(f"{name}:\n  - " + "\n  - ".join(problems[name]), pytrace=False)


@pytest.mark.parametrize("name", list(BROKEN_CARDS))
def test_broken_card_is_reported_in_the_renderers_words(rendered, name: str) -> None:
    _, problems = rendered
    expected = BROKEN_CARDS[name][1]
    assert any(expected in problem for problem in problems[name]), (
        f"expected a problem containing {expected!r}, got {problems[name]}"
    )


def test_reference_card_is_clean_and_drawn_as_a_teams_bubble(rendered) -> None:
    out_dir, problems = rendered
    assert problems[REFERENCE_NAME] == []

    png = out_dir / f"{REFERENCE_NAME}.png"
    assert png.stat().st_size > 5_000, "the screenshot is suspiciously small"
    with Image.open(png) as image:
        width, height = image.size
        assert width == CARD_WIDTH_PX
        assert height > 150
        grey = image.convert("L")
        assert grey.getpixel((width // 2, 4)) > 240, "the card background should be light"
        darkest, _ = grey.getextrema()
        assert darkest < 80, "no dark text was drawn"


def test_every_card_gets_a_picture(rendered) -> None:
    out_dir, problems = rendered
    missing = [name for name in problems if not (out_dir / f"{name}.png").is_file()]
    # A card that is not an AdaptiveCard at all may still render; none may be skipped silently.
    assert missing == [], f"no PNG for {missing}"


async def test_missing_renderer_files_say_how_to_install_them(tmp_path: Path) -> None:
    with pytest.raises(RendererUnavailable, match="make system-deps node-deps"):
        await check_cards({"x": REFERENCE_CARD}, node_modules=tmp_path)
