"""Support cases: the helpdesk port, its built-in database implementation, and the pure rules
(field limits, status transitions, the reopen window, case numbers, idempotent submission).

A reseller's PSA/helpdesk system can be plugged in later by implementing `Helpdesk`; the chat
flows and the helpdesk API only ever talk to that protocol. Every customer-facing method takes a
`Viewer` (customer id from the resolved identity, the user, and whether they see all company
cases) and scopes every query by it: a case of another customer answers like a missing one.
Internal comments are returned only by the staff methods.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import JSON, ForeignKey, Integer, String, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from services.clock import Clock
from services.models import (
    AuditEntry,
    Base,
    CaseAttachment,
    CaseComment,
    CasePriority,
    CaseQuestion,
    CaseStatus,
    Customer,
    Offer,
    Product,
    QuestionKind,
    Subscription,
    SupportCase,
    User,
)

# -- limits ---------------------------------------------------------------------------------
TITLE_MAX = 200
DESCRIPTION_MAX = 4000
COMMENT_MAX = 4000
ANSWER_MAX = 500
AUTHOR_MAX = 200
MAX_ATTACHMENTS_PER_CASE = 10
FORM_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
DATE_RANGE = (date(2000, 1, 1), date(2100, 12, 31))

ACTIVE_STATUSES = (CaseStatus.NEW, CaseStatus.IN_PROGRESS, CaseStatus.WAITING_FOR_CUSTOMER)
DONE_STATUSES = (CaseStatus.RESOLVED, CaseStatus.CLOSED)

# Which status the helpdesk may move a case to from each status. CLOSED is final.
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.NEW: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.WAITING_FOR_CUSTOMER, CaseStatus.RESOLVED, CaseStatus.CLOSED}),
    CaseStatus.IN_PROGRESS: frozenset({CaseStatus.WAITING_FOR_CUSTOMER, CaseStatus.RESOLVED, CaseStatus.CLOSED}),
    CaseStatus.WAITING_FOR_CUSTOMER: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED, CaseStatus.CLOSED}),
    CaseStatus.RESOLVED: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.CLOSED}),
    CaseStatus.CLOSED: frozenset(),
}

DEFAULT_REOPEN_DAYS = 14
DUPLICATE_WINDOW = timedelta(minutes=2)
NUMBER_PREFIX = "CS"
_NUMBER = re.compile(r"^\s*cs\s*-?\s*(\d{4})\s*-?\s*(\d{1,9})\s*$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def is_active(status: CaseStatus) -> bool:
    return status in ACTIVE_STATUSES


def can_transition(current: CaseStatus, new: CaseStatus) -> bool:
    return new in TRANSITIONS[current]


def reopen_deadline(resolved_at: datetime | None, reopen_days: int) -> datetime | None:
    return None if resolved_at is None else resolved_at + timedelta(days=reopen_days)


def can_reopen(status: CaseStatus, resolved_at: datetime | None, now: datetime, reopen_days: int) -> bool:
    """A resolved (not closed) case may be reopened by the customer until the window ends (inclusive)."""
    deadline = reopen_deadline(resolved_at, reopen_days)
    return status == CaseStatus.RESOLVED and deadline is not None and now <= deadline


def format_number(year: int, sequence: int) -> str:
    return f"{NUMBER_PREFIX}-{year:04d}-{sequence:06d}"


def parse_number(raw: object) -> str | None:
    """'cs-2026-123', 'CS 2026 000123' → 'CS-2026-000123'; anything else → None."""
    if not isinstance(raw, str) or len(raw) > 40:
        return None
    match = _NUMBER.match(raw)
    if not match:
        return None
    return format_number(int(match.group(1)), int(match.group(2)))


def new_form_id() -> str:
    return secrets.token_urlsafe(18)


def idempotency_key(customer_id: int, user_id: int, form_id: str) -> str:
    """One case per form instance: the same form submitted twice (double click, Teams retry) maps to one key."""
    return hashlib.sha256(f"case-form:{customer_id}:{user_id}:{form_id}".encode()).hexdigest()


def clean_text(value: object, *, multiline: bool) -> str:
    """Text as the person meant it: control and bidi characters removed, outer whitespace stripped."""
    if not isinstance(value, str):
        return ""
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    value = _CONTROL.sub("", value)
    if not multiline:
        value = " ".join(value.split())
    return value.strip()


# -- policy ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CasePolicy:
    """What the reseller configured (per customer, else globally): the reopen window and its own
    priority definitions (an empty definition falls back to the text catalogue)."""

    reopen_days: int = DEFAULT_REOPEN_DAYS
    priority_definitions: dict[str, str] = field(default_factory=dict)


class HelpdeskPolicy(Base):
    """A reseller's case settings; customer_id None = the default for every customer."""

    __tablename__ = "helpdesk_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), unique=True)
    reopen_days: Mapped[int | None] = mapped_column(Integer)
    priority_definitions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class HelpdeskKey(Base):
    """An API key of the reseller's helpdesk staff; only its SHA-256 is stored."""

    __tablename__ = "helpdesk_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


