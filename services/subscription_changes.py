"""Carrying out subscription changes: re-check, apply through the provider, record, exactly once.

A confirmation card carries a reference to what was shown (subscription id, its version) and
a fresh operation id. Confirming checks everything again against the database, and the
operation id makes a double click or a retried activity find the first receipt instead of
changing anything twice.

A change that takes effect at the provider now (seats now, auto-renew, cancel) is recorded as a
pending Operation, with what was asked, before the provider is called (services/operations.py).
If the process dies before the provider's answer is recorded, the same card clicked again, or the
worker after the grace period, asks the provider how things stand and finishes it with the
person's receipt; meanwhile the Partner Center sync leaves that subscription alone, so the change
is never taken for one made outside Seatdesk.
"""
from __future__ import annotations

import enum
import logging
import secrets
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from services import audit, changes, commerce, notices, operations
from services.changes import Decision, Planned, Refusal, SubscriptionState, Timing
from services.models import (
    ChangeKind,
    ChangeStatus,
    ChangeTiming,
    Operation,
    ScheduledChange,
    Subscription,
    User,
)
from services.providers import ProviderError, SubscriptionProvider

log = logging.getLogger("seatdesk.changes")

ATTEMPTS = 4


class Kind(str, enum.Enum):
    SEATS = "seats"
    AUTO_RENEW = "auto_renew"
    CANCEL = "cancel"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class ChangeRequest:
    """What a confirmation card asks for; everything in it is re-checked on confirmation."""

    kind: Kind
    subscription_id: int
    version: int
    op: str
    quantity: int | None = None
    timing: Timing = Timing.NOW
    on: date | None = None
    enable: bool | None = None
    reason: str | None = None
    note: str | None = None
    change_id: int | None = None


@dataclass(frozen=True)
class Receipt:
    reference: str
    kind: str
    subscription_id: int
    subscription_name: str
    actor: str
    at: datetime
    summary: str
    old_quantity: int | None = None
    new_quantity: int | None = None
    timing: str = Timing.NOW.value
    effective: date | None = None
    deleted_scheduled: tuple[Planned, ...] = ()

    def to_json(self) -> dict:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["effective"] = self.effective.isoformat() if self.effective else None
        data["deleted_scheduled"] = [[p.quantity, p.effective.isoformat()] for p in self.deleted_scheduled]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Receipt":
        return cls(
            **{
                **data,
                "at": datetime.fromisoformat(data["at"]),
                "effective": date.fromisoformat(data["effective"]) if data.get("effective") else None,
                "deleted_scheduled": tuple(Planned(q, date.fromisoformat(d)) for q, d in data.get("deleted_scheduled") or ()),
            }
        )


@dataclass(frozen=True)
class Refused:
    decision: Decision
    subscription_name: str


@dataclass(frozen=True)
class Stale:
    """The subscription changed since the card was made; `what` names the differences."""

    what: dict
    subscription_id: int


@dataclass(frozen=True)
class NotFound:
    pass


@dataclass(frozen=True)
class ProviderFailed:
    message: str
    subscription_name: str = ""
    # Sent without an answer: it stays pending and is finished later (not a refusal).
    unconfirmed: bool = False


@dataclass(frozen=True)
class InProgress:
    """Being carried out elsewhere: this very confirmation (another turn or instance has it), or,
    with `other`, another change of the same subscription."""

    subscription_name: str = ""
    other: bool = False


Result = Receipt | Refused | Stale | NotFound | ProviderFailed | InProgress

# The kinds that take effect at the provider at once, recorded as pending before it is asked.
IN_FLIGHT_KINDS = (Kind.SEATS.value, Kind.AUTO_RENEW.value, Kind.CANCEL.value)


def _asks_provider_now(request: ChangeRequest) -> bool:
    return request.kind in (Kind.AUTO_RENEW, Kind.CANCEL) or (request.kind == Kind.SEATS and request.timing == Timing.NOW)


