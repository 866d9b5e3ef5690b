"""Measuring the knowledge base: quality on the development set, latency on a large corpus.

`run_eval()` is what `python -m bot eval knowledge` prints; `evaluate()` works on any
knowledge base and question list, so a customer's extra articles can be measured the same way.
"""
from __future__ import annotations

import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from knowledge.articles import SHIPPED_ARTICLES, Article, load_articles
from knowledge.engine import KnowledgeBase
from knowledge.parts import sections

DEVSET = Path(__file__).resolve().parent / "devset.yaml"
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class DevQuestion:
    question: str
    answers: tuple[str, ...]  # article ids that answer it; empty: the right reply is "I don't know"
    split: str = "dev"
    language: str | None = None
    customer_key: str | None = None


def load_devset(path: Path = DEVSET) -> list[DevQuestion]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("q"), str):
            raise ValueError(f"{path}: entry {i + 1} needs a 'q' text")
        split = item.get("split", "dev")
        if split not in SPLITS:
            raise ValueError(f"{path}: entry {i + 1}: split must be one of {SPLITS}")
        out.append(
            DevQuestion(item["q"], tuple(item.get("answers") or ()), split, item.get("language"), item.get("customer_key"))
        )
    return out


def evaluate(kb: KnowledgeBase, devset: Sequence[DevQuestion], *, limit: int = 3) -> dict:
    """Quality and latency of `kb` on `devset`.

    recall@k: share of answerable questions for which the answer was found and one of its
    first k sources is a right article (so a wrong "don't know" counts as a miss).
    ranking_recall@3: the same without the threshold (is the article ranked at all?).
    dont_know: share of unanswerable questions answered with found=False.
    """
    answerable = [q for q in devset if q.answers]
    unanswerable = [q for q in devset if not q.answers]
    latencies: list[float] = []
    hits1 = hits3 = ranked3 = dont_know = 0
    misses: list[dict] = []
    false_answers: list[dict] = []
    for q in devset:
        start = time.perf_counter()
        answer = kb.answer(q.question, customer_key=q.customer_key, language=q.language, limit=limit)
        latencies.append((time.perf_counter() - start) * 1000)
        got = [a.id for a in answer.sources]
        if q.answers:
            ranking = [p.article_id for p in kb.search(q.question, customer_key=q.customer_key, language=q.language, limit=3)]
            hit1 = answer.found and got[:1] and got[0] in q.answers
            hit3 = answer.found and any(g in q.answers for g in got[:3])
            hits1 += bool(hit1)
            hits3 += bool(hit3)
            ranked3 += any(r in q.answers for r in ranking)
            if not hit1:
                misses.append(
                    {"question": q.question, "split": q.split, "expected": list(q.answers), "got": got or None,
                     "ranking": ranking, "confidence": round(answer.confidence, 3)}
                )
        elif not answer.found:
            dont_know += 1
        else:
            false_answers.append({"question": q.question, "split": q.split, "got": got, "confidence": round(answer.confidence, 3)})
    n_a, n_u = len(answerable), len(unanswerable)
    return {
        "questions": len(devset),
        "answerable": n_a,
        "unanswerable": n_u,
        "recall@1": round(hits1 / n_a, 3) if n_a else None,
        "recall@3": round(hits3 / n_a, 3) if n_a else None,
        "ranking_recall@3": round(ranked3 / n_a, 3) if n_a else None,
        "dont_know": round(dont_know / n_u, 3) if n_u else None,
        "latency_ms": _latency(latencies),
        "misses": misses,
        "false_answers": false_answers,
    }


def _latency(samples: list[float]) -> dict:
    if not samples:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2), "max": round(ordered[-1], 2)}


# --- a large corpus for latency ------------------------------------------------------------

_PRODUCTS = (
    "Business Basic", "Business Standard", "Business Premium", "E3", "E5", "F3", "Exchange Online Plan 1",
    "Exchange Online Plan 2", "Teams Phone", "Audio Conferencing", "Intune", "Defender for Business",
    "Power BI Pro", "Visio Plan 2", "Project Plan 3", "Entra ID P1", "Entra ID P2", "Copilot",
)
_TOPICS_EN = ("setup", "troubleshooting", "billing", "renewal", "migration", "security", "permissions", "reports")
_TOPICS_DE = ("Einrichtung", "Fehlerbehebung", "Abrechnung", "Verlängerung", "Migration", "Sicherheit", "Berechtigungen")


