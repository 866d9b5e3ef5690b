"""The knowledge base: passages of articles indexed with BM25F, and answers with "I don't know".

Everything is built once in `KnowledgeBase.build`; answering a question does no I/O.

Scoring, in short (docs/knowledge.md has the long version):
- Each article is cut into passages (its sections, long ones into paragraph groups). A passage
  has the fields title and tags (of its article), heading, body, and the whole article's text as
  a weak context field. BM25F combines them with the weights in `FIELDS`.
- A question becomes *term groups*: one per content word, holding its stem and its
  alternatives (the other language's stem, same-language synonyms, the cross-language bridge,
  a spelling-mistake neighbour), each with a weight below 1. A group scores the best of its
  alternatives, so synonyms never add up.
- Confidence, comparable across questions, is the idf-weighted share of the question's term
  groups that the passage matches, damped by how strongly it matches them. Below
  `threshold` the answer is "I don't know".
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from knowledge.articles import Article
from knowledge.parts import paragraphs, sections
from knowledge.text import Analyzer, detect_language, fold, is_stop_word, tokens
from knowledge.vocabulary import (
    BRIDGE,
    BRIDGE_WEIGHT,
    FUZZY_WEIGHT,
    GERMAN_VERB_PARTICLES,
    OTHER_STEMMER_WEIGHT,
    SYNONYM_WEIGHT,
    SYNONYMS,
    UNKNOWN_WORD_WEIGHT,
)

# field: (weight, length normalisation b)
FIELDS: dict[str, tuple[float, float]] = {
    "title": (3.0, 0.3),
    "tags": (2.0, 0.0),
    "heading": (1.5, 0.3),
    "body": (1.0, 0.75),
    "article": (0.4, 0.75),
}
K1 = 1.2
PASSAGE_CHARS = 900  # a section longer than this is cut into paragraph groups of about this size
DEFAULT_THRESHOLD = 0.48  # tuned on the dev split of knowledge/devset.yaml; see docs/knowledge.md
RELATED_SHARE = 0.85  # further passages need this share of the threshold to be shown as well
OTHER_LANGUAGE_FACTOR = 0.8  # an article in the other language must match clearly better to rank first


@dataclass(frozen=True)
class Passage:
    article_id: str
    article_title: str
    article_language: str
    heading: str
    text: str
    score: float  # confidence 0..1, comparable across questions


@dataclass(frozen=True)
class Answer:
    question: str
    found: bool
    language: str  # the question's language, "en" or "de"
    passages: tuple[Passage, ...] = ()
    sources: tuple[Article, ...] = ()  # the articles of `passages`, same order
    confidence: float = 0.0  # of the best passage, also when not found (for logs and tuning)


@dataclass
class _Unit:
    article: Article
    heading: str
    text: str


@dataclass
class _Group:
    """One content word of a question with its weighted alternatives present in the index."""

    alternatives: dict[str, float]
    idf: float
    potential: float  # the most this group can add to coverage (idf-weighted)


@dataclass
class _Ranked:
    unit: int
    score: float
    confidence: float


@dataclass
class KnowledgeBase:
    threshold: float = DEFAULT_THRESHOLD
    _articles: dict[str, Article] = field(default_factory=dict)
    _units: list[_Unit] = field(default_factory=list)
    _postings: dict[str, dict[int, float]] = field(default_factory=dict)
    _idf: dict[str, float] = field(default_factory=dict)
    _unknown_idf: float = 1.0
    _analyzer: Analyzer | None = None
    _synonyms: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _bridge: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _deletions: dict[str, set[str]] = field(default_factory=dict)
    _term_articles: dict[str, set[int]] = field(default_factory=dict)
    _article_no: dict[str, int] = field(default_factory=dict)

    # --- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, articles: Iterable[Article], *, threshold: float = DEFAULT_THRESHOLD) -> "KnowledgeBase":
        articles = list(articles)
        german_words = {t for a in articles if a.language == "de" for t in tokens(a.title + "\n" + a.body)}
        kb = cls(threshold=threshold, _analyzer=Analyzer(german_words))
        kb._index(articles)
        kb._prepare_vocabulary()
        return kb

    def _index(self, articles: list[Article]) -> None:
        an = self._analyzer
        assert an is not None
        field_terms: list[dict[str, Counter[str]]] = []
        article_df: Counter[str] = Counter()
        for article in articles:
            if article.id in self._articles:
                continue  # load_articles already reports duplicates; the first one wins
            self._articles[article.id] = article
            lang = article.language
            title = Counter(an.terms(article.title, lang))
            tags = Counter(an.terms(" ".join((*article.tags, article.category.replace("-", " "))), lang))
            whole = Counter(an.terms(article.body, lang))
            seen_terms = set(title) | set(tags) | set(whole)
            for heading, text in _passages(article):
                heading_terms = Counter(an.terms(heading, lang))
                seen_terms |= set(heading_terms)
                self._units.append(_Unit(article, heading, text))
                field_terms.append(
                    {"title": title, "tags": tags, "heading": heading_terms, "body": Counter(an.terms(text, lang)), "article": whole}
                )
            article_df.update(seen_terms)

        n = max(len(self._articles), 1)
        self._article_no = {article_id: i for i, article_id in enumerate(self._articles)}
        self._idf = {t: self._idf_of(df) for t, df in article_df.items()}
        # A word no article contains weighs as much as one that only a single article contains.
        self._unknown_idf = UNKNOWN_WORD_WEIGHT * self._idf_of(1)
        avg = {
            f: (sum(sum(ft[f].values()) for ft in field_terms) / len(field_terms)) or 1.0 if field_terms else 1.0
            for f in FIELDS
        }
        self._term_articles = {}
        postings: dict[str, dict[int, float]] = defaultdict(dict)
        for unit, ft in enumerate(field_terms):
            lengths = {f: sum(ft[f].values()) for f in FIELDS}
            pseudo: dict[str, float] = defaultdict(float)
            for f, (weight, b) in FIELDS.items():
                norm = 1 - b + b * lengths[f] / avg[f]
                for term, tf in ft[f].items():
                    pseudo[term] += weight * tf / norm
            article_no = self._article_no[self._units[unit].article.id]
            for term, tf in pseudo.items():
                postings[term][unit] = tf * (K1 + 1) / (K1 + tf)
                self._term_articles.setdefault(term, set()).add(article_no)
        self._postings = dict(postings)

    def _idf_of(self, df: int) -> float:
        n = max(len(self._articles), 1)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def _prepare_vocabulary(self) -> None:
        an = self._analyzer
        assert an is not None
        for lang, groups in SYNONYMS.items():
            for group in groups:
                stems = {an.stem(t, lang) for t in tokens(group)}
                for s in stems:
                    self._synonyms.setdefault((lang, s), set()).update(stems - {s})
        for german, english in BRIDGE:
            de = {an.stem(t, "de") for t in tokens(german) if not is_stop_word(t, "de")}
            en = {an.stem(t, "en") for t in tokens(english) if not is_stop_word(t, "en")}
            for s in de:
                self._bridge.setdefault(("de", s), set()).update(en)
            for s in en:
                self._bridge.setdefault(("en", s), set()).update(de)
        for term in self._postings:
            if len(term) >= 5 and term.isalpha():
                for variant in _deletions(term):
                    self._deletions.setdefault(variant, set()).add(term)

    # --- browsing ------------------------------------------------------------------------------

    def article(self, article_id: str, customer_key: str | None) -> Article | None:
        article = self._articles.get(article_id)
        return article if article is not None and article.visible_to(customer_key) else None

    def categories(self, customer_key: str | None, language: str | None = None) -> list[str]:
        """Categories with at least one visible article (of `language`, if given), sorted."""
        return sorted({a.category for a in self._visible(customer_key, language)})

    def articles_in(self, category: str, customer_key: str | None, language: str | None = None) -> list[Article]:
        return sorted(
            (a for a in self._visible(customer_key, language) if a.category == category),
            key=lambda a: fold(a.title),
        )

    def _visible(self, customer_key: str | None, language: str | None) -> Iterable[Article]:
        return (
            a for a in self._articles.values() if a.visible_to(customer_key) and (language is None or a.language == language)
        )

    def __len__(self) -> int:
        return len(self._articles)

    # --- answering -----------------------------------------------------------------------------

    def answer(self, question: str, *, customer_key: str | None, language: str | None = None, limit: int = 3) -> Answer:
        """The best passages (one per article) for `question`, or found=False ("I don't know").

        `language` is the user's language if known (e.g. the Teams locale); it only breaks ties
        in detecting the question's language.
        """
        detected = detect_language(question, default=language or "en")
        ranked = self._rank(question, detected, customer_key, limit=max(limit, 1))
        if not ranked or ranked[0].confidence < self.threshold:
            return Answer(question, False, detected, confidence=ranked[0].confidence if ranked else 0.0)
        chosen = [ranked[0]] + [r for r in ranked[1:limit] if r.confidence >= self.threshold * RELATED_SHARE]
        passages = tuple(self._passage(r) for r in chosen)
        sources = tuple(self._units[r.unit].article for r in chosen)
        return Answer(question, True, detected, passages, sources, ranked[0].confidence)

    def search(self, question: str, *, customer_key: str | None, language: str | None = None, limit: int = 10) -> list[Passage]:
        """The best passage of each of the `limit` best visible articles, without the threshold."""
        detected = detect_language(question, default=language or "en")
        return [self._passage(r) for r in self._rank(question, detected, customer_key, limit)]

    def _passage(self, ranked: _Ranked) -> Passage:
        unit = self._units[ranked.unit]
        a = unit.article
        return Passage(a.id, a.title, a.language, unit.heading, unit.text, round(ranked.confidence, 4))

    def query_groups(self, question: str, language: str) -> list[_Group]:
        """The question's term groups (exposed for tests and for tuning the vocabulary)."""
        an = self._analyzer
        assert an is not None
        other = "en" if language == "de" else "de"
        groups: list[_Group] = []
        seen: set[str] = set()
        all_tokens = tokens(question)
        particles = [p for p in GERMAN_VERB_PARTICLES if p in all_tokens] if language == "de" else []
        for token in all_tokens:
            if is_stop_word(token, language) or is_stop_word(token, other) or (len(token) < 2 and not token.isdigit()):
                continue
            words = [token]
            if language == "de":
                parts = an.compound_parts(token)
                if parts:
                    whole = an.stem(token, "de")
                    words = ([token] if whole in self._postings else []) + [f"\0{p}" for p in parts]
            for word in words:
                if word.startswith("\0"):  # a compound part: already a German stem
                    primary, secondary = word[1:], None
                else:
                    primary, secondary = an.stem(word, language), an.stem(word, other)
                if primary in seen:
                    continue
                seen.add(primary)
                group = self._group(word.lstrip("\0"), primary, secondary, language, other)
                for particle in particles if secondary is not None else ():
                    # "weise … zu" → "zuweisen": the joined verb, if the index or the bridge knows it
                    joined = an.stem(particle + word, "de")
                    joined_group = self._group(particle + word, joined, None, language, other)
                    if joined_group.alternatives and joined_group.idf >= group.idf * 0.5:
                        group = _merge(group, joined_group, self._idf_of)
                groups.append(group)
        return groups

    def _group(self, word: str, primary: str, secondary: str | None, language: str, other: str) -> _Group:
        alts: dict[str, float] = {}

        def add(term: str, weight: float) -> None:
            if term in self._postings and weight > alts.get(term, 0.0):
                alts[term] = weight

        add(primary, 1.0)
        if secondary and secondary != primary:
            add(secondary, OTHER_STEMMER_WEIGHT)
        for s in self._synonyms.get((language, primary), ()):
            add(s, SYNONYM_WEIGHT)
        for s in self._bridge.get((language, primary), ()):
            add(s, BRIDGE_WEIGHT)
        if secondary:
            for s in self._bridge.get((other, secondary), ()):
                add(s, BRIDGE_WEIGHT * 0.9)
            for s in self._synonyms.get((other, secondary), ()):
                add(s, SYNONYM_WEIGHT * OTHER_STEMMER_WEIGHT)
        if not alts and len(primary) >= 5 and primary.isalpha():
            for s in self._near(primary):
                add(s, FUZZY_WEIGHT)
        if not alts:
            return _Group({}, 0.0, self._unknown_idf)
        # The group is one concept: its idf counts the articles containing any alternative, so a
        # word that is rare in German articles doesn't outweigh its common English translation.
        if len(alts) == 1:
            idf = self._idf[next(iter(alts))]
        else:
            idf = self._idf_of(len(set().union(*(self._term_articles[t] for t in alts))))
        return _Group(alts, idf, max(alts.values()) * idf)

    def _near(self, term: str) -> set[str]:
        candidates = set(self._deletions.get(term, ()))
        for variant in _deletions(term):
            candidates |= self._deletions.get(variant, set())
            if variant in self._postings:
                candidates.add(variant)
        return {c for c in candidates if _one_edit(term, c)}

    def _rank(self, question: str, language: str, customer_key: str | None, limit: int) -> list[_Ranked]:
        groups = self.query_groups(question, language)
        total = sum(g.potential for g in groups)
        if not groups or total <= 0:
            return []
        score: dict[int, float] = defaultdict(float)
        covered: dict[int, float] = defaultdict(float)
        for group in groups:
            best: dict[int, float] = {}
            cover: dict[int, float] = {}
            for term, weight in group.alternatives.items():
                for unit, value in self._postings[term].items():
                    value *= weight
                    if value > best.get(unit, 0.0):
                        best[unit] = value
                    if weight > cover.get(unit, 0.0):
                        cover[unit] = weight
            for unit, value in best.items():
                score[unit] += value * group.idf
                covered[unit] += cover[unit] * group.idf
        best_per_article: dict[str, tuple[float, int]] = {}
        for unit, value in score.items():
            article = self._units[unit].article
            if not article.visible_to(customer_key):
                continue
            if article.language != language:
                value *= OTHER_LANGUAGE_FACTOR
            current = best_per_article.get(article.id)
            if current is None or value > current[0]:
                best_per_article[article.id] = (value, unit)
        top = sorted(best_per_article.values(), key=lambda su: (-su[0], su[1]))[:limit]
        return [_Ranked(unit, value, _confidence(covered[unit] / total, value / (total * (K1 + 1)))) for value, unit in top]


