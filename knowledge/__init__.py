"""Seatdesk's knowledge base: Markdown articles, indexed offline, answered with BM25F passages.

The bot builds one `KnowledgeBase` at start-up and asks it questions; nothing here does I/O
at question time or knows about Teams.

    loaded = load_articles(knowledge_dirs(settings.knowledge_dir))   # log loaded.problems
    kb = KnowledgeBase.build(loaded.articles)
    answer = kb.answer("Warum kann ich die Lizenz nicht kündigen?", customer_key="contoso")
"""
from knowledge.articles import (
    CATEGORY_LABELS,
    SHIPPED_ARTICLES,
    Article,
    LoadResult,
    Problem,
    category_label,
    knowledge_dirs,
    load_articles,
)
from knowledge.engine import Answer, KnowledgeBase, Passage
from knowledge.parts import DEFAULT_PART_CHARS, article_parts
from knowledge.text import detect_language

__all__ = [
    "Answer",
    "Article",
    "CATEGORY_LABELS",
    "DEFAULT_PART_CHARS",
    "KnowledgeBase",
    "LoadResult",
    "Passage",
    "Problem",
    "SHIPPED_ARTICLES",
    "article_parts",
    "category_label",
    "detect_language",
    "knowledge_dirs",
    "load_articles",
]
