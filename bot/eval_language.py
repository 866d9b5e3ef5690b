"""`python -m bot eval language [--json]`: how well typed messages are understood, on the development
set `services/language_devset.yaml` against the demo data (`services/demo.yaml`).

Reports intent accuracy, detail (slot) accuracy, how often it asks back when it should (and when it
should not), and routing latency — offline, and with the model when a key is configured.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from services.language import OwnedSubscription, Product, Understanding, Vocabulary, parse

ROOT = Path(__file__).resolve().parents[1]
DEVSET = ROOT / "services" / "language_devset.yaml"
DEMO = ROOT / "services" / "demo.yaml"
CHECKED_SLOTS = ("subscription", "product", "quantity", "delta", "timing", "date", "term", "billing", "enable", "number")


@dataclass(frozen=True)
class DevUtterance:
    text: str
    customer: str
    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    ask: str | None = None
    locale: str = "en-US"


def load_devset(path: Path = DEVSET) -> tuple[date, list[DevUtterance]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = [
        DevUtterance(u["text"], u["customer"], u["intent"], u.get("slots") or {}, u.get("ask"), u.get("locale", "en-US"))
        for u in raw["utterances"]
    ]
    return date.fromisoformat(str(raw["today"])), items


def demo_vocabularies(path: Path = DEMO) -> dict[str, Vocabulary]:
    """Each demo customer's vocabulary, as the bot builds it from the database (ids numbered in file order)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    products = {p["key"]: p for p in data["products"]}
    catalogs = {c["key"]: c for c in data["catalogs"]}
    result: dict[str, Vocabulary] = {}
    next_id = 1
    for customer in data["customers"]:
        catalog = catalogs.get(customer.get("catalog") or "global") or {"products": "all"}
        keys = list(products) if catalog.get("products") == "all" else list(catalog["products"])
        owned = []
        for sub in customer.get("subscriptions") or []:
            product = products[sub["product"]]
            owned.append(
                OwnedSubscription(
                    id=next_id, name=sub.get("nickname") or product["name"], product_key=product["key"], product_name=product["name"],
                    aliases=tuple(product.get("aliases") or ()), active=sub.get("status", "active") == "active", ref=sub["id"],
                )
            )
            next_id += 1
        catalog_products = tuple(Product(k, products[k]["name"], tuple(products[k].get("aliases") or ())) for k in keys)
        result[customer["key"]] = Vocabulary(tuple(owned), catalog_products)
    return result


def comparable(understanding: Understanding, vocabulary: Vocabulary) -> dict[str, Any]:
    """Slots as the development set writes them: provider ids, lists, the router's default timing."""
    slots = dict(understanding.slots)
    if "subscription" in slots:
        slots["subscription"] = sorted(vocabulary.subscription(i).ref for i in slots["subscription"])
    if "product" in slots:
        slots["product"] = sorted(slots["product"])
    if understanding.intent == "seats.change":
        slots.setdefault("timing", "now")
    return slots


def score(items: list[DevUtterance], answers: list[Understanding], vocabularies: dict[str, Vocabulary]) -> dict[str, Any]:
    intents = slots_right = slots_total = should_ask = asked_right = false_asks = 0
    misses: list[dict[str, Any]] = []
    for item, answer in zip(items, answers):
        vocabulary = vocabularies[item.customer]
        got = comparable(answer, vocabulary)
        intent_ok = answer.intent == item.intent
        intents += intent_ok
        wrong = []
        for name, expected in item.slots.items():
            if name not in CHECKED_SLOTS:
                continue
            slots_total += 1
            value = got.get(name)
            if isinstance(expected, list):
                expected = sorted(expected)
            if value == expected:
                slots_right += 1
            else:
                wrong.append(f"{name}: {value!r} ≠ {expected!r}")
        asks = answer.ask is not None if intent_ok else False
        if item.ask:
            should_ask += 1
            asked_right += asks
        elif asks:
            false_asks += 1
        if not intent_ok or wrong or (bool(item.ask) != asks):
            misses.append({"text": item.text, "expected": item.intent, "got": answer.intent, "slots": wrong, "ask": [item.ask, answer.ask]})
    n = len(items)
    return {
        "utterances": n,
        "intent_accuracy": round(intents / n, 3) if n else None,
        "slot_accuracy": round(slots_right / slots_total, 3) if slots_total else None,
        "slots": slots_total,
        "ask_back_rate": round(asked_right / should_ask, 3) if should_ask else None,
        "should_ask": should_ask,
        "false_ask_rate": round(false_asks / (n - should_ask), 3) if n > should_ask else None,
        "misses": misses,
    }


