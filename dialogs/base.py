"""What every flow receives and returns; nothing here knows about botbuilder."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from cards.text import text
from cards.welcome import Person
from services.clock import Clock
from services.db import engine_of
from services.permissions import Permission
from services.tenancy import Identity

if TYPE_CHECKING:
    from dialogs.slow import TurnDeadline
    from knowledge.answering import KnowledgeService


@dataclass(frozen=True)
class IncomingFile:
    """A file the person sent with their message (Teams file upload or a pasted image)."""

    name: str
    content_type: str
    download_url: str
    # Teams file uploads say "file.download.info"; pasted images come as image/* with contentUrl.
    kind: str = "file"


@dataclass(frozen=True)
class Reply:
    """One message to the user: a sentence, a card, or both."""

    text: str | None = None
    card: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What a flow answers. For a card button the first reply's card replaces the clicked card."""

    replies: list[Reply]
    # For a card button: keep the clicked card as it is and post every reply as a new message.
    keep_card: bool = False
    # After a confirmation: the receipt replaces the card for everyone, not only for the clicker.
    update_original: bool = False


class Notifier(Protocol):
    """Sends messages to a person outside the current turn (their stored 1:1 conversation).

    A send may wait on Teams' pacing or a Retry-After: a flow never calls it in its turn, it leaves
    it to `FlowContext.after_turn` (runs once the answer is on its way)."""

    async def send(self, user_id: int, replies: list[Reply]) -> list[str]:
        """Returns the ids of the activities sent; empty when the person cannot be reached."""
        ...

    async def update(self, user_id: int, activity_id: str, reply: Reply) -> bool: ...

    async def reachable(self, user_ids: Iterable[int]) -> set[int]:
        """Who of these people Seatdesk can message (has a stored conversation); no message is sent."""
        ...


class NoNotifier:
    async def send(self, user_id: int, replies: list[Reply]) -> list[str]:
        return []

    async def reachable(self, user_ids: Iterable[int]) -> set[int]:
        return set()

    async def update(self, user_id: int, activity_id: str, reply: Reply) -> bool:
        return False


@dataclass
class FlowContext:
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    identity: Identity
    locale: str | None = None
    page_size: int = 10
    support_contact: str = "your IT administrator"
    notifier: Notifier = field(default_factory=NoNotifier)
    # Who clicked, and which activity holds the clicked card (for updating it for everyone).
    activity_id: str | None = None
    reply_to_id: str | None = None
    files: tuple[IncomingFile, ...] = ()
    # Every change goes through the subscription provider (the built-in ledger by default).
    provider: Any = None
    # A card shown in a group chat or channel is seen by several people with different roles.
    shared: bool = False
    user_mri: str | None = None
    # Per-conversation memory of a flow in progress (botbuilder conversation state, saved after the turn).
    state: dict[str, Any] = field(default_factory=dict)
    # Orders go out through this (the built-in ledger by default).
    order_submitter: Any = None
    # Work to start once the reply is on its way, in this order (notices to other people, provisioning an order).
    after_turn: list[Callable[["FlowContext"], Awaitable[None]]] = field(default_factory=list)
    # Microsoft Graph in the customer's tenant (services.graph.LicencePort); None: not connected.
    graph: Any = None
    # The knowledge base built at start-up (None: not available).
    knowledge: KnowledgeService | None = None
    # Routes typed text with a chat model (services/language_model.py); None: the offline parser only.
    language_model: Any = None
    # Slow work waits at most until this turn's deadline, then finishes in the background (dialogs/slow.py);
    # None: the turn waits for it.
    slow: TurnDeadline | None = None
    # The bot's own token for a file Teams hosts (a pasted image), by URL; None when that URL gets no token.
    file_token: Callable[[str], Awaitable[str | None]] | None = None

    def text(self, key: str, **values: object) -> str:
        return text(self.locale, key, **values)

    def reading(self) -> AsyncConnection:
        """A connection for Core reads (`async with ctx.reading() as conn`): no session, no entities,
        for the hot reads that only build views. Changes go through `db` sessions."""
        return engine_of(self.db).connect()

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


Handler = Callable[[FlowContext, dict[str, Any]], Awaitable[Outcome]]


@dataclass(frozen=True)
class Verb:
    """A card verb (or a phrase's target): its handler, the permission it needs, and whether
    MSP technicians must have chosen a customer first."""

    handler: Handler
    permission: Permission | None = None
    needs_customer: bool = True
