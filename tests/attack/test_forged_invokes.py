"""Issue 10: every card verb, invoked by Fabrikam's people of every role with forged data — Northwind's
ids, ids that don't exist, wrong types, raised roles, changed prices and quantities, Northwind's
operation ids. Every answer is HTTP 200 with a well-formed invoke body, no reply names anything of
Northwind's, and Northwind's rows are exactly as they were."""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from dialogs.router import VERBS
from services.models import Customer, Role, Subscription
from services.permissions import can
from tests.attack.conftest import Northwind, problems, snapshot
from tests.conftest import Teams, person

# Every key any flow reads from a button's data (dialogs/*.py), and a few it should never trust.
KEYS = (
    "id", "v", "change", "order", "item", "offer", "product", "page", "part", "number", "op", "quantity", "delta",
    "timing", "date", "enable", "customer", "user", "users", "product_id", "form_id", "decision", "fp", "accept",
    "accept_name", "accept_email", "query", "question", "comment", "summary", "scope", "filter", "articles", "helpful",
    "names", "picked", "remove", "separate", "start_date", "reason", "note", "personal", "from", "typed", "title",
    "language", "category", "article", "_verb",
)
WRONG: tuple[Any, ...] = (
    "abc", [1, 2], {"$gt": 0}, 10**30, -5, None, True, 1.5, "1e9999",
    "x" * 5000, "<at>Seatdesk</at> **bold** <script>alert(1)</script>",
)
RAISED = {"role": "admin", "is_partner_staff": True, "isPartnerStaff": True, "permissions": ["*"], "approver": True}


def _op() -> str:
    return uuid.uuid4().hex