# -- values ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    key: str
    label: str
    kind: QuestionKind
    required: bool
    choices: tuple[str, ...] = ()

    @property
    def input_id(self) -> str:
        return "q_" + self.key


@dataclass(frozen=True)
class ProductChoice:
    id: int
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseDraft:
    title: str
    description: str
    priority: CasePriority
    product_id: int | None
    answers: dict[str, dict[str, str]]


@dataclass(frozen=True)
class Invalid:
    """Field → (message key, values): what to tell the person next to each field."""

    errors: dict[str, tuple[str, dict[str, object]]]


@dataclass(frozen=True)
class Viewer:
    customer_id: int
    user_id: int
    name: str
    sees_all: bool = False


@dataclass(frozen=True)
class CommentView:
    author: str
    body: str
    at: datetime
    from_customer: bool
    internal: bool = False


@dataclass(frozen=True)
class AttachmentView:
    id: int
    filename: str
    content_type: str
    size: int
    at: datetime


@dataclass(frozen=True)
class CaseView:
    id: int
    number: str
    customer_id: int
    customer_name: str
    owner_id: int
    owner_name: str
    title: str
    description: str
    priority: CasePriority
    status: CaseStatus
    product_name: str | None
    answers: tuple[tuple[str, str, str], ...]  # (label, kind, value)
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    reopen_until: datetime | None
    can_reopen: bool
    comments: tuple[CommentView, ...] = ()
    attachments: tuple[AttachmentView, ...] = ()

    @property
    def is_open(self) -> bool:
        return is_active(self.status)


@dataclass(frozen=True)
class CaseLine:
    number: str
    title: str
    status: CaseStatus
    priority: CasePriority
    updated_at: datetime
    owner_name: str
    customer_name: str = ""


@dataclass(frozen=True)
class CasePage:
    lines: tuple[CaseLine, ...]
    number: int
    count: int
    total: int
    active: bool
    all_company: bool

    @property
    def has_next(self) -> bool:
        return self.number < self.count

    @property
    def has_previous(self) -> bool:
        return self.number > 1


@dataclass(frozen=True)
class Opened:
    case: CaseView
    created: bool


@dataclass(frozen=True)
class StatusChanged:
    case: CaseView
    old: CaseStatus
    new: CaseStatus


class CaseError(Exception):
    """An action the rules refuse; `code` names the sentence to show (cards: case.error.<code>)."""

    def __init__(self, code: str, **values: object) -> None:
        super().__init__(code)
        self.code = code
        self.values = values


# -- validation of the form -----------------------------------------------------------------
def merge_questions(rows: list[CaseQuestion], customer_id: int) -> list[Question]:
    """The reseller's global questions plus this customer's own; a customer question replaces a global one with the same key."""
    chosen: dict[str, CaseQuestion] = {}
    for row in sorted(rows, key=lambda r: (r.customer_id is not None, r.position, r.id)):
        if row.customer_id in (None, customer_id):
            chosen[row.key] = row
    ordered = sorted(chosen.values(), key=lambda r: (r.customer_id is not None, r.position, r.id))
    return [
        Question(key=r.key, label=r.label, kind=r.kind, required=r.required, choices=tuple(str(c) for c in r.choices or ()))
        for r in ordered
    ]


