"""The knowledge base in cards: an answer with its sources, "I don't know", and browsing
(categories → articles → an article in parts).

Articles are the reseller's own Markdown and are shown as Markdown (Adaptive Cards' subset);
what a person typed, and what a model wrote, is shown with `plain()` so it cannot become markup.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cards.common import Card, action_set, card, execute, heading, line, plain
from cards.text import MESSAGES, text

if TYPE_CHECKING:
    from knowledge.answering import GroundedAnswer

MESSAGES["en"].update(
    {
        "kb.answer.title": "Here's what I found",
        "kb.answer.asked": "You asked: “{question}”",
        "kb.answer.quoted": "From our knowledge base:",
        "kb.answer.by_model": "Written for you from the articles below; check the article for the details.",
        "kb.answer.other_language": "I found this only in an article in {language}.",
        "kb.answer.sources": "Sources",
        "kb.answer.source_language": "(in {language})",
        "kb.answer.open": "Open article",
        "kb.feedback.ask": "Did this help?",
        "kb.feedback.yes": "Yes",
        "kb.feedback.no": "No",
        "kb.feedback.thanks": "Thanks for telling me — it helps us improve our articles.",
        "kb.feedback.sorry": "Sorry that didn't help. I've noted it so we can improve the article.",
        "kb.dont_know.title": "I don't know that one",
        "kb.dont_know.text": "I couldn't find an answer to “{question}” in our knowledge base, and I'd rather not guess.",
        "kb.dont_know.offer": "Our service desk can help: open a support case and your question is already filled in.",
        "kb.case.title": "Shall we open a support case?",
        "kb.case.text": "Sorry the article didn't answer “{question}”. Our service desk can take it from here.",
        "kb.case.open": "Open a support case",
        "kb.browse": "Browse articles",
        "kb.ask.again": "Knowledge base",
        "kb.categories.title": "Knowledge base",
        "kb.categories.intro": "Ask me a question in your own words, or browse the articles by topic.",
        "kb.categories.question": "Your question",
        "kb.categories.placeholder": "e.g. Why can't I cancel a licence any more?",
        "kb.categories.ask": "Ask",
        "kb.categories.count": "{count} articles",
        "kb.categories.count_one": "1 article",
        "kb.categories.open": "Show",
        "kb.categories.empty": "There are no articles yet.",
        "kb.category.page": "Page {number} of {count}",
        "kb.category.all": "All topics",
        "kb.article.part": "Part {number} of {count}",
        "kb.article.next": "Next part",
        "kb.article.previous": "Previous part",
        "kb.article.back": "Back to the list",
        "kb.article.not_found": "I can't find that article. It may have been removed; please browse the knowledge base again.",
        "kb.category.not_found": "I can't find that topic. Please browse the knowledge base again.",
        "kb.question.empty": "Please type your question first.",
        "kb.unavailable": "The knowledge base is not available right now. Please try again later.",
        "kb.working": "I'm still looking that up. I'll post the answer here in a moment.",
        "language.en": "English",
        "language.de": "German",
    }
)
# The question's language decides the wording of an answer; German for the knowledge cards.
MESSAGES.setdefault("de", {}).update(
    {
        "kb.answer.title": "Das habe ich gefunden",
        "kb.answer.asked": "Ihre Frage: „{question}“",
        "kb.answer.quoted": "Aus unserer Wissensdatenbank:",
        "kb.answer.by_model": "Für Sie aus den Artikeln unten zusammengefasst; die Details stehen im Artikel.",
        "kb.answer.other_language": "Dazu habe ich nur einen Artikel auf {language} gefunden.",
        "kb.answer.sources": "Quellen",
        "kb.answer.source_language": "(auf {language})",
        "kb.answer.open": "Artikel öffnen",
        "kb.feedback.ask": "Hat Ihnen das geholfen?",
        "kb.feedback.yes": "Ja",
        "kb.feedback.no": "Nein",
        "kb.feedback.thanks": "Danke für Ihre Rückmeldung — damit verbessern wir unsere Artikel.",
        "kb.feedback.sorry": "Schade, dass das nicht geholfen hat. Ich habe es notiert, damit wir den Artikel verbessern.",
        "kb.dont_know.title": "Das weiß ich leider nicht",
        "kb.dont_know.text": "Zu „{question}“ habe ich in unserer Wissensdatenbank keine Antwort gefunden, und raten möchte ich nicht.",
        "kb.dont_know.offer": "Unser Service-Desk hilft Ihnen gern: Eröffnen Sie einen Supportfall, Ihre Frage ist schon eingetragen.",
        "kb.case.title": "Sollen wir einen Supportfall eröffnen?",
        "kb.case.text": "Schade, dass der Artikel „{question}“ nicht beantwortet hat. Unser Service-Desk kümmert sich darum.",
        "kb.case.open": "Supportfall eröffnen",
        "kb.browse": "Artikel durchsuchen",
        "kb.ask.again": "Wissensdatenbank",
        "kb.categories.title": "Wissensdatenbank",
        "kb.categories.intro": "Stellen Sie mir eine Frage in Ihren eigenen Worten, oder stöbern Sie in den Artikeln nach Thema.",
        "kb.categories.question": "Ihre Frage",
        "kb.categories.placeholder": "z. B. Warum kann ich die Lizenz nicht mehr kündigen?",
        "kb.categories.ask": "Fragen",
        "kb.categories.count": "{count} Artikel",
        "kb.categories.count_one": "1 Artikel",
        "kb.categories.open": "Anzeigen",
        "kb.categories.empty": "Es gibt noch keine Artikel.",
        "kb.category.page": "Seite {number} von {count}",
        "kb.category.all": "Alle Themen",
        "kb.article.part": "Teil {number} von {count}",
        "kb.article.next": "Nächster Teil",
        "kb.article.previous": "Vorheriger Teil",
        "kb.article.back": "Zurück zur Liste",
        "kb.article.not_found": "Diesen Artikel finde ich nicht. Vielleicht wurde er entfernt; bitte öffnen Sie die Wissensdatenbank erneut.",
        "kb.category.not_found": "Dieses Thema finde ich nicht. Bitte öffnen Sie die Wissensdatenbank erneut.",
        "kb.question.empty": "Bitte schreiben Sie zuerst Ihre Frage.",
        "kb.unavailable": "Die Wissensdatenbank ist gerade nicht verfügbar. Bitte versuchen Sie es später noch einmal.",
        "kb.working": "Ich suche noch danach. Die Antwort schreibe ich Ihnen gleich hier.",
        "language.en": "Englisch",
        "language.de": "Deutsch",
    }
)

CATEGORY_PAGE_SIZE = 10


@dataclass(frozen=True)
class CategoryEntry:
    key: str
    label: str
    count: int


@dataclass(frozen=True)
class ArticleEntry:
    id: str
    title: str
    language: str


# --- Markdown (the reseller's articles) into Adaptive Card blocks -----------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _inline(value: str) -> str:
    """Adaptive Cards show `code` literally: drop the backticks, keep bold, italics and links."""
    return value.replace("`", "")


def list_item(item: str) -> str:
    """One list item as its own line: Teams' Markdown lists overflow narrow cards, so a bullet
    becomes "•" and a number is kept as text ("2\\." is not a list)."""
    number = re.match(r"^(\d+)[.)]\s+", item)
    if number:
        return f"{number.group(1)}\\. {item[number.end():]}"
    return "• " + _LIST_ITEM.sub("", item, count=1)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _table(rows: list[str]) -> list[dict]:
    body = [r for r in rows if not _TABLE_RULE.match(r)]
    blocks = []
    for i, row in enumerate(body):
        cells = _cells(row)
        blocks.append(
            {
                "type": "ColumnSet",
                "spacing": "Small",
                "separator": i == 1,
                "columns": [
                    {
                        "type": "Column",
                        "width": "stretch",
                        "items": [{"type": "TextBlock", "text": _inline(c) or " ", "wrap": True, "size": "Small", **({"weight": "Bolder"} if i == 0 else {})}],
                    }
                    for c in cells
                ],
            }
        )
    return blocks


def markdown_blocks(markdown: str) -> list[dict]:
    """Headings, paragraphs, lists, tables and code of an article as TextBlocks and ColumnSets.

    Adaptive Cards' Markdown has no headings or tables and joins hard-wrapped lines poorly, so
    paragraphs are unwrapped, list items kept one per line, and headings made bold.
    """
    blocks: list[dict] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        if not raw.strip():
            i += 1
            continue
        if _FENCE.match(raw):
            code = []
            i += 1
            while i < len(lines) and not _FENCE.match(lines[i]):
                code.append(lines[i])
                i += 1
            i += 1
            blocks.append({"type": "TextBlock", "text": "\n".join(code) or " ", "wrap": True, "fontType": "Monospace"})
            continue
        match = _HEADING.match(raw)
        if match:
            level = len(match.group(1))
            block = line(_inline(match.group(2)), weight="Bolder", spacing="Medium")
            if level <= 2:
                block["size"] = "Medium"
            blocks.append(block)
            i += 1
            continue
        if raw.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i])
                i += 1
            blocks += _table(rows)
            continue
        if _LIST_ITEM.match(raw):
            items: list[str] = []
            while i < len(lines) and lines[i].strip() and not _HEADING.match(lines[i]) and not lines[i].lstrip().startswith("|"):
                if _LIST_ITEM.match(lines[i]) or not items:
                    items.append(lines[i].strip())
                else:
                    items[-1] += " " + lines[i].strip()  # a wrapped item continues
                i += 1
            blocks += [line(_inline(list_item(item)), spacing="Small") for item in items]
            continue
        para = []
        while i < len(lines) and lines[i].strip() and not _LIST_ITEM.match(lines[i]) and not _HEADING.match(lines[i]) and not _FENCE.match(lines[i]) and not lines[i].lstrip().startswith("|"):
            para.append(lines[i].strip())
            i += 1
        blocks.append(line(_inline(" ".join(para))))
    return blocks


def model_blocks(value: str) -> list[dict]:
    """A model's answer as text: nothing in it becomes markup (a link, an image, HTML) except
    **bold**; each line is its own block so a list reads as one."""
    blocks = []
    for raw in value.splitlines():
        if not raw.strip():
            continue
        raw = raw.strip()
        marker = _LIST_ITEM.match(raw)
        prefix = list_item(marker.group(0).strip() + " x")[:-1] if marker else ""
        shown = prefix + plain(raw[marker.end() :] if marker else raw)
        shown = re.sub(r"\\\*\\\*(\S(?:.*?\S)?)\\\*\\\*", r"**\1**", shown)  # bold only
        blocks.append(line(shown, spacing="Small"))
    return blocks or [line(" ")]


# --- answers -------------------------------------------------------------------------------------

def _language_name(language: str, loc: str) -> str:
    key = "language." + language
    return text(loc, key) if key in MESSAGES["en"] else language


def _feedback(answer: "GroundedAnswer", loc: str) -> list[dict]:
    data = {"articles": [s.article_id for s in answer.sources], "question": answer.question, "language": answer.language}
    return [
        line(text(loc, "kb.feedback.ask"), weight="Bolder", spacing="Large"),
        action_set(
            [
                execute(text(loc, "kb.feedback.yes"), "kb.feedback", {**data, "helpful": True}),
                execute(text(loc, "kb.feedback.no"), "kb.feedback", {**data, "helpful": False}),
            ]
        ),
    ]


def _source_row(number: int, title: str, article_id: str, language: str, loc: str) -> dict:
    label = f"\\[{number}\\] {plain(title)}"
    if language != loc:
        label += " " + text(loc, "kb.answer.source_language", language=_language_name(language, loc))
    return {
        "type": "ColumnSet",
        "spacing": "Small",
        "columns": [
            {"type": "Column", "width": "stretch", "verticalContentAlignment": "Center", "items": [line(label)]},
            {
                "type": "Column",
                "width": "auto",
                "verticalContentAlignment": "Center",
                "items": [action_set([execute(text(loc, "kb.answer.open"), "kb.article", {"id": article_id, "from": "answer"})])],
            },
        ],
    }


def answer_card(answer: "GroundedAnswer") -> Card:
    """The answer: the model's text or the quoted passages, the sources with "Open article", and
    "Did this help?". Worded in the question's language."""
    loc = answer.language
    body = [heading(text(loc, "kb.answer.title")), line(text(loc, "kb.answer.asked", question=plain(answer.question)), subtle=True, spacing="None")]
    other = sorted({s.language for s in answer.sources if s.language != loc})
    if other and all(s.language != loc for s in answer.sources):
        body.append(line(text(loc, "kb.answer.other_language", language=_language_name(other[0], loc)), weight="Bolder"))
    if answer.by_model:
        body.append({"type": "Container", "style": "emphasis", "items": model_blocks(answer.text or "")})
        body.append(line(text(loc, "kb.answer.by_model"), subtle=True, size="Small"))
    else:
        body.append(line(text(loc, "kb.answer.quoted"), subtle=True))
        for number, passage in enumerate(answer.passages, start=1):
            title = f"\\[{number}\\] {plain(passage.article_title)}"
            if passage.heading and passage.heading != passage.article_title:
                title += f" — {plain(passage.heading)}"
            items = [line(title, weight="Bolder", size="Small")] + markdown_blocks(passage.text)
            body.append({"type": "Container", "style": "emphasis", "spacing": "Medium", "items": items})
    body.append(line(text(loc, "kb.answer.sources"), weight="Bolder", spacing="Medium"))
    body += [_source_row(s.number, s.title, s.article_id, s.language, loc) for s in answer.sources]
    body += _feedback(answer, loc)
    return card(body, [execute(text(loc, "kb.browse"), "kb.categories")])


