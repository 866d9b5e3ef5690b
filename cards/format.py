"""Dates, money and terms as a person in the user's locale reads them."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from cards.text import text
from services.models import BillingCycle, Term

_SYMBOL = {"EUR": "€", "USD": "$", "GBP": "£"}
_MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _german(locale: str | None) -> bool:
    return (locale or "").lower().startswith("de")


def day(value: date | datetime, locale: str | None = None) -> str:
    if isinstance(value, datetime):
        value = value.date()
    if _german(locale):
        return f"{value.day:02d}.{value.month:02d}.{value.year}"
    return f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"


def moment(value: datetime, locale: str | None = None) -> str:
    return f"{day(value, locale)} {value:%H:%M} UTC"


def money(amount: Decimal, currency: str, locale: str | None = None) -> str:
    amount = amount.quantize(Decimal("0.01"))
    symbol = _SYMBOL.get(currency, currency + " ")
    whole, _, cents = f"{amount:,.2f}".partition(".")
    if _german(locale):
        return f"{whole.replace(',', '.')},{cents} {symbol.strip()}"
    return f"{symbol}{whole}.{cents}"


def term_and_billing(term: Term, billing: BillingCycle, locale: str | None = None) -> str:
    return f"{text(locale, 'term.' + term.value)}, {text(locale, 'billing.' + billing.value)}"
