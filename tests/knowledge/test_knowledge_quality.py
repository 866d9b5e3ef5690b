"""Quality on the shipped development set (never timing: latency depends on the machine)."""
from __future__ import annotations

from knowledge import KnowledgeBase, load_articles
from knowledge.evaluate import load_devset, evaluate, synthetic_corpus


def test_devset_is_big_enough_and_names_real_articles() -> None:
    devset = load_devset()
    ids = {a.id for a in load_articles().articles}
    answerable = [q for q in devset if q.answers]
    assert len(answerable) >= 70
    assert sum(not q.answers for q in devset) >= 15
    assert sum(q.split == "test" for q in devset) >= 20
    assert {i for q in devset for i in q.answers} <= ids


def test_shipped_knowledge_base_meets_the_quality_targets() -> None:
    """Guards against a vocabulary or scoring change that silently makes answers worse."""
    kb = KnowledgeBase.build(load_articles().articles)
    result = evaluate(kb, load_devset())
    assert result["recall@3"] >= 0.9, result["misses"]
    assert result["dont_know"] >= 0.8, result["false_answers"]


def test_synthetic_corpus_is_deterministic_and_realistic() -> None:
    base = load_articles().articles
    a = synthetic_corpus(50, seed=1, base=base)
    b = synthetic_corpus(50, seed=1, base=base)
    assert [x.body for x in a] == [x.body for x in b]
    assert len({x.id for x in a}) == 50
    assert {x.language for x in a} == {"en", "de"}
    kb = KnowledgeBase.build(base + a)
    assert len(kb) == len(base) + 50