def forged(nw: Northwind, fab_sub: int, fab_version: int, *, full: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    identity = {"customer_id": nw.customer_id, "tenant_id": nw.tenant_id, "tenantId": nw.tenant_id, "user_id": nw.user_ids[-1]}
    # Northwind's subscriptions (an active one with an operation, the nicknamed one, the expired one, the last),
    # with their current versions, so only ownership can refuse.
    picked = list(dict.fromkeys([nw.sub_ids[0], *[s for s in nw.sub_ids if s in (12, 14)], nw.sub_ids[-1]]))
    for sid in picked:
        out.append({"id": sid, "v": nw.versions[sid], "quantity": 1, "delta": 5, "timing": "now", "enable": False,
                    "reason": "other", "note": "x", "op": _op(), "personal": True, **RAISED, **identity})
        if full:
            out.append({"id": sid, "v": nw.versions[sid], "quantity": "999", "timing": "at_renewal", "enable": True, "op": _op()})
    for change in nw.change_ids:
        sid = nw.change_subs[change]
        out.append({"change": change, "id": sid, "v": nw.versions.get(sid, 1), "op": _op(), **RAISED})
        out.append({"change": change, "id": fab_sub, "v": fab_version, "op": _op()})  # Northwind's change on our subscription
    for order, decision in zip(nw.order_ids, ("approve", "reject", "approve", "reject")):
        out.append({"order": order, "decision": decision, "comment": "fine", **RAISED, **identity})
    for number in nw.case_numbers:
        out.append({"number": number, "comment": "pwned by fabrikam", "id": nw.sub_ids[0], **RAISED, **identity})
    for item in nw.cart_item_ids:
        out.append({"item": item, f"qty_{item}": "300", "id": item})
    out.append({"customer": "northwind", **RAISED})
    out.append({"customer": nw.customer_id, **identity})
    out.append({"product_id": 1, "users": nw.user_ids, "user": nw.user_ids[0], "picked": [str(u) for u in nw.user_ids], "op": _op(), "remove": True})
    # Operation ids of Northwind's confirmed changes and checkout, on our own and on their rows.
    for key in [*nw.op_keys, nw.checkout_op]:
        if not key:
            continue
        out.append({"op": key, "id": fab_sub, "v": fab_version, "quantity": 121, "timing": "now", "enable": False, "reason": "other",
                    "fp": nw.checkout_fp, "accept": "true", "accept_name": "Eve", "accept_email": "eve@fabrikam.de"})
        out.append({"op": key, "id": nw.sub_ids[0], "v": nw.versions[nw.sub_ids[0]], "quantity": 50, "timing": "now", "fp": nw.checkout_fp})
    # Prices and quantities the card never carried.
    out.append({"price": 0, "unit_price": "0.01", "total": -100, "amount": 0, "currency": "XXX", "discount": 100,
                "quantity": 10**9, "delta": 10**6, "id": fab_sub, "v": fab_version, "op": _op(), "fp": "forged", "accept": True})
    if full:
        # Ids that don't exist.
        for missing in (2**31 - 2, 999_999, -1):
            out.append({k: missing for k in ("id", "v", "change", "order", "item", "offer", "product", "product_id", "user")}
                       | {"number": f"CASE-{abs(missing)}", "op": _op()})
        # Wrong types, every key at once.
        for value in WRONG:
            out.append({k: value for k in KEYS})
    return out


def one_wrong_key(fab_sub: int, fab_version: int) -> list[dict[str, Any]]:
    """Wrong types on one key, the rest a valid request on our own subscription (for the change verbs)."""
    out = []
    for key in ("id", "v", "quantity", "delta", "timing", "date", "op", "enable", "change"):
        for value in ("abc", {}, None, True, 10**30):
            out.append({"id": fab_sub, "v": fab_version, "quantity": 121, "timing": "now", "op": _op(), "enable": False, key: value})
    return out


# The verbs that read more than an id (the .start verbs read only "id"/"change", covered above).
CHANGE_VERBS = {v for v in VERBS if v.split(".")[0] in ("seats", "renewal", "cancel", "change") and v.endswith((".review", ".confirm"))}


ROLES = (Role.VIEW, Role.MODIFY, Role.FINANCE, Role.ADMIN)
LANES = 4  # conversations of the same person, run side by side (each keeps its own conversation state)


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
async def test_every_verb_refuses_forged_data(bot_client, connector, demo_db, northwind: Northwind, role: Role):
    who = await person(demo_db, "fabrikam", role)
    lanes = [Teams(bot_client, connector, who) for _ in range(LANES)]
    async with demo_db() as session:
        fab = (
            await session.execute(
                select(Subscription).join(Customer, Customer.id == Subscription.customer_id)
                .where(Customer.key == "fabrikam", Subscription.provider_id == "FAB-M365E3-01")
            )
        ).scalar_one()
        fab_sub, fab_version = fab.id, fab.version
    # The attacker's own subscription answers (so the refusals below are about ownership, not a broken setup).
    status, body = await lanes[0].click("subscription.details", {"id": fab_sub})
    assert status == 200 and body["type"] == "application/vnd.microsoft.card.adaptive", body
    connector.take()
    before = await snapshot(demo_db, northwind.customer_id)
    payloads = forged(northwind, fab_sub, fab_version, full=role is Role.ADMIN)
    single = one_wrong_key(fab_sub, fab_version) if role is Role.ADMIN else []
    work: list[tuple[str, dict[str, Any]]] = []
    for verb, spec in VERBS.items():
        allowed = spec.permission is None or can(role, spec.permission)
        # A verb this role may not use is refused before its data is read: two payloads show it.
        tried = payloads if allowed else [payloads[0], {k: "abc" for k in KEYS}]
        if verb in CHANGE_VERBS:
            tried = [*tried, *single]
        work += [(verb, data) for data in tried]
    failures: list[str] = []

    async def lane(teams: Teams, share: list[tuple[str, dict[str, Any]]]) -> None:
        for verb, data in share:
            status, body = await teams.click(verb, data)
            # Replies posted to this lane's conversation (the connector records every lane's).
            mine = [a for a in connector.activities if (a.get("conversation") or {}).get("id") == teams.conversation_id]
            connector.activities[:] = [a for a in connector.activities if a not in mine]
            for problem in problems(status, body, mine, northwind, forged=data):
                failures.append(f"{verb} {str(data)[:160]}: {problem}")

    await asyncio.gather(*(lane(t, work[i::LANES]) for i, t in enumerate(lanes)))
    for problem in problems(200, {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": ""},
                            connector.take() + connector.updates, northwind):
        failures.append(f"card updates / stray activities: {problem}")
    after = await snapshot(demo_db, northwind.customer_id)
    changed = {table: (before[table], after[table]) for table in before if before[table] != after[table]}
    assert not changed, f"Northwind rows changed: {changed}"
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:60])


async def test_the_checks_see_northwind_data_when_it_is_there(bot_client, connector, demo_db, northwind: Northwind):
    """Control: Northwind's own admin opening Northwind's subscription is flagged by the same leak check
    (so a clean run of the attacks above means something)."""
    michael = Teams(bot_client, connector, await person(demo_db, "northwind", Role.ADMIN))
    status, body = await michael.click("subscription.details", {"id": northwind.sub_ids[0]})
    assert any("Northwind data" in p for p in problems(status, body, connector.take(), northwind))
    status, body = await michael.click("case.details", {"number": northwind.case_numbers[0]})
    assert any("Northwind" in p for p in problems(status, body, connector.take(), northwind))