@dataclass(frozen=True)
class _Intent:
    """A confirmed change as recorded before the provider is asked: enough to finish it after a crash
    without deciding again (the rules were applied at the moment of the confirmation)."""

    request: ChangeRequest
    at: datetime
    actor: audit.Actor
    source: str
    effective: date | None
    deletes_scheduled: tuple[Planned, ...]

    @property
    def decision(self) -> Decision:
        return Decision(effective=self.effective, deletes_scheduled=self.deletes_scheduled)

    def to_json(self) -> dict:
        r = self.request
        return {
            "request": {
                "kind": r.kind.value, "subscription_id": r.subscription_id, "version": r.version, "quantity": r.quantity,
                "timing": r.timing.value, "enable": r.enable, "reason": r.reason, "note": r.note,
            },
            "at": self.at.isoformat(),
            "actor": {"name": self.actor.name, "user_id": self.actor.user_id, "customer_id": self.actor.customer_id},
            "source": self.source,
            "effective": self.effective.isoformat() if self.effective else None,
            "deletes_scheduled": [[p.quantity, p.effective.isoformat()] for p in self.deletes_scheduled],
        }

    @classmethod
    def from_json(cls, op: str, data: dict) -> "_Intent":
        r = data["request"]
        request = ChangeRequest(
            Kind(r["kind"]), int(r["subscription_id"]), int(r["version"]), op, quantity=r.get("quantity"), timing=Timing(r["timing"]),
            enable=r.get("enable"), reason=r.get("reason"), note=r.get("note"),
        )
        return cls(
            request=request,
            at=datetime.fromisoformat(data["at"]),
            actor=audit.Actor(**data["actor"]),
            source=data["source"],
            effective=date.fromisoformat(data["effective"]) if data.get("effective") else None,
            deletes_scheduled=tuple(Planned(q, date.fromisoformat(d)) for q, d in data.get("deletes_scheduled") or ()),
        )


async def in_flight(session: AsyncSession, customer_id: int) -> set[int]:
    """The customer's subscriptions with a change recorded but not yet finished (its provider call is
    running, or was cut off by a crash)."""
    rows = await session.execute(
        select(Operation.result).where(Operation.customer_id == customer_id, Operation.status == operations.PENDING, Operation.kind.in_(IN_FLIGHT_KINDS))
    )
    return {int(result["intent"]["request"]["subscription_id"]) for result in rows.scalars()}


def new_op() -> str:
    return secrets.token_urlsafe(12)


def _reference(prefix: str = "CHG") -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return prefix + "-" + "".join(secrets.choice(alphabet) for _ in range(8))


async def _subscription(session: AsyncSession, customer_id: int, subscription_id: int) -> Subscription | None:
    return (
        await session.execute(select(Subscription).where(Subscription.customer_id == customer_id, Subscription.id == subscription_id))
    ).scalar_one_or_none()


async def _pending(session: AsyncSession, sub: Subscription) -> list[ScheduledChange]:
    return list(
        (
            await session.execute(
                select(ScheduledChange)
                .where(
                    ScheduledChange.customer_id == sub.customer_id,
                    ScheduledChange.subscription_id == sub.id,
                    ScheduledChange.status == ChangeStatus.PENDING,
                )
                .order_by(ScheduledChange.id)
            )
        ).scalars()
    )


def planned(change: ScheduledChange, renewal: date) -> Planned:
    when = change.effective_date if change.timing == ChangeTiming.ON_DATE and change.effective_date else renewal
    return Planned(change.new_quantity, when)


async def state_of(session: AsyncSession, sub: Subscription) -> SubscriptionState:
    renewal = commerce.renewal_date(sub.commitment_end)
    at_renewal = [c for c in await _pending(session, sub) if c.timing == ChangeTiming.AT_RENEWAL]
    offer = sub.offer
    return SubscriptionState(
        quantity=sub.quantity,
        status=sub.status,
        is_trial=sub.is_trial,
        auto_renew=sub.auto_renew,
        term_start=sub.term_start,
        commitment_end=sub.commitment_end,
        window_hours=offer.cancellation_window_hours,
        min_quantity=offer.min_quantity,
        max_quantity=offer.max_quantity,
        unit_price_monthly=offer.unit_price_monthly,
        assigned_seats=sub.assigned_seats,
        allowed_until=sub.cancellation_allowed_until,
        seat_add_window_until=sub.seat_add_window_until,
        quantity_before_add=sub.quantity_before_add,
        scheduled=tuple(planned(c, renewal) for c in at_renewal),
    )


