"""What every flow receives and returns; nothing here knows about botbuilder."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cards.text import text
from cards.welcome import Person
from services.clock import Clock
from services.tenancy import Identity


@dataclass(frozen=True)
class Reply:
    """One message to the user: a sentence, a card, or both."""

    text: str | None = None
    card: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What a flow answers. For a card button the first reply's card replaces the clicked card."""

    replies: list[Reply]


@dataclass
class FlowContext:
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    identity: Identity
    locale: str | None = None
    page_size: int = 10
    support_contact: str = "your IT administrator"
    extras: dict[str, Any] = field(default_factory=dict)

    def text(self, key: str, **values: object) -> str:
        return text(self.locale, key, **values)

    @property
    def person(self) -> Person:
        ident = self.identity
        return Person(
            name=ident.name,
            company=ident.home_customer_name,
            role=ident.role,
            is_partner_staff=ident.is_partner_staff,
            acting_for=ident.customer_name if ident.is_partner_staff else None,
            locale=self.locale,
        )


class BadActionData(ValueError):
    """A card button sent data that Seatdesk did not put there (or that no longer fits)."""


def int_field(data: dict[str, Any], name: str, *, default: int | None = None, low: int = 1, high: int = 10**9) -> int:
    raw = data.get(name, default)
    if isinstance(raw, bool) or raw is None:
        raise BadActionData(name)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadActionData(name) from None
    if not low <= value <= high:
        raise BadActionData(name)
    return value
