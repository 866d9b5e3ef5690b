"""Welcome, help and the MSP technician's customer choice."""
from __future__ import annotations

from dataclasses import dataclass

from cards.common import Card, card, execute, heading, line
from cards.text import text
from services.models import Role


@dataclass(frozen=True)
class Person:
    """What the welcome and help cards need to know about the reader."""

    name: str
    company: str
    role: Role
    is_partner_staff: bool = False
    acting_for: str | None = None
    locale: str | None = None


def _main_actions(person: Person) -> list[dict]:
    loc = person.locale
    actions = [
        execute(text(loc, "action.dashboard"), "overview"),
        execute(text(loc, "action.subscriptions"), "subscriptions.list"),
        execute(text(loc, "action.my_cases"), "cases.list"),
        execute(text(loc, "action.knowledge"), "kb.categories"),
    ]
    if person.is_partner_staff:
        actions.append(execute(text(loc, "action.switch_customer"), "customer.choose"))
    return actions


def _who(person: Person) -> list[dict]:
    loc = person.locale
    if person.is_partner_staff:
        blocks = [line(text(loc, "welcome.partner", name=person.name, company=person.company))]
        if person.acting_for:
            blocks.append(line(text(loc, "welcome.acting_for", customer=person.acting_for), weight="Bolder"))
        return blocks
    role = text(loc, "role." + person.role.value)
    return [line(text(loc, "welcome.you_are", name=person.name, company=person.company, role=role, summary=text(loc, "role.summary." + person.role.value)))]


def _examples(loc: str | None, role: Role) -> list[dict]:
    keys = ["welcome.example.dashboard", "welcome.example.subscriptions"]
    if role in (Role.MODIFY, Role.FINANCE, Role.ADMIN):
        keys.append("welcome.example.change")
    keys += ["welcome.example.ask", "welcome.example.case", "welcome.example.help"]
    return [line("- " + text(loc, key), spacing="None") for key in keys]


def welcome_card(person: Person) -> Card:
    loc = person.locale
    body = [heading(text(loc, "welcome.title")), line(text(loc, "welcome.intro"))]
    body += _who(person)
    body.append(line(text(loc, "welcome.try"), weight="Bolder", spacing="Medium"))
    body += _examples(loc, person.role)
    return card(body, _main_actions(person))


def help_card(person: Person, *, not_understood: bool = False) -> Card:
    loc = person.locale
    body = [heading(text(loc, "help.title"))]
    if not_understood:
        body.insert(0, line(text(loc, "help.unknown")))
    body += _who(person)
    body += _examples(loc, person.role)
    return card(body, _main_actions(person))


@dataclass(frozen=True)
class CustomerChoice:
    key: str
    name: str


def choose_customer_card(company: str, customers: list[CustomerChoice], locale: str | None = None) -> Card:
    body = [heading(text(locale, "partner.choose.title")), line(text(locale, "partner.choose.text", company=company))]
    body.append(
        {
            "type": "Input.ChoiceSet",
            "id": "customer",
            "label": text(locale, "partner.choose.label"),
            "style": "compact",
            "isRequired": True,
            "errorMessage": text(locale, "partner.unknown_customer"),
            "value": customers[0].key if customers else None,
            "choices": [{"title": c.name, "value": c.key} for c in customers],
        }
    )
    return card(body, [execute(text(locale, "partner.choose.action"), "customer.act_for")])
