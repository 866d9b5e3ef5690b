"""Cutting articles into sections and into card-sized parts."""
from __future__ import annotations

from knowledge.articles import Article, load_articles
from knowledge.parts import article_parts, sections


def article(body: str) -> Article:
    return Article(id="a", title="Title", category="c", language="en", body=body, body_line=7)


def test_sections_split_at_headings_and_skip_the_title_line() -> None:
    body = "# Title\n\nIntro text.\n\n## First\n\nOne.\n\n### Deeper\n\nTwo.\n\n```\n# not a heading\n```\n"
    result = sections(article(body))
    assert [(s.heading, s.level) for s in result] == [("", 0), ("First", 2), ("Deeper", 3)]
    assert result[0].text == "Intro text."
    assert "# not a heading" in result[2].text
    assert result[1].line == 7 + 4


def test_short_article_is_one_part() -> None:
    body = "Intro.\n\n## Steps\n\n1. One\n2. Two\n"
    assert article_parts(article(body)) == ["Intro.\n\n## Steps\n\n1. One\n2. Two"]


def test_long_article_parts_stay_under_the_limit_and_keep_all_text() -> None:
    paragraph = " ".join(["word"] * 60)  # about 300 characters
    body = "\n\n".join(f"## Section {i}\n\n{paragraph}\n\n{paragraph}" for i in range(12))
    body += "\n\n## Huge\n\n" + " ".join(["x" * 9] * 400)  # one 4,000-character line
    parts = article_parts(article(body), max_chars=1000)
    assert len(parts) > 5
    assert all(len(p) <= 1000 for p in parts)
    assert sorted("\n".join(parts).split()) == sorted(body.split())


def test_a_part_never_ends_with_a_lone_heading() -> None:
    body = "Intro.\n\n## Table\n\n" + "\n".join(f"| row {i} | " + "cell " * 20 + "|" for i in range(30))
    for part in article_parts(article(body), max_chars=600):
        assert not part.rstrip().splitlines()[-1].startswith("#")
        assert len(part) <= 600


def test_every_shipped_article_fits_in_parts_of_3000_characters() -> None:
    for shipped in load_articles().articles:
        parts = article_parts(shipped)
        assert parts and all(len(p) <= 3000 for p in parts), shipped.id