async def load(db: async_sessionmaker[AsyncSession], customer_id: int, subscription_id: int) -> tuple[Subscription, SubscriptionState] | None:
    async with db() as session:
        sub = await _subscription(session, customer_id, subscription_id)
        if sub is None:
            return None
        return sub, await state_of(session, sub)


def decide(request: ChangeRequest, state: SubscriptionState, now: datetime) -> Decision:
    if request.kind == Kind.SEATS:
        return changes.decide_seat_change(state, request.quantity or 0, request.timing, now, request.on)
    if request.kind == Kind.AUTO_RENEW:
        return changes.decide_auto_renew(state, bool(request.enable))
    if request.kind == Kind.CANCEL:
        return changes.decide_cancel(state, now)
    return Decision()


async def confirm(
    db: async_sessionmaker[AsyncSession],
    provider: SubscriptionProvider,
    *,
    now: datetime,
    actor: audit.Actor,
    customer_id: int,
    request: ChangeRequest,
    source: str = "card",
) -> Result:
    """Apply a confirmed change once. Retried when a concurrent writer got there first, so a
    double click ends with the first click's receipt."""
    for attempt in range(ATTEMPTS):
        try:
            return await _confirm_once(db, provider, now=now, actor=actor, customer_id=customer_id, request=request, source=source)
        except (IntegrityError, StaleDataError, OperationalError, operations.Raced) as error:
            log.info("confirm %s raced with another writer (%s); re-checking", request.op, type(error).__name__)
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _operation(session: AsyncSession, op: str) -> Operation | None:
    return (await session.execute(select(Operation).where(Operation.key == op))).scalar_one_or_none()


def _ours(found: Operation, customer_id: int) -> bool:
    return found.customer_id == customer_id and found.kind in {k.value for k in Kind}


async def _existing(session: AsyncSession, customer_id: int, op: str) -> Result | None:
    found = await _operation(session, op)
    if found is None:
        return None
    if not _ours(found, customer_id):
        return NotFound()
    if found.status == operations.PENDING:
        raise operations.Raced(op)  # a concurrent click recorded it meanwhile: start over, and carry it out
    return Receipt.from_json(found.result)


async def _confirm_once(db, provider, *, now, actor, customer_id, request, source) -> Result:
    async with db() as session:
        found = await _operation(session, request.op)
    if found is not None:
        if not _ours(found, customer_id):
            return NotFound()
        if found.status != operations.PENDING:
            return Receipt.from_json(found.result)
        # Recorded but not finished where it began (cut off by a crash, or still running elsewhere):
        # the provider is asked how things stand first, so it is applied once.
        return await _carry_out(db, provider, request.op, now)
    if _asks_provider_now(request):
        checked = await _record_intent(db, now=now, actor=actor, customer_id=customer_id, request=request, source=source)
        if checked is not None:
            return checked
        return await _carry_out(db, provider, request.op, now)
    try:
        return await _confirm_in_transaction(db, provider, now=now, actor=actor, customer_id=customer_id, request=request, source=source)
    except ProviderError as error:
        # Nothing was written (the transaction rolled back); the refusal itself is recorded.
        log.warning("provider refused %s on subscription %s: %s", request.kind.value, request.subscription_id, error.code)
        async with db() as session, session.begin():
            audit.record(
                session, at=now, actor=actor, customer_id=customer_id, action=request.kind.value, target_type="subscription",
                target_id=request.subscription_id, summary="Refused by the provider", source=source, outcome="refused", reason=error.code,
            )
        return ProviderFailed(error.message)


@dataclass(frozen=True)
class _Allowed:
    sub: Subscription
    state: SubscriptionState
    decision: Decision


