"""Every knowledge card with realistic data (the shipped articles), for the gallery and the renderer check."""
from __future__ import annotations

from dataclasses import replace

from cards.common import Card
from cards.knowledge import (
    ArticleEntry,
    CategoryEntry,
    answer_card,
    article_card,
    case_offer_card,
    categories_card,
    category_card,
    dont_know_card,
)
from knowledge import KnowledgeBase, SHIPPED_ARTICLES, article_parts, category_label, load_articles
from knowledge.answering import GroundedAnswer, offline_sources


def _answer(kb: KnowledgeBase, question: str, customer_key: str | None = "fabrikam") -> GroundedAnswer:
    found = kb.answer(question, customer_key=customer_key, limit=3)
    return GroundedAnswer(question, found, sources=offline_sources(found))


def examples() -> dict[str, Card]:
    articles = load_articles([SHIPPED_ARTICLES]).articles
    kb = KnowledgeBase.build(articles)
    offline = _answer(kb, "Why can't I cancel my licence any more?")
    by_model = replace(
        offline,
        text=(
            "You can reduce seats or cancel only within 7 days (168 hours) of buying, renewing or adding seats [1]. "
            "After that the seats stay until the end of the term; you can lower the quantity for the renewal instead [1]. "
            "Inside the window Microsoft refunds pro rata, as a credit on your next invoice [2]."
        ),
        sources=(
            offline.sources[0],
            replace(offline.sources[1], number=2),
        ),
        model="openai:gpt-4o-mini",
    )
    german = _answer(kb, "Wie melde ich eine Phishing-Mail?")
    german_by_model = replace(
        german,
        text="Klicken Sie in Outlook bei geöffneter Mail auf **Melden** und wählen Sie **Phishing** [1]. "
        "Klicken Sie auf keine Links und öffnen Sie keine Anhänge [1].",
        sources=offline_sources(german.retrieval)[:1],
        model="openai:gpt-4o-mini",
    )
    entries = sorted(
        (CategoryEntry(c, category_label(c), len(kb.articles_in(c, "fabrikam"))) for c in kb.categories("fabrikam")),
        key=lambda e: e.label.lower(),
    )
    licensing = next(e for e in entries if e.key == "licensing")
    listing = [ArticleEntry(a.id, a.title, a.language) for a in kb.articles_in("licensing", "fabrikam")]
    window = kb.article("nce-cancellation-window", None)
    comparison = kb.article("licence-comparison", None)
    assert window is not None and comparison is not None
    long_guide = replace(window, id="nce-guide-long", title="New commerce: the complete guide", body="\n\n".join([window.body] * 3))
    long_parts = article_parts(long_guide)
    return {
        "knowledge-answer": answer_card(offline),
        "knowledge-answer-by-model": answer_card(by_model),
        "knowledge-answer-german-question-english-article": answer_card(german),
        "knowledge-answer-by-model-german": answer_card(german_by_model),
        "knowledge-dont-know": dont_know_card("Can you reset my SAP password?", "en"),
        "knowledge-dont-know-german": dont_know_card("Wie hoch ist der Bitcoin-Kurs?", "de"),
        "knowledge-case-offer": case_offer_card("outlook keeps asking for my password", "en"),
        "knowledge-categories": categories_card(entries),
        "knowledge-category": category_card(licensing, listing),
        "knowledge-article": article_card(window.id, window.title, article_parts(window)[0], part=1, parts=1, category=licensing),
        "knowledge-article-with-table": article_card(
            comparison.id, comparison.title, article_parts(comparison)[0], part=1, parts=len(article_parts(comparison)), category=licensing
        ),
        "knowledge-article-part-2": article_card(
            long_guide.id, long_guide.title, long_parts[1], part=2, parts=len(long_parts), category=licensing
        ),
    }
