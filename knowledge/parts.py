"""Cutting an article's Markdown into sections (for retrieval) and into parts (for cards)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from knowledge.articles import Article

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")

# A Teams message may be about 28 KB; a part this long leaves room for the card around it.
DEFAULT_PART_CHARS = 3000


@dataclass(frozen=True)
class Section:
    heading: str  # "" for the text before the first heading
    level: int  # 0 for the text before the first heading
    text: str  # Markdown without the heading line
    line: int  # line of the article file where the section starts

    def markdown(self) -> str:
        if not self.heading:
            return self.text
        return f"{'#' * self.level} {self.heading}\n\n{self.text}".rstrip() + "\n"


def sections(article: Article) -> list[Section]:
    """The article's sections, split at Markdown headings (not inside code fences).

    A leading `# Title` line repeats the front matter and is left out.
    """
    out: list[Section] = []
    heading, level, start, buf = "", 0, article.body_line, []
    in_fence = False
    for offset, raw in enumerate(article.body.splitlines()):
        if _FENCE.match(raw):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(raw)
        if match is None:
            buf.append(raw)
            continue
        if not out and not heading and not "".join(buf).strip() and len(match.group(1)) == 1:
            heading_is_title = True
        else:
            heading_is_title = False
        text = "\n".join(buf).strip()
        if text or heading:
            out.append(Section(heading, level, text, start))
        if heading_is_title:
            heading, level = "", 0
        else:
            heading, level = match.group(2).strip(), len(match.group(1))
        start, buf = article.body_line + offset, []
    text = "\n".join(buf).strip()
    if text or heading:
        out.append(Section(heading, level, text, start))
    return out


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks; a list stays with the line that introduces it."""
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", text) if b.strip()]
    merged: list[str] = []
    for block in blocks:
        is_list = bool(re.match(r"^\s*(?:[-*+]|\d+[.)])\s", block))
        if merged and is_list and merged[-1].rstrip().endswith(":"):
            merged[-1] = merged[-1] + "\n\n" + block
        else:
            merged.append(block)
    return merged


def article_parts(article: Article, max_chars: int = DEFAULT_PART_CHARS) -> list[str]:
    """The article's Markdown in parts of at most `max_chars`, cut at headings, then paragraphs,
    then lines, then (only for a single over-long line) at a space."""
    if max_chars < 200:
        raise ValueError("max_chars must be at least 200")
    blocks: list[str] = []
    for section in sections(article):
        md = section.markdown().strip()
        if len(md) <= max_chars:
            blocks.append(md)
            continue
        pieces = [piece for para in paragraphs(section.text) for piece in _cut(para, max_chars)]
        if section.heading:
            heading = f"{'#' * section.level} {section.heading}"
            if pieces and len(heading) + 2 + len(pieces[0]) <= max_chars:
                pieces[0] = f"{heading}\n\n{pieces[0]}"  # a heading never ends a part on its own
            else:
                pieces.insert(0, heading)
        blocks.extend(pieces)
    parts: list[str] = []
    current = ""
    for block in blocks:
        candidate = f"{current}\n\n{block}" if current else block
        if len(candidate) <= max_chars:
            current = candidate
            continue
        parts.append(current)
        current = block
    if current:
        parts.append(current)
    return parts


def _cut(block: str, max_chars: int) -> list[str]:
    if len(block) <= max_chars:
        return [block]
    pieces: list[str] = []
    current = ""
    for line in block.splitlines():
        while len(line) > max_chars:
            cut = line.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            head, line = line[:cut].rstrip(), line[cut:].lstrip()
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= max_chars:
            current = candidate
        else:
            pieces.append(current)
            current = line
    if current:
        pieces.append(current)
    return pieces