async def _checked(session: AsyncSession, *, now, actor, customer_id, request, source) -> Result | _Allowed:
    """A confirmation checked again, in the transaction that records it: the operation id, the
    subscription and its version, a change of it still in flight, and the rules."""
    done = await _existing(session, customer_id, request.op)
    if done is not None:
        return done
    sub = await _subscription(session, customer_id, request.subscription_id)
    if sub is None:
        return NotFound()
    if sub.version != request.version:
        # A concurrent click of this very card may have committed between our two reads.
        done = await _existing(session, customer_id, request.op)
        if done is not None:
            return done
        return Stale(_facts(sub), sub.id)
    if sub.id in await in_flight(session, customer_id):
        return InProgress(sub.display_name, other=True)
    state = await state_of(session, sub)
    decision = decide(request, state, now)
    if not decision.allowed:
        audit.record(
            session, at=now, actor=actor, customer_id=customer_id, action=request.kind.value, target_type="subscription",
            target_id=sub.id, summary=f"Refused: {decision.refusal.value}", source=source, outcome="refused", reason=decision.refusal.value,
        )
        return Refused(decision, sub.display_name)
    return _Allowed(sub, state, decision)


def _facts(sub: Subscription) -> dict:
    return {"quantity": sub.quantity, "auto_renew": sub.auto_renew, "status": sub.status.value}


async def _confirm_in_transaction(db, provider, *, now, actor, customer_id, request, source) -> Result:
    async with db() as session, session.begin():
        checked = await _checked(session, now=now, actor=actor, customer_id=customer_id, request=request, source=source)
        if not isinstance(checked, _Allowed):
            return checked
        sub, state, decision = checked.sub, checked.state, checked.decision
        if request.kind == Kind.WITHDRAW:
            return await _withdraw(session, provider, sub, state, now=now, actor=actor, request=request, source=source)
        reference = _reference()
        before = _facts(sub)
        receipt = await _apply(session, provider, sub, state, decision, now=now, actor=actor, request=request, reference=reference)
        audit.record(
            session, at=now, actor=actor, customer_id=customer_id, action=request.kind.value, target_type="subscription", target_id=sub.id,
            summary=receipt.summary, source=source, before=before, after=_facts(sub), reference=reference,
        )
        session.add(
            Operation(
                key=request.op, customer_id=customer_id, user_id=actor.user_id, kind=request.kind.value, reference=reference,
                status=operations.DONE, result=receipt.to_json(), created_at=now,
            )
        )
        return receipt


async def _record_intent(db, *, now, actor, customer_id, request, source) -> Result | None:
    """Check the confirmation and record it as pending, committed before the provider is asked;
    None when it was recorded, else the answer (refused, stale, ...)."""
    async with db() as session, session.begin():
        checked = await _checked(session, now=now, actor=actor, customer_id=customer_id, request=request, source=source)
        if not isinstance(checked, _Allowed):
            return checked
        intent = _Intent(request, now, actor, source, checked.decision.effective, checked.decision.deletes_scheduled)
        session.add(
            Operation(
                key=request.op, customer_id=customer_id, user_id=actor.user_id, kind=request.kind.value, reference=_reference(),
                status=operations.PENDING, result={"intent": intent.to_json()}, created_at=now,
            )
        )
    return None


