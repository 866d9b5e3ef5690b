"""Knowledge-base articles: Markdown files with a YAML front-matter block, loaded from folders.

A broken article never stops the bot: it is reported as a `Problem` (file, line, message) and
skipped; every good article still loads.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge.text import LANGUAGES

SHIPPED_ARTICLES = Path(__file__).resolve().parent / "articles"

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
_ALLOWED_KEYS = {"id", "title", "category", "tags", "language", "audience"}
_REQUIRED_KEYS = ("id", "title", "category", "language")

# Labels of the shipped categories; a category of an extra folder is shown as written.
CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "licensing": {"en": "Licences & subscriptions", "de": "Lizenzen & Abonnements"},
    "billing": {"en": "Billing & invoices", "de": "Rechnungen & Abrechnung"},
    "sign-in": {"en": "Sign-in & passwords", "de": "Anmeldung & Passwörter"},
    "security": {"en": "Security", "de": "Sicherheit"},
    "users": {"en": "Users & licence assignment", "de": "Benutzer & Lizenzzuweisung"},
    "email": {"en": "E-mail & Outlook", "de": "E-Mail & Outlook"},
    "teams": {"en": "Teams & collaboration", "de": "Teams & Zusammenarbeit"},
    "files": {"en": "Files & OneDrive", "de": "Dateien & OneDrive"},
    "support": {"en": "Support & service levels", "de": "Support & Service-Level"},
}


def category_label(category: str, language: str = "en") -> str:
    labels = CATEGORY_LABELS.get(category)
    if labels is None:
        return category
    return labels.get(language, labels["en"])


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    category: str
    language: str
    body: str
    tags: tuple[str, ...] = ()
    audience: frozenset[str] | None = None  # None: every customer may see it
    path: Path | None = None
    body_line: int = 1  # line of `path` where `body` starts, for messages about the body

    def visible_to(self, customer_key: str | None) -> bool:
        return self.audience is None or (customer_key is not None and customer_key in self.audience)


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int  # 1-based; 0 when the problem concerns a whole folder
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def knowledge_dirs(setting: str | None, *, include_shipped: bool = True) -> list[Path]:
    """The folders to load: the shipped articles, then each path of SEATDESK_KNOWLEDGE_DIR.

    `setting` is the raw value, paths separated by os.pathsep (":" on Linux, ";" on Windows).
    """
    dirs = [SHIPPED_ARTICLES] if include_shipped else []
    for raw in (setting or "").split(os.pathsep):
        if raw.strip():
            dirs.append(Path(raw.strip()).expanduser())
    return dirs


def load_articles(dirs: Sequence[Path] | None = None) -> LoadResult:
    """Every `*.md` article under `dirs` (recursively, README.md excepted), in folder order.

    On a duplicate id the first article wins: shipped articles come first, so an extra folder
    cannot silently replace one of them.
    """
    result = LoadResult()
    seen: dict[str, Path] = {}
    for directory in dirs if dirs is not None else [SHIPPED_ARTICLES]:
        directory = Path(directory)
        if not directory.is_dir():
            result.problems.append(Problem(directory, 0, "knowledge folder not found"))
            continue
        for path in sorted(directory.rglob("*.md")):
            if path.name.lower() == "readme.md" or not path.is_file():
                continue
            article, problems = parse_article(path)
            result.problems.extend(problems)
            if article is None:
                continue
            if article.id in seen:
                result.problems.append(
                    Problem(path, _key_line(path, "id"), f"duplicate id {article.id!r}: already used by {seen[article.id]}")
                )
                continue
            seen[article.id] = path
            result.articles.append(article)
    return result


def parse_article(path: Path) -> tuple[Article | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(path, 1, f"not UTF-8 text ({exc.reason})")]
    except OSError as exc:
        return None, [Problem(path, 0, f"cannot read: {exc.strerror}")]
    return parse_article_text(text, path)


def parse_article_text(text: str, path: Path) -> tuple[Article | None, list[Problem]]:
    """Parse one article; on any problem return (None, problems) so the caller skips it."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None, [Problem(path, 1, "missing front matter: the file must start with a '---' line")]
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() in ("---", "..."))
    except StopIteration:
        return None, [Problem(path, 1, "front matter is not closed: add a '---' line after it")]
    block = "\n".join(lines[1:end])
    try:
        meta = yaml.safe_load(block) if block.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, [Problem(path, line, f"front matter is not valid YAML: {reason}")]
    if not isinstance(meta, dict):
        return None, [Problem(path, 2, "front matter must be a mapping of 'key: value' lines")]

    def line_of(key: str) -> int:
        for i in range(1, end):
            if re.match(rf"^{re.escape(key)}\s*:", lines[i]):
                return i + 1
        return 1

    problems: list[Problem] = []
    for key in sorted(set(map(str, meta)) - _ALLOWED_KEYS):
        # An unknown key may be a misspelt `audience`: showing such an article to everyone would leak it.
        problems.append(Problem(path, line_of(key), f"unknown front-matter key {key!r} (allowed: {', '.join(sorted(_ALLOWED_KEYS))})"))
    for key in _REQUIRED_KEYS:
        if key not in meta or meta[key] is None or (isinstance(meta[key], str) and not meta[key].strip()):
            problems.append(Problem(path, 1, f"missing required field {key!r}"))
    for key in ("id", "title", "category", "language"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], str):
            problems.append(Problem(path, line_of(key), f"{key!r} must be text"))
    if problems:
        return None, problems

    article_id = meta["id"].strip()
    language = meta["language"].strip().lower()
    if not _ID.match(article_id):
        problems.append(Problem(path, line_of("id"), f"id {article_id!r} must be 2-80 lower-case letters, digits or '-'"))
    if language not in LANGUAGES:
        problems.append(Problem(path, line_of("language"), f"language {meta['language']!r} must be one of: {', '.join(LANGUAGES)}"))
    tags = meta.get("tags", [])
    if tags is None:
        tags = []
    if not isinstance(tags, list) or not all(isinstance(t, (str, int)) for t in tags):
        problems.append(Problem(path, line_of("tags"), "tags must be a list of words, e.g. [mfa, phone]"))
        tags = []
    audience = meta.get("audience")
    if "audience" in meta:
        if not isinstance(audience, list) or not all(isinstance(a, str) and a.strip() for a in audience):
            problems.append(Problem(path, line_of("audience"), "audience must be a list of customer keys, e.g. [contoso]"))
        elif not audience:
            problems.append(Problem(path, line_of("audience"), "audience is empty: nobody could see this article (remove the key to show it to everyone)"))
    body = "\n".join(lines[end + 1 :]).strip("\n")
    if not body.strip():
        problems.append(Problem(path, end + 1, "the article has no text after the front matter"))
    if problems:
        return None, problems

    body_start = end + 2
    for raw in lines[end + 1 :]:
        if raw.strip():
            break
        body_start += 1
    return (
        Article(
            id=article_id,
            title=meta["title"].strip(),
            category=meta["category"].strip(),
            language=language,
            body=body.strip() + "\n",
            tags=tuple(str(t).strip() for t in tags if str(t).strip()),
            audience=frozenset(a.strip() for a in audience) if audience is not None else None,
            path=path,
            body_line=body_start,
        ),
        [],
    )


def _key_line(path: Path, key: str) -> int:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 1
    for i, raw in enumerate(lines[1:], start=2):
        if raw.strip() == "---":
            break
        if re.match(rf"^{re.escape(key)}\s*:", raw):
            return i
    return 1


def visible(articles: Iterable[Article], customer_key: str | None) -> list[Article]:
    return [a for a in articles if a.visible_to(customer_key)]