def _answer(question: Question, raw: object) -> tuple[str | None, tuple[str, dict[str, object]] | None]:
    """(normalized value or None when empty, error)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, (("case.error.required", {}) if question.required else None)
    if not isinstance(raw, str):
        return None, ("case.error.invalid_value", {})
    if question.kind == QuestionKind.TEXT:
        value = clean_text(raw, multiline=False)
        if len(value) > ANSWER_MAX:
            return None, ("case.error.too_long", {"limit": ANSWER_MAX})
        if not value:
            return None, (("case.error.required", {}) if question.required else None)
        return value, None
    if question.kind == QuestionKind.CHOICE:
        return (raw, None) if raw in question.choices else (None, ("case.error.invalid_choice", {}))
    if question.kind == QuestionKind.YES_NO:
        return (raw, None) if raw in ("yes", "no") else (None, ("case.error.invalid_choice", {}))
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        return None, ("case.error.invalid_date", {})
    if not DATE_RANGE[0] <= day <= DATE_RANGE[1]:
        return None, ("case.error.invalid_date", {})
    return day.isoformat(), None


def validate_form(data: dict[str, Any], questions: list[Question], products: list[ProductChoice]) -> CaseDraft | Invalid:
    """The server's check of a submitted form: never trusts what the card enforced."""
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    raw_title = data.get("title")
    title = clean_text(raw_title, multiline=False)
    if not title:
        errors["title"] = ("case.error.required", {})
    elif len(title) > TITLE_MAX:
        errors["title"] = ("case.error.too_long", {"limit": TITLE_MAX})
    description = clean_text(data.get("description"), multiline=True)
    if data.get("description") is not None and not isinstance(data.get("description"), str):
        errors["description"] = ("case.error.invalid_value", {})
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = ("case.error.too_long", {"limit": DESCRIPTION_MAX})
    priority_raw = data.get("priority", CasePriority.NORMAL.value)
    try:
        priority = CasePriority(priority_raw) if isinstance(priority_raw, str) else None
    except ValueError:
        priority = None
    if priority is None:
        errors["priority"] = ("case.error.invalid_choice", {})
    product_raw = data.get("product")
    product_id: int | None = None
    if product_raw not in (None, "", "none"):
        known = {str(p.id): p.id for p in products}
        if not isinstance(product_raw, str) or product_raw not in known:
            errors["product"] = ("case.error.invalid_choice", {})
        else:
            product_id = known[product_raw]
    answers: dict[str, dict[str, str]] = {}
    for question in questions:
        value, error = _answer(question, data.get(question.input_id))
        if error:
            errors[question.input_id] = error
        elif value is not None:
            answers[question.key] = {"label": question.label, "kind": question.kind.value, "value": value}
    if errors:
        return Invalid(errors)
    return CaseDraft(title=title, description=description, priority=priority or CasePriority.NORMAL, product_id=product_id, answers=answers)


def validate_comment(raw: object) -> str | CaseError:
    body = clean_text(raw, multiline=True)
    if not body:
        return CaseError("comment_empty")
    if len(body) > COMMENT_MAX:
        return CaseError("comment_too_long", limit=COMMENT_MAX)
    return body


# -- pre-fill from what the person said -----------------------------------------------------
_OPEN_PREFIX = re.compile(
    r"^(?:please\s+)?(?:open|create|raise|log|file|new|start)\s+(?:a\s+|an\s+)?(?:new\s+)?"
    r"(?:support\s+)?(?:case|ticket|incident|support request)(?:\s+(?:about|for|because|regarding))?\s*",
)
_PROBLEM = re.compile(
    r"\b(?:can ?not|can t|cant|cannot|unable to|couldn t|could not|won t|doesn t work|does not work|isn t working|"
    r"is not working|not working|stopped working|broken|crash(?:es|ed|ing)?|error|fails?|failed|failing|"
    r"problem with|issue with|down|keeps? (?:crashing|freezing|asking)|no longer)\b"
)