def _merge(a: _Group, b: _Group, idf_of) -> _Group:
    if not a.alternatives:
        return b
    alts = dict(a.alternatives)
    for term, weight in b.alternatives.items():
        alts[term] = max(weight, alts.get(term, 0.0))
    idf = max(a.idf, b.idf)
    return _Group(alts, idf, max(alts.values()) * idf)


def _confidence(coverage: float, strength: float) -> float:
    """Share of the question matched, damped when the matches are only weak (e.g. one mention)."""
    return coverage * min(1.0, 0.5 + strength)


def _passages(article: Article) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for section in sections(article):
        heading = section.heading or article.title
        if len(section.text) <= PASSAGE_CHARS:
            if section.text.strip():
                out.append((heading, section.text))
            continue
        current = ""
        for para in paragraphs(section.text):
            if current and len(current) + len(para) > PASSAGE_CHARS:
                out.append((heading, current))
                current = para
            else:
                current = f"{current}\n\n{para}" if current else para
        if current:
            out.append((heading, current))
    return out or [(article.title, article.body)]


def _deletions(term: str) -> set[str]:
    return {term[:i] + term[i + 1 :] for i in range(len(term))}


def _one_edit(a: str, b: str) -> bool:
    """True if a and b differ by one insertion, deletion, substitution or adjacent swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return a == b
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if len(a) > len(b):
        a, b = b, a
    return any(b[:i] + b[i + 1 :] == a for i in range(len(b)))