async def _carry_out(db, provider, op: str, now: datetime, *, receipt_if_done: bool = True, tell: bool = False) -> Result | None:
    """Ask the provider for a pending change and record it (the change, its audit entry, the receipt)
    in one commit. The provider reads the subscription first, so a change it already has is not sent
    again. With `receipt_if_done` False, None for an operation someone else has finished. With `tell`
    (the worker finishing it: nobody is waiting on a card) the person who confirmed it is owed a notice
    of the receipt, or of the refusal, written in that same commit."""
    intent: _Intent | None = None
    name, customer_id, user_id = "", 0, None
    try:
        async with db() as session, session.begin():
            found = await operations.hold(session, op)
            if found is None:
                if await _operation(session, op) is None:
                    raise operations.Raced(op)  # given up elsewhere (the provider refused): start over
                return InProgress()  # another transaction is carrying it out (PostgreSQL's row lock)
            if found.status != operations.PENDING:
                return Receipt.from_json(found.result) if receipt_if_done else None
            intent, customer_id, user_id = _Intent.from_json(op, found.result["intent"]), found.customer_id, found.user_id
            sub = await _subscription(session, customer_id, intent.request.subscription_id)
            name = sub.display_name
            state = await state_of(session, sub)
            before = _facts(sub)
            receipt = await _apply(
                session, provider, sub, state, intent.decision, now=intent.at, actor=intent.actor, request=intent.request, reference=found.reference
            )
            audit.record(
                session, at=intent.at, actor=intent.actor, customer_id=customer_id, action=intent.request.kind.value, target_type="subscription",
                target_id=sub.id, summary=receipt.summary, source=intent.source, before=before, after=_facts(sub), reference=found.reference,
            )
            await operations.complete(session, op, receipt.to_json())
            if tell and user_id is not None:
                await _tell(session, customer_id, user_id, notices.CHANGE_FINISHED, {"receipt": receipt.to_json()}, now)
            return receipt
    except ProviderError as error:
        assert intent is not None  # the provider is only asked once the intent is read
        if error.unconfirmed:
            # It may have been made: the operation stays pending, and a click again or the worker
            # (after the grace period) asks the provider how things stand and records it once.
            log.warning("provider did not confirm %s on subscription %s (%s): left pending", intent.request.kind.value, intent.request.subscription_id, error.code)
            return ProviderFailed(error.message, name, unconfirmed=True)
        return await _provider_refused(db, op, intent, customer_id, name, error, now, tell_user_id=user_id if tell else None)


async def _tell(session: AsyncSession, customer_id: int, user_id: int, kind: str, payload: dict, now: datetime) -> None:
    user = await session.get(User, user_id)
    if user is not None:
        notices.add(session, customer_id=customer_id, user_id=user_id, kind=kind, payload={**payload, "locale": user.locale}, now=now)


async def _provider_refused(
    db, op: str, intent: _Intent, customer_id: int, name: str, error: ProviderError, now: datetime, *, tell_user_id: int | None = None
) -> ProviderFailed:
    """Nothing was changed (that transaction rolled back): the pending operation is dropped, so the
    card can be clicked again, and the refusal is recorded (and, with `tell_user_id`, owed to that person)."""
    request = intent.request
    log.warning("provider refused %s on subscription %s: %s", request.kind.value, request.subscription_id, error.code)
    async with db() as session, session.begin():
        dropped = await session.execute(
            delete(Operation).where(Operation.key == op, Operation.status == operations.PENDING).execution_options(synchronize_session=False)
        )
        if dropped.rowcount != 1:
            raise operations.Raced(op)  # finished elsewhere meanwhile
        audit.record(
            session, at=now, actor=intent.actor, customer_id=customer_id, action=request.kind.value, target_type="subscription",
            target_id=request.subscription_id, summary="Refused by the provider", source=intent.source, outcome="refused", reason=error.code,
        )
        if tell_user_id is not None:
            await _tell(session, customer_id, tell_user_id, notices.TEXT, {"key": "notice.change_failed", "values": {"name": name, "message": error.message}}, now)
    return ProviderFailed(error.message, name)


@dataclass(frozen=True)
class Finished:
    """A change left pending by a crash that the worker finished: whom it was for, and what happened
    (the person's notice is already in the outbox, written with it)."""

    user_id: int | None
    result: Receipt | ProviderFailed