def synthetic_corpus(n: int = 1000, seed: int = 0, base: Sequence[Article] | None = None) -> list[Article]:
    """`n` realistic-looking articles made by recombining sections of the shipped ones.

    Each has a new title (a product and a topic), tags, and 4–7 sections drawn from different
    real articles of the same language, with product names swapped in, so vocabulary,
    lengths and the English/German mix resemble the real corpus. Deterministic for a seed.
    """
    rng = random.Random(seed)
    base = list(base) if base is not None else load_articles([SHIPPED_ARTICLES]).articles
    if not base:
        raise ValueError("synthetic_corpus needs at least one real article to recombine")
    pools: dict[str, list[tuple[str, str]]] = {}
    for article in base:
        for s in sections(article):
            if s.heading and s.text:
                pools.setdefault(article.language, []).append((s.heading, s.text))
    out: list[Article] = []
    for i in range(n):
        template = rng.choice(base)
        language = template.language if template.language in pools else next(iter(pools))
        product = rng.choice(_PRODUCTS)
        topic = rng.choice(_TOPICS_DE if language == "de" else _TOPICS_EN)
        chosen = rng.sample(pools[language], k=min(len(pools[language]), rng.randint(4, 7)))
        body = "\n\n".join(f"## {h} ({product})\n\n{t.replace('Microsoft 365', product)}" for h, t in chosen)
        out.append(
            replace(
                template,
                id=f"synthetic-{i:04d}",
                title=f"{product}: {topic} – {chosen[0][0]}",
                category=template.category,
                tags=(*rng.sample(template.tags, k=min(2, len(template.tags))), product.lower()),
                language=language,
                body=body + "\n",
                audience=frozenset({f"customer-{rng.randint(1, 40)}"}) if rng.random() < 0.1 else None,
                path=None,
                body_line=1,
            )
        )
    return out


def latency_on(kb: KnowledgeBase, questions: Sequence[str], *, rounds: int = 3, customer_key: str | None = "customer-1") -> dict:
    samples = []
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            kb.answer(q, customer_key=customer_key)
            samples.append((time.perf_counter() - start) * 1000)
    return _latency(samples)


def run_eval(dirs: list[Path] | None = None, *, devset_path: Path = DEVSET, synthetic_articles: int = 1000) -> dict:
    """Every figure for `python -m bot eval knowledge`: quality per split on the real articles of
    `dirs` (default: the shipped ones), and latency over a synthetic corpus of 1,000 articles."""
    loaded = load_articles(dirs if dirs is not None else [SHIPPED_ARTICLES])
    start = time.perf_counter()
    kb = KnowledgeBase.build(loaded.articles)
    build_ms = (time.perf_counter() - start) * 1000
    devset = load_devset(devset_path)
    result: dict = {
        "articles": len(loaded.articles),
        "problems": [str(p) for p in loaded.problems],
        "threshold": kb.threshold,
        "build_ms": round(build_ms, 1),
    }
    for split in SPLITS:
        result[split] = evaluate(kb, [q for q in devset if q.split == split])
    result["all"] = evaluate(kb, devset)
    corpus = list(loaded.articles) + synthetic_corpus(max(0, synthetic_articles - len(loaded.articles)), base=loaded.articles or None)
    start = time.perf_counter()
    big = KnowledgeBase.build(corpus)
    result["synthetic"] = {
        "articles": len(big),
        "build_ms": round((time.perf_counter() - start) * 1000, 1),
        "latency_ms": latency_on(big, [q.question for q in devset]),
    }
    return result


def format_report(result: dict) -> str:
    """A short human-readable summary of `run_eval()`."""
    lines = [f"knowledge base: {result['articles']} articles, {len(result['problems'])} problems, threshold {result['threshold']}"]
    lines += [f"  problem: {p}" for p in result["problems"]]
    for split in (*SPLITS, "all"):
        r = result[split]
        lines.append(
            f"{split:>4}: {r['answerable']} answerable, {r['unanswerable']} unanswerable | recall@1 {r['recall@1']} "
            f"recall@3 {r['recall@3']} (ranking {r['ranking_recall@3']}) | don't know {r['dont_know']} | "
            f"p50 {r['latency_ms']['p50']} ms p95 {r['latency_ms']['p95']} ms"
        )
    s = result["synthetic"]
    lines.append(
        f"synthetic: {s['articles']} articles, built in {s['build_ms']} ms | p50 {s['latency_ms']['p50']} ms "
        f"p95 {s['latency_ms']['p95']} ms"
    )
    for miss in result["all"]["misses"]:
        lines.append(f"  miss [{miss['split']}] {miss['question']!r}: expected {miss['expected']}, got {miss['got']} ({miss['confidence']})")
    for fa in result["all"]["false_answers"]:
        lines.append(f"  false answer [{fa['split']}] {fa['question']!r}: {fa['got']} ({fa['confidence']})")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a convenience for tuning
    import sys

    res = run_eval([Path(p) for p in sys.argv[1:]] or None)
    print(format_report(res))
