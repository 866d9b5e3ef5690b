"""`python -m bot eval knowledge [--json]`: how well the knowledge base answers, offline and — when
a model is configured — with the model, on the development set `knowledge/devset.yaml`.

Offline: `knowledge.evaluate.run_eval` (recall@1, recall@3, correct "I don't know", latency,
per split, and latency over 1,000 articles). With a model: every devset question goes through
`KnowledgeService.ask`, the path the bot takes, one at a time so latency is what one user sees;
recall counts the sources the user is shown (the cited articles, or the offline ones after a
fallback).
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from knowledge import knowledge_dirs
from knowledge.answering import KnowledgeService
from knowledge.evaluate import DevQuestion, format_report, load_devset, run_eval
from services.llm import ChatModel, chat_model


async def evaluate_with_model(service: KnowledgeService, devset: Sequence[DevQuestion]) -> dict:
    """Quality, fallbacks, tokens and latency of the answers as the bot gives them with `service.model`."""
    hits1 = hits3 = dont_know = by_model = asked = 0
    fallbacks: Counter[str] = Counter()
    latencies: list[float] = []
    prompt_tokens: list[int] = []
    completion_tokens: list[int] = []
    answerable = [q for q in devset if q.answers]
    for q in devset:
        answer = await service.ask(q.question, customer_key=q.customer_key, language=q.language)
        latencies.append(answer.total_ms)
        if answer.model is not None:
            asked += 1
            by_model += answer.by_model
            if answer.fallback:
                fallbacks[answer.fallback] += 1
            if answer.prompt_tokens is not None:
                prompt_tokens.append(answer.prompt_tokens)
            if answer.completion_tokens is not None:
                completion_tokens.append(answer.completion_tokens)
        shown = [s.article_id for s in answer.sources] if answer.found else []
        if q.answers:
            hits1 += bool(shown[:1] and shown[0] in q.answers)
            hits3 += any(s in q.answers for s in shown[:3])
        elif not answer.found:
            dont_know += 1
    n_a, n_u = len(answerable), len(devset) - len(answerable)
    return {
        "model": service.model.name if service.model else None,
        "questions": len(devset),
        "recall@1": round(hits1 / n_a, 3) if n_a else None,
        "recall@3": round(hits3 / n_a, 3) if n_a else None,
        "dont_know": round(dont_know / n_u, 3) if n_u else None,
        "model_asked": asked,
        "model_answer_used": round(by_model / asked, 3) if asked else None,
        "fallbacks": dict(fallbacks),
        "latency_ms": _percentiles(latencies),
        "tokens": {
            "prompt_mean": round(sum(prompt_tokens) / len(prompt_tokens)) if prompt_tokens else None,
            "completion_mean": round(sum(completion_tokens) / len(completion_tokens)) if completion_tokens else None,
            "total": sum(prompt_tokens) + sum(completion_tokens),
        },
    }


def _percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(samples)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))], 1)

    return {"p50": at(0.5), "p95": at(0.95), "max": round(ordered[-1], 1)}


def format_model_report(result: dict) -> str:
    fallbacks = ", ".join(f"{reason} {count}" for reason, count in sorted(result["fallbacks"].items())) or "none"
    return (
        f"with model {result['model']}: {result['questions']} questions | recall@1 {result['recall@1']} recall@3 {result['recall@3']} | "
        f"don't know {result['dont_know']} | model asked {result['model_asked']}×, its answer used {result['model_answer_used']} "
        f"(fallbacks: {fallbacks}) | p50 {result['latency_ms']['p50']} ms p95 {result['latency_ms']['p95']} ms | "
        f"tokens per answer: prompt {result['tokens']['prompt_mean']}, completion {result['tokens']['completion_mean']}, "
        f"total {result['tokens']['total']}"
    )


def evaluate_knowledge(dirs: list[Path], model: ChatModel | None) -> dict:
    result = run_eval(dirs)
    if model is not None:
        async def with_model() -> dict:
            service = KnowledgeService.load(dirs, model)
            try:
                return await evaluate_with_model(service, load_devset())
            finally:
                await service.close()

        result["with_model"] = asyncio.run(with_model())
    return result


def cmd_eval(settings, args) -> int:
    if args.what == "language":
        return cmd_eval_language(settings, args)
    dirs = knowledge_dirs(settings.knowledge_dir or None)
    model = None if args.offline else chat_model(settings.llm_config())
    result = evaluate_knowledge(dirs, model)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(format_report(result))
    if "with_model" in result:
        print(format_model_report(result["with_model"]))
    else:
        print("with a model: not measured (no SEATDESK_OPENAI_API_KEY / OPENAI_API_KEY set)" if not args.offline else "with a model: skipped (--offline)")
    return 0


def cmd_eval_language(settings, args) -> int:
    """`eval language`: the typed-message router on services/language_devset.yaml (bot/eval_language.py)."""
    from bot.eval_language import evaluate_language, format_report
    from services.language_model import tool_router

    router = None if args.offline else tool_router(settings.llm_config())
    result = evaluate_language(router)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(format_report(result["offline"]))
    if "with_model" in result:
        print(format_report(result["with_model"], title=f"with model {result['with_model']['model']}"))
    else:
        print("with a model: not measured (no SEATDESK_OPENAI_API_KEY / OPENAI_API_KEY set)" if not args.offline else "with a model: skipped (--offline)")
    return 0


def register(subparsers) -> None:
    """Adds `eval knowledge [--json] [--offline]` to `python -m bot`."""
    p = subparsers.add_parser(
        "eval",
        help="measure the knowledge base (recall, \"I don't know\", latency) or the language router (intent and slot "
        "accuracy, asking back, latency); with the model when a key is set",
    )
    p.add_argument("what", choices=["knowledge", "language"], help="what to measure")
    p.add_argument("--json", action="store_true", help="print JSON instead of a report")
    p.add_argument("--offline", action="store_true", help="measure the offline answers only, even if a model is configured")
    p.set_defaults(run=cmd_eval)
