"""The knowledge cards on their own: size, Markdown of articles, and a model's text kept as text."""
from __future__ import annotations

import json

import pytest

from cards.examples_knowledge import examples
from cards.knowledge import markdown_blocks, model_blocks

EXAMPLES = examples()


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_knowledge_card_fits_in_a_teams_message(name):
    assert len(json.dumps(EXAMPLES[name]).encode()) < 24_000  # Teams' limit is about 28 KB with the envelope


def test_article_markdown_becomes_blocks_without_markdown_lists_or_headings():
    blocks = markdown_blocks(
        "## Steps\n\n1. Open the admin\n   center.\n2. Choose **Users**.\n\n- a bullet\n\n| plan | seats |\n|---|---|\n| E3 | 300+ |\n\nA wrapped\nparagraph."
    )
    texts = [b.get("text") for b in blocks]
    assert texts[:5] == ["Steps", "1\\. Open the admin center.", "2\\. Choose **Users**.", "• a bullet", None]
    assert blocks[0]["weight"] == "Bolder"
    assert [b["type"] for b in blocks[4:6]] == ["ColumnSet", "ColumnSet"]
    assert texts[-1] == "A wrapped paragraph."


def test_a_models_text_keeps_bold_and_nothing_else():
    lines = [b["text"] for b in model_blocks("**Yes** [1]. ![img](http://x/y.png)\n- <script>x</script> [2]\n# heading")]
    assert lines == [
        "**Yes** \\[1\\]. !\\[img\\](http://x/y.png)",
        "• \\<script\\>x\\</script\\> \\[2\\]",
        "\\# heading",
    ]