def looks_like_a_problem(said: str) -> bool:
    """'i can t sign in to outlook' (normalized) reads as a request for help."""
    return bool(_PROBLEM.search(said)) or bool(_OPEN_PREFIX.match(said))


def asks_for_a_case(said: str) -> bool:
    """'open a ticket about …' (normalized): an explicit request, whatever else the sentence is."""
    return bool(_OPEN_PREFIX.match(said))


def summary_from(message: str) -> str:
    """The person's own words as the case title: 'Open a case: Outlook crashes' → 'Outlook crashes'."""
    value = clean_text(message, multiline=False)
    value = re.sub(r"<at>.*?</at>", "", value, flags=re.IGNORECASE).strip()
    lowered = value.lower()
    match = _OPEN_PREFIX.match(re.sub(r"[^\w\s]", " ", lowered))
    if match:
        # Strip as many words from the original as the prefix had.
        words = len(match.group(0).split())
        value = " ".join(value.split()[words:]).lstrip(":-–— ").strip()
    if value:
        value = value[0].upper() + value[1:]
    return value[:TITLE_MAX]


def product_mentioned(message: str, products: list[ProductChoice]) -> ProductChoice | None:
    """The one product of theirs named in the message (by name or alias); None when none or several."""
    lowered = " " + re.sub(r"[^\w+]+", " ", message.lower()) + " "
    found: dict[int, tuple[int, ProductChoice]] = {}
    for product in products:
        for name in (product.name, *product.aliases):
            needle = " " + re.sub(r"[^\w+]+", " ", name.lower()).strip() + " "
            if len(needle.strip()) >= 3 and needle in lowered:
                best = found.get(product.id, (0, product))[0]
                found[product.id] = (max(best, len(needle)), product)
    if not found:
        return None
    ranked = sorted(found.values(), key=lambda item: -item[0])
    if len(ranked) > 1 and ranked[0][0] == ranked[1][0]:
        return None
    return ranked[0][1]


# -- the port -------------------------------------------------------------------------------
class Helpdesk(Protocol):
    """Where cases live. The built-in one is `DatabaseHelpdesk`; a PSA connector implements the same."""

    async def questions(self, customer_id: int) -> list[Question]: ...
    async def policy(self, customer_id: int) -> CasePolicy: ...
    async def products(self, customer_id: int) -> list[ProductChoice]: ...
    async def open_case(self, viewer: Viewer, draft: CaseDraft, key: str) -> Opened: ...
    async def find_submission(self, viewer: Viewer, key: str) -> CaseView | None: ...
    async def list_cases(self, viewer: Viewer, *, all_company: bool, active: bool, page: int, page_size: int) -> CasePage: ...
    async def get_case(self, viewer: Viewer, number: str) -> CaseView | None: ...
    async def add_comment(self, viewer: Viewer, number: str, body: str) -> CaseView: ...
    async def resolve(self, viewer: Viewer, number: str) -> CaseView: ...
    async def reopen(self, viewer: Viewer, number: str) -> CaseView: ...
    async def attach(self, viewer: Viewer, number: str, filename: str, content_type: str, data: bytes) -> AttachmentView: ...
    # the reseller's staff
    async def staff_list(self, *, customer_key: str | None, statuses: tuple[CaseStatus, ...], page: int, page_size: int) -> CasePage: ...
    async def staff_get(self, number: str) -> CaseView | None: ...
    async def set_status(self, number: str, status: CaseStatus, actor: str) -> StatusChanged: ...
    async def staff_comment(self, number: str, body: str, *, internal: bool, author: str) -> CaseView: ...
    async def attachment(self, number: str, attachment_id: int) -> tuple[AttachmentView, bytes] | None: ...


