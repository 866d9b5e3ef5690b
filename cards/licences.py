"""Cards and sentences of the licence flows: who has a licence, assigning and removing licences,
and seats paid for but not assigned."""
from __future__ import annotations

from cards.common import Card, card, execute, heading, line, plain
from cards.text import MESSAGES, text
from services.graph import AssignmentResult, GraphUser, UnassignedSeats

MESSAGES["en"].update(
    {
        "licences.not_connected": "Licence assignment is not connected: Seatdesk has no access to Microsoft Graph for your company. Ask {contact} to connect it.",
        "licences.not_consented": "Seatdesk may not read or assign licences in {company}'s Microsoft 365 yet: an administrator of {company} has to consent first. Ask {contact}.",
        "licences.unavailable": "Microsoft Graph is not answering right now. Nothing was changed; please try again later.",
        "licences.refused": "Microsoft Graph refused: {detail}",
        "licences.no_product": "I can't find a subscription called \"{name}\" at {company}.",
        "licences.no_sku": "{name} is not among the licences in {company}'s Microsoft 365 tenant.",
        "licences.no_user": "I can't find anyone called \"{name}\" in {company}'s directory.",
        "licences.too_many": "At most {max} people at a time, please.",
        "licences.no_free_seats": "All {paid} seats of {name} are assigned. Add seats first (\"add 1 seat to {name}\").",
        "licences.who.title": "Who has {name}",
        "licences.who.count": "{count} of {paid} seats are assigned.",
        "licences.who.none": "Nobody has {name} yet.",
        "licences.who.more": "… and {more} more.",
        "licences.assign.title": "Give {name} licences",
        "licences.remove.title": "Remove {name} licences",
        "licences.assign.text": "Give a **{name}** licence to:",
        "licences.remove.text": "Remove the **{name}** licence from:",
        "licences.assign.seats": "{free} of {paid} seats are free now.",
        "licences.choose_user": "Several people match \"{name}\". Whom do you mean?",
        "licences.action.confirm": "Confirm",
        "licences.action.keep": "Don't change anything",
        "licences.done.title": "Done",
        "licences.done.assigned": "{name} assigned to {who}.",
        "licences.done.removed": "{name} removed from {who}.",
        "licences.done.failed": "Not changed for {who}: {why}",
        "licences.done.reference": "Reference {reference} · by {actor}",
        "licences.working": "Microsoft 365 is taking longer than usual to answer. The licence change carries on in the background: I'll update this card and tell you here when it's done. There's no need to click again.",
        "licences.still_working": "This licence change is still being carried out. I'll update this card when it's done; clicking again won't do it twice.",
        "licences.check_unavailable": "Microsoft Graph is not answering right now, so I can't tell yet whether this licence change went through. I'll finish it and tell you here; there's no need to click again.",
        "notice.licences_finished": "Your licence change {reference} ({product}) has been carried out. Here is the result:",
        "licences.looking": "Microsoft 365 is taking longer than usual to answer. I'll post the result here as soon as it arrives.",
        "licences.unassigned.title": "Seats you pay for but nobody uses",
        "licences.unassigned.item": "You pay for **{unassigned}** unassigned seats of **{name}** ({assigned} of {paid} assigned).",
        "licences.unassigned.none": "Every seat you pay for is assigned to someone.",
        "licences.unassigned.action": "Reduce {name} to {quantity} at renewal",
        "refusal.what.manage_users": "assign or remove licences",
    }
)


def _person(user: GraphUser) -> str:
    return plain(f"{user.display_name} ({user.user_principal_name})")


def who_has_card(name: str, users: list[GraphUser], *, paid: int, locale: str | None, shown: int = 30) -> Card:
    body = [heading(text(locale, "licences.who.title", name=plain(name)))]
    if not users:
        body.append(line(text(locale, "licences.who.none", name=plain(name))))
        return card(body)
    body.append(line(text(locale, "licences.who.count", count=len(users), paid=paid), subtle=True))
    body.extend(line("• " + _person(u), spacing="None") for u in users[:shown])
    if len(users) > shown:
        body.append(line(text(locale, "licences.who.more", more=len(users) - shown), subtle=True))
    return card(body)


def choose_user_card(name: str, users: list[GraphUser], *, verb: str, extra: dict, locale: str | None) -> Card:
    body = [heading(text(locale, "licences.choose_user", name=plain(name)))]
    actions = [execute(f"{u.display_name} ({u.user_principal_name})", verb, {**extra, "user": u.id}) for u in users[:6]]
    body.append({"type": "ActionSet", "actions": actions})
    return card(body)


def assign_confirm_card(product: str, users: list[GraphUser], *, remove: bool, free: int, paid: int, data: dict, locale: str | None) -> Card:
    loc = locale
    body = [
        heading(text(loc, "licences.remove.title" if remove else "licences.assign.title", name=plain(product))),
        line(text(loc, "licences.remove.text" if remove else "licences.assign.text", name=plain(product))),
    ]
    body.extend(line("• " + _person(u), spacing="None") for u in users)
    if not remove:
        body.append(line(text(loc, "licences.assign.seats", free=free, paid=paid), subtle=True))
    actions = [
        execute(text(loc, "licences.action.confirm"), "licences.assign.confirm", data, style="positive"),
        execute(text(loc, "licences.action.keep"), "flow.dismiss"),
    ]
    return card(body, actions)


def assign_receipt_card(product: str, results: list[AssignmentResult], *, remove: bool, reference: str, actor: str, locale: str | None) -> Card:
    loc = locale
    done = ", ".join(plain(r.user.display_name) for r in results if r.ok)
    body = [heading(text(loc, "licences.done.title"))]
    if done:
        body.append(line(text(loc, "licences.done.removed" if remove else "licences.done.assigned", name=plain(product), who=done)))
    for failed in (r for r in results if not r.ok):
        body.append(line(text(loc, "licences.done.failed", who=plain(failed.user.display_name), why=plain(failed.message)), weight="Bolder"))
    body.append(line(text(loc, "licences.done.reference", reference=reference, actor=plain(actor)), subtle=True))
    return card(body)


def unassigned_card(items: list[UnassignedSeats], *, can_change: bool, locale: str | None) -> Card:
    loc = locale
    body = [heading(text(loc, "licences.unassigned.title"))]
    if not items:
        body.append(line(text(loc, "licences.unassigned.none")))
        return card(body)
    for item in items:
        body.append(
            line(text(loc, "licences.unassigned.item", unassigned=item.unassigned, name=plain(item.name), assigned=item.assigned, paid=item.paid))
        )
        if can_change:
            body.append(
                {
                    "type": "ActionSet",
                    "actions": [
                        execute(
                            text(loc, "licences.unassigned.action", name=item.name, quantity=item.suggested_quantity),
                            "seats.review",
                            {"id": item.subscription_id, "quantity": item.suggested_quantity, "timing": "at_renewal"},
                        )
                    ],
                }
            )
    return card(body)