def _percentiles(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(samples)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))], 3)

    return {"p50": at(0.5), "p95": at(0.95), "max": round(ordered[-1], 3)}


def evaluate_offline(items: list[DevUtterance], today: date, vocabularies: dict[str, Vocabulary]) -> dict[str, Any]:
    for vocabulary in vocabularies.values():
        vocabulary.index  # built once per customer, as the bot's vocabulary is per message
    answers, latencies = [], []
    for item in items:
        start = time.perf_counter()
        answers.append(parse(item.text, customer_vocabulary=vocabularies[item.customer], locale=item.locale, today=today))
        latencies.append((time.perf_counter() - start) * 1000)
    result = score(items, answers, vocabularies)
    result["latency_ms"] = _percentiles(latencies)
    return result


async def evaluate_with_model(router: Any, items: list[DevUtterance], today: date, vocabularies: dict[str, Vocabulary]) -> dict[str, Any]:
    """Every utterance through the model, one at a time; a failure counts the offline answer, as the bot does."""
    from services.language_model import ModelRoutingFailed

    answers, latencies, fallbacks = [], [], {}
    for item in items:
        vocabulary = vocabularies[item.customer]
        start = time.perf_counter()
        try:
            answers.append(await router.understand(item.text, vocabulary=vocabulary, locale=item.locale, today=today))
        except ModelRoutingFailed as failure:
            fallbacks[failure.reason] = fallbacks.get(failure.reason, 0) + 1
            answers.append(parse(item.text, customer_vocabulary=vocabulary, locale=item.locale, today=today))
        latencies.append((time.perf_counter() - start) * 1000)
    result = score(items, answers, vocabularies)
    result["model"] = router.name
    result["fallbacks"] = fallbacks
    result["latency_ms"] = _percentiles(latencies)
    return result


def evaluate_language(router: Any | None = None) -> dict[str, Any]:
    today, items = load_devset()
    vocabularies = demo_vocabularies()
    result: dict[str, Any] = {"offline": evaluate_offline(items, today, vocabularies)}
    if router is not None:
        async def with_model() -> dict[str, Any]:
            try:
                return await evaluate_with_model(router, items, today, vocabularies)
            finally:
                await router.close()

        result["with_model"] = asyncio.run(with_model())
    return result


def format_report(result: dict[str, Any], *, title: str = "offline") -> str:
    lines = [
        f"{title}: {result['utterances']} utterances | intent accuracy {result['intent_accuracy']} | slot accuracy "
        f"{result['slot_accuracy']} ({result['slots']} slots) | asks back {result['ask_back_rate']} of {result['should_ask']} "
        f"that should, false asks {result['false_ask_rate']} | latency p50 {result['latency_ms']['p50']} ms "
        f"p95 {result['latency_ms']['p95']} ms max {result['latency_ms']['max']} ms"
    ]
    if result.get("fallbacks"):
        lines.append("  fallbacks: " + ", ".join(f"{k} {v}" for k, v in sorted(result["fallbacks"].items())))
    for miss in result["misses"][:25]:
        lines.append(f"  miss: {miss['text']!r} → {miss['got']} (expected {miss['expected']}) {'; '.join(miss['slots'])} ask {miss['ask']}")
    return "\n".join(lines)