def dont_know_card(question: str, language: str) -> Card:
    """Nothing relevant enough: say so, and offer a support case with the question filled in."""
    loc = language
    body = [
        heading(text(loc, "kb.dont_know.title")),
        line(text(loc, "kb.dont_know.text", question=plain(question))),
        line(text(loc, "kb.dont_know.offer")),
    ]
    return card(body, [execute(text(loc, "kb.case.open"), "case.new", {"summary": question}, style="positive"), execute(text(loc, "kb.browse"), "kb.categories")])


def case_offer_card(question: str, language: str) -> Card:
    """After "No" on an answer: the same offer of a support case, with the question filled in."""
    loc = language
    body = [heading(text(loc, "kb.case.title")), line(text(loc, "kb.case.text", question=plain(question)))]
    return card(body, [execute(text(loc, "kb.case.open"), "case.new", {"summary": question}, style="positive"), execute(text(loc, "kb.browse"), "kb.categories")])


# --- browsing ------------------------------------------------------------------------------------

def _ask_box(loc: str | None) -> list[dict]:
    return [
        {
            "type": "Input.Text",
            "id": "question",
            "label": text(loc, "kb.categories.question"),
            "placeholder": text(loc, "kb.categories.placeholder"),
            "maxLength": 1000,
            "isRequired": True,
            "errorMessage": text(loc, "kb.question.empty"),
        },
        action_set([execute(text(loc, "kb.categories.ask"), "kb.ask", style="positive")]),
    ]