async def finish_left_over(db, provider: SubscriptionProvider, now: datetime) -> list[Finished]:
    """The worker's part: changes still pending after the grace period (their process died before
    the provider's answer was recorded, and nobody clicked again) are finished like a click would."""
    async with db() as session:
        left = await operations.left_over(session, IN_FLIGHT_KINDS, now)
    finished: list[Finished] = []
    for op in left:
        try:
            result = await _carry_out(db, provider, op.key, now, receipt_if_done=False, tell=True)
        except (operations.Raced, IntegrityError, StaleDataError, OperationalError) as error:
            log.info("left-over change %s is being finished elsewhere (%s)", op.reference, type(error).__name__)
            continue
        except Exception:  # noqa: BLE001 - one that can't be finished must not hold up the rest of the pass
            log.exception("left-over change %s could not be finished; trying again next pass", op.reference)
            continue
        if isinstance(result, ProviderFailed) and result.unconfirmed:
            continue  # still pending: the next pass asks the provider again, and then tells the person
        if isinstance(result, (Receipt, ProviderFailed)):
            log.info("finished the change %s left over by a crash: %s", op.reference, type(result).__name__)
            finished.append(Finished(op.user_id, result))
    return finished


async def _drop_renewal_changes(session: AsyncSession, sub: Subscription, *, now: datetime, actor, why: str) -> None:
    for change in await _pending(session, sub):
        if change.timing == ChangeTiming.AT_RENEWAL:
            change.status = ChangeStatus.WITHDRAWN
            audit.record(
                session, at=now, actor=actor, customer_id=sub.customer_id, action="scheduled_withdrawn", target_type="subscription",
                target_id=sub.id, summary=f"Scheduled change {change.reference} removed: {why}", source="rule",
            )


async def _apply(session, provider, sub, state, decision, *, now, actor, request, reference) -> Receipt:
    name = sub.display_name
    common = dict(reference=reference, kind=request.kind.value, subscription_id=sub.id, subscription_name=name, actor=actor.name, at=now)
    if request.kind == Kind.SEATS:
        old = sub.quantity
        if request.timing == Timing.NOW:
            await provider.change_quantity(session, sub, request.quantity, key=request.op, now=now)
            if decision.deletes_scheduled:
                await _drop_renewal_changes(session, sub, now=now, actor=actor, why="an immediate change replaces changes scheduled for renewal")
            summary = f"Seats {old} → {request.quantity}, effective now"
            return Receipt(**common, summary=summary, old_quantity=old, new_quantity=request.quantity, effective=decision.effective, deleted_scheduled=decision.deletes_scheduled)
        timing = ChangeTiming.AT_RENEWAL if request.timing == Timing.AT_RENEWAL else ChangeTiming.ON_DATE
        if timing == ChangeTiming.AT_RENEWAL:
            # One quantity per renewal: a new one replaces what was scheduled before.
            await _drop_renewal_changes(session, sub, now=now, actor=actor, why="replaced by a newer change for renewal")
            await provider.schedule_next_term(session, sub, request.quantity, key=request.op, now=now)
        else:
            sub.updated_at = now  # the card shown before this is stale: it bumps the version
        session.add(
            ScheduledChange(
                customer_id=sub.customer_id, subscription_id=sub.id, kind=ChangeKind.QUANTITY, timing=timing,
                effective_date=decision.effective, new_quantity=request.quantity, status=ChangeStatus.PENDING,
                created_by_id=actor.user_id, created_at=now, reference=reference,
            )
        )
        summary = f"Seats {old} → {request.quantity} scheduled for {decision.effective.isoformat()}"
        return Receipt(**common, summary=summary, old_quantity=old, new_quantity=request.quantity, timing=request.timing.value, effective=decision.effective)
    if request.kind == Kind.AUTO_RENEW:
        await provider.set_auto_renew(session, sub, bool(request.enable), key=request.op, now=now)
        dropped = ()
        if not request.enable and decision.deletes_scheduled:
            await _drop_renewal_changes(session, sub, now=now, actor=actor, why="auto-renew was switched off")
            dropped = decision.deletes_scheduled
        summary = "Auto-renew switched on" if request.enable else f"Auto-renew switched off; ends {sub.commitment_end.isoformat()}"
        return Receipt(**common, summary=summary, effective=decision.effective, deleted_scheduled=dropped)
    # cancel
    await provider.cancel(session, sub, key=request.op, now=now)
    for change in await _pending(session, sub):
        change.status = ChangeStatus.WITHDRAWN
    reason = request.reason or "other"
    summary = f"Cancelled ({reason.replace('_', ' ')})" + (f": {request.note}" if request.note else "")
    return Receipt(**common, summary=summary, old_quantity=sub.quantity, effective=decision.effective, deleted_scheduled=decision.deletes_scheduled)


