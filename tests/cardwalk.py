"""Reading Adaptive Cards in tests: every node of a card, and its visible text."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every element, action and fact of a card, depth first (a fallback is not what is shown)."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key != "fallback":
                yield from nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from nodes(item)


def card_text(card: Any) -> str:
    """All visible text of a card, flattened (for assertions)."""
    return "\n".join(n[k] for n in nodes(card) for k in ("text", "title", "value") if isinstance(n.get(k), str))