def categories_card(categories: list[CategoryEntry], *, locale: str | None = None) -> Card:
    loc = locale
    body = [heading(text(loc, "kb.categories.title")), line(text(loc, "kb.categories.intro"), spacing="None")]
    body += _ask_box(loc)
    if not categories:
        body.append(line(text(loc, "kb.categories.empty")))
    for i, entry in enumerate(categories):
        count = text(loc, "kb.categories.count_one") if entry.count == 1 else text(loc, "kb.categories.count", count=entry.count)
        body.append(
            {
                "type": "ColumnSet",
                "spacing": "Medium",
                "separator": i == 0,
                "columns": [
                    {
                        "type": "Column",
                        "width": "stretch",
                        "verticalContentAlignment": "Center",
                        "items": [line(plain(entry.label), weight="Bolder"), line(count, subtle=True, spacing="None", size="Small")],
                    },
                    {
                        "type": "Column",
                        "width": "auto",
                        "verticalContentAlignment": "Center",
                        "items": [action_set([execute(text(loc, "kb.categories.open"), "kb.category", {"category": entry.key})])],
                    },
                ],
            }
        )
    return card(body)


def category_card(category: CategoryEntry, articles: list[ArticleEntry], *, page: int = 1, locale: str | None = None) -> Card:
    """The articles of one topic, sorted by title, `CATEGORY_PAGE_SIZE` a page."""
    loc = locale or "en"
    pages = max(1, -(-len(articles) // CATEGORY_PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = articles[(page - 1) * CATEGORY_PAGE_SIZE : page * CATEGORY_PAGE_SIZE]
    body = [heading(plain(category.label))]
    if pages > 1:
        body.append(line(text(loc, "kb.category.page", number=page, count=pages), subtle=True, spacing="None"))
    for i, article in enumerate(shown):
        title = plain(article.title)
        if article.language != (locale or "en").split("-")[0]:
            title += " " + text(loc, "kb.answer.source_language", language=_language_name(article.language, loc))
        body.append(
            {
                "type": "ColumnSet",
                "spacing": "Medium",
                "separator": i > 0,
                "columns": [
                    {"type": "Column", "width": "stretch", "verticalContentAlignment": "Center", "items": [line(title)]},
                    {
                        "type": "Column",
                        "width": "auto",
                        "verticalContentAlignment": "Center",
                        "items": [action_set([execute(text(loc, "kb.answer.open"), "kb.article", {"id": article.id})])],
                    },
                ],
            }
        )
    actions = []
    if page > 1:
        actions.append(execute(text(loc, "action.previous"), "kb.category", {"category": category.key, "page": page - 1}))
    if page < pages:
        actions.append(execute(text(loc, "action.next"), "kb.category", {"category": category.key, "page": page + 1}))
    actions.append(execute(text(loc, "kb.category.all"), "kb.categories"))
    return card(body, actions)


def article_card(
    article_id: str, title: str, markdown: str, *, part: int, parts: int, category: CategoryEntry, locale: str | None = None
) -> Card:
    """One part of an article (Teams messages are limited to about 28 KB), with Previous/Next part."""
    loc = locale
    body = [heading(plain(title))]
    if parts > 1:
        body.append(line(text(loc, "kb.article.part", number=part, count=parts), subtle=True, spacing="None"))
    body += markdown_blocks(markdown)
    actions = []
    if part > 1:
        actions.append(execute(text(loc, "kb.article.previous"), "kb.article", {"id": article_id, "part": part - 1}))
    if part < parts:
        actions.append(execute(text(loc, "kb.article.next"), "kb.article", {"id": article_id, "part": part + 1}, style="positive"))
    actions.append(execute(text(loc, "kb.article.back"), "kb.category", {"category": category.key}))
    actions.append(execute(text(loc, "kb.ask.again"), "kb.categories"))
    return card(body, actions)