async def _withdraw(session, provider, sub, state, *, now, actor, request, source) -> Result:
    change = (
        await session.execute(
            select(ScheduledChange).where(
                ScheduledChange.id == request.change_id,
                ScheduledChange.customer_id == sub.customer_id,
                ScheduledChange.subscription_id == sub.id,
            )
        )
    ).scalar_one_or_none()
    if change is None:
        return NotFound()
    if change.status != ChangeStatus.PENDING:
        return Refused(Decision(Refusal.ALREADY, {"status": change.status.value}), sub.display_name)
    claimed = await session.execute(
        update(ScheduledChange)
        .where(ScheduledChange.id == change.id, ScheduledChange.status == ChangeStatus.PENDING)
        .values(status=ChangeStatus.WITHDRAWN)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return Refused(Decision(Refusal.ALREADY, {"status": "gone"}), sub.display_name)
    if change.timing == ChangeTiming.AT_RENEWAL:
        await provider.schedule_next_term(session, sub, None, key=request.op, now=now)
    sub.updated_at = now
    reference = _reference()
    item = planned(change, state.renewal_date)
    described = f"{item.quantity} seats from {item.effective.isoformat()}"
    receipt = Receipt(
        reference=reference, kind=Kind.WITHDRAW.value, subscription_id=sub.id, subscription_name=sub.display_name, actor=actor.name, at=now,
        summary=f"Withdrew the scheduled change {change.reference}: {described}", new_quantity=change.new_quantity, effective=change.effective_date,
    )
    audit.record(
        session, at=now, actor=actor, customer_id=sub.customer_id, action="withdraw", target_type="subscription", target_id=sub.id,
        summary=receipt.summary, source=source, reference=reference,
    )
    session.add(Operation(key=request.op, customer_id=sub.customer_id, user_id=actor.user_id, kind=Kind.WITHDRAW.value, reference=reference, result=receipt.to_json(), created_at=now))
    return receipt


@dataclass(frozen=True)
class ScheduledView:
    id: int
    subscription_id: int
    subscription_name: str
    subscription_version: int
    timing: ChangeTiming
    effective: date
    new_quantity: int | None
    reference: str | None
    created_by: str | None


async def scheduled_for_customer(db, customer_id: int) -> list[ScheduledView]:
    from services.models import User

    async with db() as session:
        rows = await session.execute(
            select(ScheduledChange, Subscription, User)
            .join(Subscription, Subscription.id == ScheduledChange.subscription_id)
            .outerjoin(User, User.id == ScheduledChange.created_by_id)
            .where(ScheduledChange.customer_id == customer_id, Subscription.customer_id == customer_id, ScheduledChange.status == ChangeStatus.PENDING)
            .order_by(ScheduledChange.effective_date, ScheduledChange.id)
        )
        out = []
        for change, sub, user in rows:
            renewal = commerce.renewal_date(sub.commitment_end)
            when = change.effective_date if change.timing == ChangeTiming.ON_DATE and change.effective_date else renewal
            out.append(ScheduledView(change.id, sub.id, sub.display_name, sub.version, change.timing, when, change.new_quantity, change.reference, user.name if user else None))
        return out


@dataclass(frozen=True)
class LogLine:
    at: datetime
    actor: str
    summary: str
    source: str
    reference: str | None
    target: str


async def change_log(db, customer_id: int, *, limit: int = 15, offset: int = 0) -> list[LogLine]:
    from services.models import AuditEntry

    async with db() as session:
        rows = await session.execute(
            select(AuditEntry, Subscription)
            .outerjoin(Subscription, (AuditEntry.target_type == "subscription") & (Subscription.id == AuditEntry.target_id.cast(Subscription.id.type)))
            .where(AuditEntry.customer_id == customer_id, AuditEntry.outcome == "applied")
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [LogLine(e.at, e.actor, e.summary, e.source, e.reference, s.display_name if s else "") for e, s in rows]
