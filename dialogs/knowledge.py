"""Knowledge questions and browsing: ask → answer with sources (or "I don't know" and a support
case), "Did this help?", and categories → articles → an article in parts.

The customer is always the resolved identity's: its key decides which articles (by `audience`)
can be found, listed, opened or given feedback on. Card data is only a reference (an article id,
a category, a part number) and is checked against what this customer may see.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select

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
from cards.text import text
from dialogs import welcome
from dialogs.base import BadActionData, FlowContext, Outcome, Reply, Verb, int_field
from dialogs.slow import within_deadline
from knowledge import article_parts, category_label, detect_language
from knowledge.answering import MAX_QUESTION_CHARS
from services.models import Customer, KnowledgeFeedback
from services.permissions import Permission

_ARTICLE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_QUESTION_WORDS = frozenset(
    "how what why when where which who whom whose can could do does did is are was will would should may "
    "wie was warum wieso weshalb wann wo woher wohin welche welcher welches wer kann koennen können "
    "darf muss ist sind gibt habe hat brauche braucht".split()
)


def _language(locale: str | None) -> str | None:
    language = (locale or "").split("-")[0].lower()
    return language if language in ("en", "de") else None


def question_text(message: str) -> str:
    """The question as typed, without Teams' @mentions and surrounding blanks."""
    return " ".join(_MENTION.sub(" ", message).split())


def is_question(message: str) -> bool:
    """A question mark at the end, or a question word first (English or German)."""
    said = question_text(message)
    words = re.findall(r"\w+", said.lower())
    return bool(words) and (said.endswith("?") or words[0] in _QUESTION_WORDS)


def looks_like_question(message: str) -> bool:
    """Free text the router did not otherwise understand that should go to the knowledge base:
    a question (see `is_question`), or a statement of three words or more ("outlook keeps
    asking for my password")."""
    return is_question(message) or len(re.findall(r"\w+", question_text(message))) >= 3


async def _customer_key(ctx: FlowContext) -> str | None:
    if ctx.identity.customer_id is None:
        return None
    async with ctx.db() as session:
        return (await session.execute(select(Customer.key).where(Customer.id == ctx.identity.customer_id))).scalar_one_or_none()


def _unavailable(ctx: FlowContext) -> Outcome:
    return Outcome([Reply(text=ctx.text("kb.unavailable"))])


