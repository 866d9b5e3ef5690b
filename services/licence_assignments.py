"""Assigning and removing licences in a customer's Microsoft 365 through Graph, exactly once.

The confirmation card carries an operation id. Before Graph is asked, the Operation is recorded as
pending with what was asked (product, SKU, the people, who asked); Graph's answers are recorded with
the audit entries and the receipt in one commit (services/operations.py). A process that dies in
between leaves the pending Operation. Once it is older than the grace period, the card clicked again
or the worker reads each person's licences in Graph, asks Graph again only for those where the
change is not in effect yet, and records the receipt, once. Before that a click is told the change
is still being carried out: Graph has no idempotency key that would make a second call harmless.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError

from services import audit, notices, operations
from services.graph import AssignmentResult, GraphUser, LicenceError, LicencePort
from services.models import Customer, Operation, User

log = logging.getLogger("seatdesk.licences")

KIND = "licences"


@dataclass(frozen=True)
class Assignment:
    """What was confirmed, recorded before Graph is asked."""

    product: str
    sku_id: str
    remove: bool
    users: tuple[GraphUser, ...]
    actor: audit.Actor
    at: datetime

    def to_json(self) -> dict:
        return {
            "product": self.product, "sku_id": self.sku_id, "remove": self.remove,
            "users": [[u.id, u.display_name, u.user_principal_name] for u in self.users],
            "actor": {"name": self.actor.name, "user_id": self.actor.user_id, "customer_id": self.actor.customer_id},
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict) -> "Assignment":
        return cls(
            data["product"], data["sku_id"], bool(data["remove"]), tuple(GraphUser(*u) for u in data["users"]),
            audit.Actor(**data["actor"]), datetime.fromisoformat(data["at"]),
        )


@dataclass(frozen=True)
class LicenceReceipt:
    product: str
    remove: bool
    reference: str
    actor: str
    results: tuple[AssignmentResult, ...]

    def to_json(self) -> dict:
        return {
            "product": self.product, "remove": self.remove, "reference": self.reference, "actor": self.actor,
            "results": [[r.user.id, r.user.display_name, r.user.user_principal_name, r.ok, r.message] for r in self.results],
        }

    @classmethod
    def from_json(cls, data: dict) -> "LicenceReceipt":
        results = tuple(AssignmentResult(GraphUser(r[0], r[1], r[2]), bool(r[3]), r[4]) for r in data.get("results") or [])
        return cls(data["product"], bool(data["remove"]), data["reference"], data["actor"], results)


@dataclass(frozen=True)
class StillWorking:
    """Graph is being asked for this confirmation: here, on another instance, or by a process that
    died less than the grace period ago."""


@dataclass(frozen=True)
class LeftOver:
    """Pending for longer than the grace period: its process died before Graph's answer was recorded."""


class NotYours(Exception):
    """The operation id belongs to another customer, or to something other than a licence change."""


@dataclass(frozen=True)
class Finished:
    """A licence change left over by a crash that the worker finished: whom it was for, and the receipt
    (the person's notice is already in the outbox, written with it)."""

    user_id: int | None
    receipt: LicenceReceipt


def _reference() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "LIC-" + "".join(secrets.choice(alphabet) for _ in range(8))


async def recorded(db, op: str, customer_id: int, now: datetime) -> LicenceReceipt | StillWorking | LeftOver | None:
    """What became of a confirmation: None if it was never recorded."""
    async with db() as session:
        found = (await session.execute(select(Operation).where(Operation.key == op))).scalar_one_or_none()
    if found is None:
        return None
    if found.customer_id != customer_id or found.kind != KIND:
        raise NotYours(op)
    if found.status == operations.DONE:
        return LicenceReceipt.from_json(found.result)
    return LeftOver() if found.created_at <= now - operations.GRACE else StillWorking()


async def carry_out(db, graph: LicencePort, *, op: str, customer_id: int, assignment: Assignment, unavailable: str) -> LicenceReceipt | StillWorking:
    """Record the confirmation as pending, then ask Graph and record the answers. `unavailable` is the
    sentence for people Graph could not be asked about."""
    try:
        async with db() as session, session.begin():
            session.add(
                Operation(
                    key=op, customer_id=customer_id, user_id=assignment.actor.user_id, kind=KIND, reference=_reference(),
                    status=operations.PENDING, result={"intent": assignment.to_json()}, created_at=assignment.at,
                )
            )
    except IntegrityError:
        # A concurrent click on another instance recorded it first (on this one it would share the work).
        found = await recorded(db, op, customer_id, assignment.at)
        return found if isinstance(found, LicenceReceipt) else StillWorking()
    return await _ask_and_record(db, graph, op, assignment.at, unavailable=unavailable, again=False)


async def finish(db, graph: LicencePort, *, op: str, now: datetime, unavailable: str) -> LicenceReceipt | StillWorking | None:
    """Finish a confirmation left over by a crash (see `recorded`): Graph is asked what is in effect
    first. None when an earlier version of Seatdesk left it without what was asked: it is dropped, and
    the card's request can be carried out as new."""
    return await _ask_and_record(db, graph, op, now, unavailable=unavailable, again=True)


