"""Loading articles: good ones load, each kind of broken one is reported by file and line and skipped."""
from __future__ import annotations

from pathlib import Path

from knowledge.articles import SHIPPED_ARTICLES, knowledge_dirs, load_articles

GOOD = """---
id: vpn-setup
title: Set up the VPN
category: network
tags: [vpn, remote]
language: en
---

# Set up the VPN

Install the client and sign in.
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_front_matter_fields_are_parsed(tmp_path: Path) -> None:
    write(tmp_path, "vpn.md", GOOD.replace("language: en", "language: en\naudience: [contoso, fabrikam]"))
    result = load_articles([tmp_path])
    assert result.problems == []
    (article,) = result.articles
    assert (article.id, article.title, article.category, article.language) == ("vpn-setup", "Set up the VPN", "network", "en")
    assert article.tags == ("vpn", "remote")
    assert article.audience == frozenset({"contoso", "fabrikam"})
    assert article.body.startswith("# Set up the VPN")
    assert article.body_line == 10


def test_absent_audience_means_everyone(tmp_path: Path) -> None:
    write(tmp_path, "vpn.md", GOOD)
    (article,) = load_articles([tmp_path]).articles
    assert article.audience is None
    assert article.visible_to(None) and article.visible_to("anyone")


def broken_cases() -> dict[str, tuple[str, int, str]]:
    """file name → (text, expected line, a word the message must contain)"""
    return {
        "no_front_matter.md": ("# Just a heading\n\ntext\n", 1, "front matter"),
        "unclosed.md": ("---\nid: x-1\ntitle: T\n\ntext\n", 1, "not closed"),
        "bad_yaml.md": ("---\nid: bad-yaml\ntitle: [unclosed\ncategory: c\nlanguage: en\n---\ntext\n", 4, "YAML"),
        "missing_id.md": (GOOD.replace("id: vpn-setup\n", ""), 1, "'id'"),
        "missing_title.md": (GOOD.replace("id: vpn-setup", "id: no-title").replace("title: Set up the VPN\n", ""), 1, "'title'"),
        "bad_language.md": (GOOD.replace("id: vpn-setup", "id: french").replace("language: en", "language: fr"), 6, "language"),
        "typo_key.md": (GOOD.replace("id: vpn-setup", "id: typo").replace("language: en", "language: en\naudiance: [contoso]"), 7, "audiance"),
        "empty_audience.md": (GOOD.replace("id: vpn-setup", "id: empty-aud").replace("language: en", "language: en\naudience: []"), 7, "audience"),
        "bad_id.md": (GOOD.replace("id: vpn-setup", "id: Not An Id!"), 2, "id"),
        "no_body.md": ("---\nid: no-body\ntitle: T\ncategory: c\nlanguage: de\n---\n\n", 6, "no text"),
    }


def test_each_broken_article_is_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    write(tmp_path, "good.md", GOOD)
    for name, (text, _, _) in broken_cases().items():
        write(tmp_path, name, text)
    result = load_articles([tmp_path])
    assert [a.id for a in result.articles] == ["vpn-setup"]
    by_file = {p.path.name: p for p in result.problems}
    for name, (_, line, word) in broken_cases().items():
        assert name in by_file, f"{name} was not reported"
        assert by_file[name].line == line, (name, by_file[name])
        assert word.lower() in by_file[name].message.lower(), (name, by_file[name])
        assert str(tmp_path / name) in str(by_file[name])


def test_duplicate_id_keeps_the_first_folder_and_reports_the_second(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    write(first, "vpn.md", GOOD)
    dup = write(second, "vpn-copy.md", GOOD.replace("Set up the VPN", "Another VPN"))
    result = load_articles([first, second])
    assert [a.title for a in result.articles] == ["Set up the VPN"]
    (problem,) = result.problems
    assert problem.path == dup and problem.line == 2 and "duplicate id" in problem.message


def test_missing_folder_and_non_utf8_file_are_problems_not_errors(tmp_path: Path) -> None:
    (tmp_path / "latin1.md").write_bytes("---\nid: x\ntitle: Gr\xfc\xdfe\n---\n".encode("latin-1"))
    result = load_articles([tmp_path / "nowhere", tmp_path])
    assert result.articles == []
    messages = sorted(p.message for p in result.problems)
    assert any("not found" in m for m in messages) and any("UTF-8" in m for m in messages)


def test_readme_in_an_article_folder_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "How to write articles\n")
    write(tmp_path, "vpn.md", GOOD)
    result = load_articles([tmp_path])
    assert result.problems == [] and len(result.articles) == 1


def test_knowledge_dirs_puts_shipped_articles_first_and_splits_on_pathsep(tmp_path: Path) -> None:
    import os

    raw = os.pathsep.join([str(tmp_path / "one"), "", str(tmp_path / "two")])
    assert knowledge_dirs(raw) == [SHIPPED_ARTICLES, tmp_path / "one", tmp_path / "two"]
    assert knowledge_dirs(None) == [SHIPPED_ARTICLES]
    assert knowledge_dirs("", include_shipped=False) == []


def test_shipped_articles_load_without_problems_and_cover_both_languages() -> None:
    result = load_articles([SHIPPED_ARTICLES])
    assert result.problems == []
    ids = [a.id for a in result.articles]
    assert len(ids) == len(set(ids)) >= 22
    assert sum(a.language == "de" for a in result.articles) >= 6
    for article in result.articles:
        words = len(article.body.split())
        assert 200 <= words <= 700, (article.id, words)