class DatabaseHelpdesk:
    """The built-in helpdesk: cases in Seatdesk's own database."""

    def __init__(self, db: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # -- configuration --
    async def questions(self, customer_id: int) -> list[Question]:
        async with self._db() as session:
            rows = (
                await session.execute(
                    select(CaseQuestion).where(or_(CaseQuestion.customer_id.is_(None), CaseQuestion.customer_id == customer_id))
                )
            ).scalars().all()
        return merge_questions(list(rows), customer_id)

    async def policy(self, customer_id: int | None) -> CasePolicy:
        async with self._db() as session:
            return await _policy(session, customer_id)

    async def products(self, customer_id: int) -> list[ProductChoice]:
        """The products this customer has subscriptions of (the only ones a case may name)."""
        async with self._db() as session:
            rows = (
                await session.execute(
                    select(Product)
                    .where(
                        Product.id.in_(
                            select(Offer.product_id).join(Subscription, Subscription.offer_id == Offer.id).where(Subscription.customer_id == customer_id)
                        )
                    )
                    .order_by(Product.name)
                )
            ).scalars().all()
        return [ProductChoice(id=p.id, name=p.name, aliases=tuple(str(a) for a in p.aliases or ())) for p in rows]

    # -- customers --
    async def open_case(self, viewer: Viewer, draft: CaseDraft, key: str) -> Opened:
        existing = await self.find_submission(viewer, key)
        if existing is not None:
            return Opened(existing, created=False)
        if draft.product_id is not None and draft.product_id not in {p.id for p in await self.products(viewer.customer_id)}:
            raise CaseError("not_found")
        now = self._clock.now()
        for _attempt in range(5):
            try:
                async with self._db() as session, session.begin():
                    number = await _next_number(session, now.year)
                    row = SupportCase(
                        customer_id=viewer.customer_id,
                        number=number,
                        owner_id=viewer.user_id,
                        title=draft.title,
                        description=draft.description,
                        priority=draft.priority,
                        status=CaseStatus.NEW,
                        product_id=draft.product_id,
                        answers=draft.answers,
                        idempotency_key=key,
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(row)
                    await session.flush()
                    session.add(_audit(viewer.customer_id, viewer.user_id, viewer.name, now, "case.open", number, None, {"status": "new"}, "chat"))
            except IntegrityError:
                again = await self.find_submission(viewer, key)
                if again is not None:
                    return Opened(again, created=False)
                continue  # another case took the number first: take the next one
            found = await self.get_case(viewer, number)
            assert found is not None
            return Opened(found, created=True)
        raise RuntimeError("could not allocate a case number")

    async def find_submission(self, viewer: Viewer, key: str) -> CaseView | None:
        async with self._db() as session:
            row = (
                await session.execute(
                    select(SupportCase).where(
                        SupportCase.idempotency_key == key,
                        SupportCase.customer_id == viewer.customer_id,
                        SupportCase.owner_id == viewer.user_id,
                    )
                )
            ).scalar_one_or_none()
            return None if row is None else await _view(session, row, self._clock.now(), internal=False)

    async def list_cases(self, viewer: Viewer, *, all_company: bool, active: bool, page: int, page_size: int) -> CasePage:
        all_company = all_company and viewer.sees_all
        conditions = [SupportCase.customer_id == viewer.customer_id]
        if not all_company:
            conditions.append(SupportCase.owner_id == viewer.user_id)
        conditions.append(SupportCase.status.in_(ACTIVE_STATUSES if active else DONE_STATUSES))
        async with self._db() as session:
            page_ = await _page(session, conditions, page, page_size)
        return CasePage(page_[0], page_[1], page_[2], page_[3], active=active, all_company=all_company)

    async def get_case(self, viewer: Viewer, number: str) -> CaseView | None:
        async with self._db() as session:
            row = await _scoped(session, viewer, number)
            return None if row is None else await _view(session, row, self._clock.now(), internal=False)

    async def add_comment(self, viewer: Viewer, number: str, body: str) -> CaseView:
        now = self._clock.now()
        async with self._db() as session, session.begin():
            row = await _scoped(session, viewer, number)
            if row is None:
                raise CaseError("not_found")
            if not is_active(row.status):
                raise CaseError("not_open")
            last = (
                await session.execute(
                    select(CaseComment).where(CaseComment.case_id == row.id).order_by(CaseComment.id.desc()).limit(1)
                )
            ).scalar_one_or_none()
            if last is not None and last.author_user_id == viewer.user_id and last.body == body and now - last.created_at < DUPLICATE_WINDOW:
                return await self._get(viewer, number)  # the same comment sent twice (double click, Teams retry)
            session.add(CaseComment(case_id=row.id, author_user_id=viewer.user_id, author_name=viewer.name[:AUTHOR_MAX], body=body, is_internal=False, created_at=now))
            if row.status == CaseStatus.WAITING_FOR_CUSTOMER:
                row.status = CaseStatus.IN_PROGRESS  # the helpdesk was waiting for exactly this
            row.updated_at = now
        return await self._get(viewer, number)

    async def resolve(self, viewer: Viewer, number: str) -> CaseView:
        now = self._clock.now()
        async with self._db() as session, session.begin():
            row = await _scoped(session, viewer, number)
            if row is None:
                raise CaseError("not_found")
            if not is_active(row.status):
                raise CaseError("not_open")
            old = row.status
            row.status, row.resolved_at, row.updated_at = CaseStatus.RESOLVED, now, now
            session.add(_audit(row.customer_id, viewer.user_id, viewer.name, now, "case.status", number, {"status": old.value}, {"status": "resolved"}, "chat"))
        return await self._get(viewer, number)

    async def reopen(self, viewer: Viewer, number: str) -> CaseView:
        now = self._clock.now()
        async with self._db() as session, session.begin():
            row = await _scoped(session, viewer, number)
            if row is None:
                raise CaseError("not_found")
            policy = await _policy(session, row.customer_id)
            if is_active(row.status):
                raise CaseError("already_open")
            if not can_reopen(row.status, row.resolved_at, now, policy.reopen_days):
                raise CaseError("reopen_expired", days=policy.reopen_days)
            old = row.status
            row.status, row.resolved_at, row.updated_at = CaseStatus.IN_PROGRESS, None, now
            session.add(_audit(row.customer_id, viewer.user_id, viewer.name, now, "case.status", number, {"status": old.value}, {"status": "in_progress"}, "chat", reason="reopened"))
        return await self._get(viewer, number)

    async def attach(self, viewer: Viewer, number: str, filename: str, content_type: str, data: bytes) -> AttachmentView:
        now = self._clock.now()
        async with self._db() as session, session.begin():
            row = await _scoped(session, viewer, number)
            if row is None:
                raise CaseError("not_found")
            count = (await session.execute(select(func.count(CaseAttachment.id)).where(CaseAttachment.case_id == row.id))).scalar_one()
            if count >= MAX_ATTACHMENTS_PER_CASE:
                raise CaseError("too_many_files", limit=MAX_ATTACHMENTS_PER_CASE)
            stored = CaseAttachment(case_id=row.id, filename=filename[:255], content_type=content_type[:100], size=len(data), data=data, created_at=now)
            session.add(stored)
            row.updated_at = now
            await session.flush()
            return AttachmentView(stored.id, stored.filename, stored.content_type, stored.size, now)

    async def _get(self, viewer: Viewer, number: str) -> CaseView:
        found = await self.get_case(viewer, number)
        if found is None:
            raise CaseError("not_found")
        return found

    # -- the reseller's staff --
    async def staff_list(self, *, customer_key: str | None, statuses: tuple[CaseStatus, ...], page: int, page_size: int) -> CasePage:
        conditions: list[Any] = [SupportCase.status.in_(statuses or tuple(CaseStatus))]
        async with self._db() as session:
            if customer_key is not None:
                customer = (await session.execute(select(Customer).where(Customer.key == customer_key))).scalar_one_or_none()
                if customer is None:
                    raise CaseError("unknown_customer")
                conditions.append(SupportCase.customer_id == customer.id)
            lines, number, count, total = await _page(session, conditions, page, page_size)
        return CasePage(lines, number, count, total, active=set(statuses) <= set(ACTIVE_STATUSES), all_company=True)

    async def staff_get(self, number: str) -> CaseView | None:
        async with self._db() as session:
            row = (await session.execute(select(SupportCase).where(SupportCase.number == number))).scalar_one_or_none()
            return None if row is None else await _view(session, row, self._clock.now(), internal=True)

    async def set_status(self, number: str, status: CaseStatus, actor: str) -> StatusChanged:
        now = self._clock.now()
        async with self._db() as session, session.begin():
            row = (await session.execute(select(SupportCase).where(SupportCase.number == number))).scalar_one_or_none()
            if row is None:
                raise CaseError("not_found")
            old = row.status
            if old == status:
                raise CaseError("same_status")
            if not can_transition(old, status):
                raise CaseError("bad_transition", old=old.value, new=status.value)
            row.status, row.updated_at = status, now
            row.resolved_at = now if status in DONE_STATUSES else None  # a closed case can't be reopened at all
            session.add(_audit(row.customer_id, None, actor, now, "case.status", number, {"status": old.value}, {"status": status.value}, "helpdesk"))
        view = await self.staff_get(number)
        assert view is not None
        return StatusChanged(view, old, status)

    async def staff_comment(self, number: str, body: str, *, internal: bool, author: str) -> CaseView:
        now = self._clock.now()
        async with self._db() as session, session.begin():
            row = (await session.execute(select(SupportCase).where(SupportCase.number == number))).scalar_one_or_none()
            if row is None:
                raise CaseError("not_found")
            session.add(CaseComment(case_id=row.id, author_user_id=None, author_name=author[:AUTHOR_MAX], body=body, is_internal=internal, created_at=now))
            if not internal:
                row.updated_at = now
        view = await self.staff_get(number)
        assert view is not None
        return view

    async def attachment(self, number: str, attachment_id: int) -> tuple[AttachmentView, bytes] | None:
        async with self._db() as session:
            row = (
                await session.execute(
                    select(CaseAttachment)
                    .join(SupportCase, SupportCase.id == CaseAttachment.case_id)
                    .where(SupportCase.number == number, CaseAttachment.id == attachment_id)
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            return AttachmentView(row.id, row.filename, row.content_type, row.size, row.created_at), bytes(row.data)


# -- queries --------------------------------------------------------------------------------
async def _policy(session: AsyncSession, customer_id: int | None) -> CasePolicy:
    rows = (
        await session.execute(
            select(HelpdeskPolicy).where(or_(HelpdeskPolicy.customer_id.is_(None), HelpdeskPolicy.customer_id == customer_id))
        )
    ).scalars().all()
    reopen_days = DEFAULT_REOPEN_DAYS
    definitions: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r.customer_id is not None):  # the customer's own settings win
        if row.reopen_days is not None:
            reopen_days = row.reopen_days
        definitions.update({k: str(v) for k, v in (row.priority_definitions or {}).items() if v})
    return CasePolicy(reopen_days=reopen_days, priority_definitions=definitions)


async def set_policy(
    session: AsyncSession, customer_id: int | None, *, reopen_days: int | None, definitions: dict[str, str] | None, now: datetime
) -> None:
    row = (
        await session.execute(
            select(HelpdeskPolicy).where(
                HelpdeskPolicy.customer_id.is_(None) if customer_id is None else HelpdeskPolicy.customer_id == customer_id
            )
        )
    ).scalar_one_or_none()
    if row is None:
        row = HelpdeskPolicy(customer_id=customer_id, updated_at=now)
        session.add(row)
    if reopen_days is not None:
        row.reopen_days = reopen_days
    if definitions:
        row.priority_definitions = {**(row.priority_definitions or {}), **definitions}
    row.updated_at = now


async def _next_number(session: AsyncSession, year: int) -> str:
    prefix = f"{NUMBER_PREFIX}-{year:04d}-"
    last = (
        await session.execute(
            select(SupportCase.number)
            .where(SupportCase.number.like(prefix + "%"))
            .order_by(func.length(SupportCase.number).desc(), SupportCase.number.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    sequence = int(last[len(prefix):]) + 1 if last else 1
    return format_number(year, sequence)


async def _scoped(session: AsyncSession, viewer: Viewer, number: str) -> SupportCase | None:
    conditions = [SupportCase.customer_id == viewer.customer_id, SupportCase.number == number]
    if not viewer.sees_all:
        conditions.append(SupportCase.owner_id == viewer.user_id)
    return (await session.execute(select(SupportCase).where(*conditions))).scalar_one_or_none()


async def _page(session: AsyncSession, conditions: list[Any], page: int, page_size: int) -> tuple[tuple[CaseLine, ...], int, int, int]:
    total = (await session.execute(select(func.count(SupportCase.id)).where(*conditions))).scalar_one()
    count = max(1, -(-total // page_size))
    page = min(max(1, page), count)
    rows = (
        await session.execute(
            select(SupportCase, User.name, Customer.name)
            .join(User, User.id == SupportCase.owner_id)
            .join(Customer, Customer.id == SupportCase.customer_id)
            .where(*conditions)
            .order_by(SupportCase.updated_at.desc(), SupportCase.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    ).all()
    lines = tuple(
        CaseLine(number=c.number, title=c.title, status=c.status, priority=c.priority, updated_at=c.updated_at, owner_name=owner, customer_name=customer)
        for c, owner, customer in rows
    )
    return lines, page, count, int(total)


async def _view(session: AsyncSession, row: SupportCase, now: datetime, *, internal: bool) -> CaseView:
    owner = await session.get(User, row.owner_id)
    customer = await session.get(Customer, row.customer_id)
    product = await session.get(Product, row.product_id) if row.product_id else None
    policy = await _policy(session, row.customer_id)
    comment_filter = [CaseComment.case_id == row.id]
    if not internal:
        comment_filter.append(CaseComment.is_internal.is_(False))  # internal comments never reach customers
    comments = (await session.execute(select(CaseComment).where(*comment_filter).order_by(CaseComment.created_at, CaseComment.id))).scalars().all()
    attachments = (
        await session.execute(
            select(CaseAttachment.id, CaseAttachment.filename, CaseAttachment.content_type, CaseAttachment.size, CaseAttachment.created_at)
            .where(CaseAttachment.case_id == row.id)
            .order_by(CaseAttachment.id)
        )
    ).all()
    answers = tuple(
        (str(a.get("label", key)), str(a.get("kind", "text")), str(a.get("value", "")))
        for key, a in (row.answers or {}).items()
        if isinstance(a, dict)
    )
    return CaseView(
        id=row.id,
        number=row.number,
        customer_id=row.customer_id,
        customer_name=customer.name if customer else "",
        owner_id=row.owner_id,
        owner_name=owner.name if owner else "",
        title=row.title,
        description=row.description,
        priority=row.priority,
        status=row.status,
        product_name=product.name if product else None,
        answers=answers,
        created_at=row.created_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
        reopen_until=reopen_deadline(row.resolved_at, policy.reopen_days) if row.status == CaseStatus.RESOLVED else None,
        can_reopen=can_reopen(row.status, row.resolved_at, now, policy.reopen_days),
        comments=tuple(
            CommentView(author=c.author_name, body=c.body, at=c.created_at, from_customer=c.author_user_id is not None, internal=c.is_internal)
            for c in comments
        ),
        attachments=tuple(AttachmentView(*a) for a in attachments),
    )


def _audit(customer_id, user_id, actor, at, action, number, before, after, source, reason=None) -> AuditEntry:
    return AuditEntry(
        customer_id=customer_id,
        user_id=user_id,
        actor=actor[:200],
        at=at,
        action=action,
        target_type="case",
        target_id=number,
        before=before,
        after=after,
        source=source,
        reason=reason,
        reference=number,
    )


# -- API keys -------------------------------------------------------------------------------
KEY_PREFIX = "sdk_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def create_key(session: AsyncSession, name: str, now: datetime) -> str:
    """A new random key for `name`; only its hash is stored, so it is shown once."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(HelpdeskKey(name=name, key_hash=hash_key(raw), prefix=raw[:10], created_at=now))
    await session.flush()
    return raw


async def check_key(session: AsyncSession, raw: str | None, now: datetime) -> HelpdeskKey | None:
    # The key is 256 random bits, so a lookup by its SHA-256 leaks nothing useful through timing.
    if not raw or len(raw) > 200:
        return None
    row = (await session.execute(select(HelpdeskKey).where(HelpdeskKey.key_hash == hash_key(raw)))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    row.last_used_at = now
    return row