async def finish_left_over(db, graph: LicencePort, now: datetime, *, unavailable: str) -> list[Finished]:
    """The worker's part: licence changes still pending after the grace period are finished, whether or
    not anyone clicks again. One Graph can't answer now stays pending for the next pass."""
    async with db() as session:
        left = await operations.left_over(session, (KIND,), now)
    finished: list[Finished] = []
    for op in left:
        try:
            receipt = await _ask_and_record(db, graph, op.key, now, unavailable=unavailable, again=True, receipt_if_done=False, tell=True)
        except LicenceError as error:
            log.warning("left-over licence change %s: Graph could not be asked (%s); trying again next pass", op.reference, error.code)
            continue
        except (operations.Raced, OperationalError) as error:
            log.info("left-over licence change %s is being finished elsewhere (%s)", op.reference, type(error).__name__)
            continue
        except Exception:  # noqa: BLE001 - one that can't be finished must not hold up the rest of the pass
            log.exception("left-over licence change %s could not be finished; trying again next pass", op.reference)
            continue
        if isinstance(receipt, LicenceReceipt):
            log.info("finished the licence change %s left over by a crash", op.reference)
            finished.append(Finished(op.user_id, receipt))
    return finished


async def _ask_and_record(
    db, graph: LicencePort, op: str, now: datetime, *, unavailable: str, again: bool, receipt_if_done: bool = True, tell: bool = False
) -> LicenceReceipt | StillWorking | None:
    """With `tell` (the worker: nobody waits on a card) the person who confirmed it is owed a notice
    with the receipt, written in the commit that records it."""
    async with db() as session, session.begin():
        found = await operations.hold(session, op)
        if found is None:
            return StillWorking()  # another transaction is asking Graph (PostgreSQL's row lock)
        if found.status != operations.PENDING:
            return LicenceReceipt.from_json(found.result) if receipt_if_done else None
        if again and found.created_at > now - operations.GRACE:
            return StillWorking()
        if "intent" not in found.result:
            log.warning("licence change %s was left pending by an earlier version, without what was asked; dropped", found.reference)
            await session.execute(delete(Operation).where(Operation.key == op, Operation.status == operations.PENDING))
            return None
        assignment = Assignment.from_json(found.result["intent"])
        tenant = (await session.get(Customer, found.customer_id)).tenant_id
        results, failure = await (_ask_again if again else _ask)(graph, tenant, assignment, op, unavailable)
        receipt = LicenceReceipt(assignment.product, assignment.remove, found.reference, assignment.actor.name, tuple(results))
        _audit(session, found.customer_id, assignment, receipt, failure)
        await operations.complete(session, op, receipt.to_json())
        who = await session.get(User, found.user_id) if tell and found.user_id is not None else None
        if who is not None:
            notices.add(
                session, customer_id=found.customer_id, user_id=who.id, kind=notices.LICENCES_FINISHED,
                payload={"receipt": receipt.to_json(), "locale": who.locale}, now=now,
            )
        return receipt


Answers = tuple[list[AssignmentResult], str | None]  # per person, and the code of a failure that stopped them all


async def _ask(graph: LicencePort, tenant: str, assignment: Assignment, op: str, unavailable: str) -> Answers:
    sku = assignment.sku_id
    try:
        return await graph.assign(tenant, assignment.users, add=None if assignment.remove else sku, remove=sku if assignment.remove else None, key=op), None
    except LicenceError as error:
        return [AssignmentResult(u, False, unavailable) for u in assignment.users], error.code


async def _ask_again(graph: LicencePort, tenant: str, assignment: Assignment, op: str, unavailable: str) -> Answers:
    """After a crash: the people whose licence is already as asked are done; Graph is asked once more
    for the others only. Graph not answering (LicenceError "unavailable") leaves it for later."""
    sku = assignment.sku_id.lower()
    done: dict[str, AssignmentResult] = {}
    try:
        for user in assignment.users:
            held = await graph.assigned_skus(tenant, user.id)
            if held is not None and (sku in held) != assignment.remove:
                done[user.id] = AssignmentResult(user, True)
    except LicenceError as error:
        if error.code == "unavailable":
            raise
        return [AssignmentResult(u, False, unavailable) for u in assignment.users], error.code
    failure = None
    rest = tuple(u for u in assignment.users if u.id not in done)
    if rest:
        asked, failure = await _ask(graph, tenant, Assignment(assignment.product, assignment.sku_id, assignment.remove, rest, assignment.actor, assignment.at), op, unavailable)
        done.update((r.user.id, r) for r in asked)
    return [done[u.id] for u in assignment.users], failure


def _audit(session, customer_id: int, assignment: Assignment, receipt: LicenceReceipt, failure: str | None) -> None:
    verb = "removed from" if assignment.remove else "assigned to"
    for r in receipt.results:
        audit.record(
            session, at=assignment.at, actor=assignment.actor, customer_id=customer_id, action="licence_remove" if assignment.remove else "licence_assign",
            target_type="user", target_id=r.user.id,
            summary=f"{assignment.product} {verb} {r.user.display_name}" if r.ok else f"{assignment.product} not {verb} {r.user.display_name}: {r.message}",
            source="card", outcome="applied" if r.ok else "refused", reason=None if r.ok else (failure or r.message)[:500], reference=receipt.reference,
        )