def _string(data: dict[str, Any], name: str, *, max_chars: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or len(value) > max_chars:
        raise BadActionData(name)
    return value


# --- asking --------------------------------------------------------------------------------------

async def answer_question(ctx: FlowContext, question: str, *, typed: bool = False) -> Outcome:
    """Answer a question: the answer card with sources, or "I don't know" with a support case.

    `typed`: free text the router passed on because it understood nothing else. Then a
    statement that finds no answer ("blorp the frobnicator") gets the help card rather than
    "I don't know", which is meant for questions.
    """
    if ctx.knowledge is None:
        return _unavailable(ctx)
    question = question_text(question)[:MAX_QUESTION_CHARS]
    if not question:
        return Outcome([Reply(text=ctx.text("kb.question.empty"))])
    customer_key = await _customer_key(ctx)

    async def look_up() -> Outcome:
        answer = await ctx.knowledge.ask(question, customer_key=customer_key, language=_language(ctx.locale))
        if answer.found:
            return Outcome([Reply(card=answer_card(answer))])
        if typed and not is_question(question):
            return await welcome.not_understood(ctx)
        return Outcome([Reply(card=dont_know_card(answer.question, answer.language))])

    # A model writes the answer (up to SEATDESK_LLM_TIMEOUT_SECONDS), perhaps after a model routed the message.
    key = f"kb/{ctx.activity_id or uuid.uuid4().hex}"
    return await within_deadline(ctx, key, look_up, working=Reply(text=ctx.text("kb.working")))


async def ask(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    """`kb.ask`: from the Ask box ({"question": …}) or from the router ({"question": …, "typed": true})."""
    question = data.get("question")
    if question is not None and not isinstance(question, str):
        raise BadActionData("question")
    return await answer_question(ctx, (question or "")[: MAX_QUESTION_CHARS * 2], typed=data.get("typed") is True)


async def feedback(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    """"Did this help?": one row per article shown, per person and question (a second click
    changes the vote instead of counting twice). "No" offers a support case with the question."""
    if ctx.knowledge is None:
        return _unavailable(ctx)
    helpful = data.get("helpful")
    articles = data.get("articles")
    if not isinstance(helpful, bool) or not isinstance(articles, list) or not 1 <= len(articles) <= 5:
        raise BadActionData("feedback")
    question = _string(data, "question", max_chars=MAX_QUESTION_CHARS).strip()
    if not question or not all(isinstance(a, str) and _ARTICLE_ID.match(a) for a in articles):
        raise BadActionData("feedback")
    key = await _customer_key(ctx)
    # Only articles this customer may see: the ids came back from a card and are not trusted.
    visible = [a for a in dict.fromkeys(articles) if ctx.knowledge.kb.article(a, key) is not None]
    if not visible:
        return Outcome([Reply(text=ctx.text("kb.article.not_found"))])
    language = data.get("language") if data.get("language") in ("en", "de") else detect_language(question, default="en")
    now = ctx.clock.now()
    async with ctx.db() as session, session.begin():
        existing = {
            row.article_id: row
            for row in (
                await session.execute(
                    select(KnowledgeFeedback).where(
                        KnowledgeFeedback.customer_id == ctx.identity.customer_id,
                        KnowledgeFeedback.user_id == ctx.identity.user_id,
                        KnowledgeFeedback.question == question,
                        KnowledgeFeedback.article_id.in_(visible),
                    )
                )
            ).scalars()
        }
        for article_id in visible:
            row = existing.get(article_id)
            if row is None:
                session.add(
                    KnowledgeFeedback(
                        customer_id=ctx.identity.customer_id,
                        user_id=ctx.identity.user_id,
                        article_id=article_id,
                        question=question,
                        helpful=helpful,
                        language=language,
                        created_at=now,
                    )
                )
            else:
                row.helpful, row.created_at = helpful, now
    if helpful:
        return Outcome([Reply(text=text(language, "kb.feedback.thanks"))])
    sorry = Reply(text=text(language, "kb.feedback.sorry"))
    from dialogs import router  # the router imports this module; the case flow is found through it

    if "case.new" in router.VERBS:
        opened = await router.dispatch(ctx, "case.new", {"summary": question})
        return Outcome([sorry, *opened.replies], keep_card=True)
    return Outcome([sorry, Reply(card=case_offer_card(question, language))], keep_card=True)


# --- browsing ------------------------------------------------------------------------------------

def _entry(ctx: FlowContext, category: str, key: str | None) -> CategoryEntry:
    language = _language(ctx.locale) or "en"
    return CategoryEntry(category, category_label(category, language), len(ctx.knowledge.kb.articles_in(category, key)))


async def categories(ctx: FlowContext, data: dict[str, Any] | None = None) -> Outcome:
    if ctx.knowledge is None:
        return _unavailable(ctx)
    key = await _customer_key(ctx)
    entries = [_entry(ctx, c, key) for c in ctx.knowledge.kb.categories(key)]
    entries.sort(key=lambda e: e.label.lower())
    return Outcome([Reply(card=categories_card(entries, locale=ctx.locale))])


async def category(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    if ctx.knowledge is None:
        return _unavailable(ctx)
    name = _string(data, "category", max_chars=80)
    page = int_field(data, "page", default=1, high=10_000)
    key = await _customer_key(ctx)
    if name not in ctx.knowledge.kb.categories(key):
        return Outcome([Reply(text=ctx.text("kb.category.not_found"))])
    articles = [ArticleEntry(a.id, a.title, a.language) for a in ctx.knowledge.kb.articles_in(name, key)]
    return Outcome([Reply(card=category_card(_entry(ctx, name, key), articles, page=page, locale=ctx.locale))])


async def article(ctx: FlowContext, data: dict[str, Any]) -> Outcome:
    if ctx.knowledge is None:
        return _unavailable(ctx)
    article_id = _string(data, "id", max_chars=80)
    part = int_field(data, "part", default=1, high=1_000)
    key = await _customer_key(ctx)
    found = ctx.knowledge.kb.article(article_id, key) if _ARTICLE_ID.match(article_id) else None
    if found is None:
        # Unknown and not-for-this-customer read the same: nothing tells that it exists elsewhere.
        return Outcome([Reply(text=ctx.text("kb.article.not_found"))])
    parts = article_parts(found)
    part = min(part, len(parts))  # the article may have become shorter since the card was sent
    card = article_card(
        found.id, found.title, parts[part - 1], part=part, parts=len(parts), category=_entry(ctx, found.category, key), locale=ctx.locale
    )
    # Opened from an answer: the answer (and its "Did this help?") stays, the article comes below it.
    return Outcome([Reply(card=card)], keep_card=data.get("from") == "answer")


VERBS = {
    "kb.ask": Verb(ask, Permission.ASK_KNOWLEDGE),
    "kb.categories": Verb(categories, Permission.ASK_KNOWLEDGE),
    "kb.category": Verb(category, Permission.ASK_KNOWLEDGE),
    "kb.article": Verb(article, Permission.ASK_KNOWLEDGE),
    "kb.feedback": Verb(feedback, Permission.ASK_KNOWLEDGE),
}
PHRASES = {
    "kb.categories": (
        "knowledge base",
        "knowledge",
        "kb",
        "articles",
        "help articles",
        "browse articles",
        "faq",
        "faqs",
        "how to",
        "how tos",
        "ask a question",
        "i have a question",
        "wissensdatenbank",
        "artikel",
        "hilfe artikel",
        "ich habe eine frage",
    ),
}
