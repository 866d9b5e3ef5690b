"""Language understanding without a model: from a typed message to an intent with its details.

`parse(text, customer_vocabulary=..., locale=...)` is a pure function: the customer's
subscriptions and catalog come in as plain data (`Vocabulary`), nothing is read from a
database or the network, and the same text gives the same `Understanding`. It understands
English and German, digits and number words ("five", "fünf", "fünfundzwanzig"), relative
quantities ("+5", "5 more", "down to 20"), when ("now", "at renewal", "next month", "1.12.",
"December 1st"), term and billing ("annual paid monthly", "jährlich, monatliche Zahlung"),
on/off, and products by name, alias, abbreviation ("BP", "E3", "O365") or with a typo.

It never decides anything: the router turns an Understanding into the card flow a button
would start, and every change still ends on that flow's confirmation card.
"""
from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
import functools
from typing import Any

# -- what the parser may answer ----------------------------------------------------------------
INTENTS = (
    "seats.change", "renewal.set", "cancel.subscription", "subscription.details", "subscriptions.list", "overview",
    "changes.list", "changes.log", "orders.list", "cart.show", "catalog.search", "cases.list", "cases.company",
    "cases.resolved", "case.open", "case.details", "outages.status", "outages.past", "kb.ask", "kb.categories",
    "help", "welcome", "customer.choose", "flow.cancel", "flow.restart", "correction", "fill", "approve", "refuse",
    "unknown",
)
# Intents about one subscription: the product must be resolved to exactly one of the customer's.
NEEDS_SUBSCRIPTION = frozenset({"seats.change", "renewal.set", "cancel.subscription", "subscription.details"})
CHANGES = frozenset({"seats.change", "renewal.set", "cancel.subscription"})


@dataclass(frozen=True)
class Product:
    """A catalog product the customer may buy."""

    key: str
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class OwnedSubscription:
    """One of the customer's subscriptions, as plain data."""

    id: int
    name: str  # as shown (the nickname, else the product name)
    product_key: str
    product_name: str
    aliases: tuple[str, ...] = ()
    active: bool = True
    ref: str = ""  # the provider's id (FAB-VISIO-01), for reports and the development set


@dataclass(frozen=True)
class Vocabulary:
    """What this customer can mean: their subscriptions and the products of their catalog."""

    subscriptions: tuple[OwnedSubscription, ...] = ()
    products: tuple[Product, ...] = ()

    @property
    def index(self) -> "_Index":
        return _index_of(self)

    def subscription(self, subscription_id: int) -> OwnedSubscription | None:
        return next((s for s in self.subscriptions if s.id == subscription_id), None)

    def product(self, key: str) -> Product | None:
        return next((p for p in self.products if p.key == key), None)


EMPTY = Vocabulary()


@dataclass(frozen=True)
class Understanding:
    """What a message asks for. `slots` is plain data:

    subscription: tuple of subscription ids the named product matched (present when a product was named)
    product: tuple of catalog product keys it matched; product_text: the words as typed
    quantity (new total) or delta (+/-), timing ("now" | "at_renewal" | "on_date"), date (ISO)
    term ("P1M" | "P1Y" | "P3Y"), billing ("monthly" | "annual"), enable (auto-renew on/off)
    question, summary, query, number (a case number)
    """

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.0
    language: str = "en"

    @property
    def missing(self) -> tuple[str, ...]:
        """Details the intent needs that the message did not give (asked for, one question)."""
        found: list[str] = []
        if self.intent in NEEDS_SUBSCRIPTION and "subscription" not in self.slots:
            found.append("subscription")
        if self.intent == "seats.change" and "quantity" not in self.slots and "delta" not in self.slots:
            found.append("quantity")
        return tuple(found)

    @property
    def ask(self) -> str | None:
        """Why the router must ask back rather than go on: "choose", "not_found", "missing", or None."""
        if self.intent in NEEDS_SUBSCRIPTION and "subscription" in self.slots:
            count = len(self.slots["subscription"])
            if count == 0:
                return "not_found"
            if count > 1:
                return "choose"
        if self.missing:
            return "missing"
        return None


# -- text ------------------------------------------------------------------------------------
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss", "’": "'", "`": "'"})


def strip_mentions(text: str) -> str:
    return " ".join(_MENTION.sub(" ", text).split())


def fold(text: str) -> str:
    """Lower case, umlauts folded (ä→a, ß→ss), other accents dropped: "Kündige" → "kundige"."""
    text = text.lower().translate(_FOLD)
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


_GERMAN_WORDS = frozenset(
    "ich wir uns unser unsere unseren die der das den dem des und oder auf zur zum bei mit fur von vom ab bis ist sind "
    "bitte kundige kundigen kundigung reduziere reduzieren erhohe erhohen brauchen brauche benotigen mehr weniger weitere "
    "zusatzliche lizenz lizenzen platze zeige zeig meine mein offenen offene gibt es diese dieser woche monat nachsten "
    "nachste nachstem verlangerung automatische ausschalten abschalten einschalten deaktivieren aktivieren wie was warum "
    "wann wo kann kannst konnen geht nicht funktioniert wartung storung storungen ausfall bestellung bestellungen "
    "warenkorb abonnements abos hilfe abbrechen fall falle anfrage tickets eroffnen neuen einen eine ein jahrlich monatlich "
    "monatliche zahlung heute morgen sofort jetzt fuge hinzu entferne setze andere uberblick ubersicht haben wurde werden "
    "geplante geplanten anderungen verlauf stand status meiner".split()
)
_ENGLISH_WORDS = frozenset(
    "i we us our my the a an and or to of for from on at in is are please add remove reduce increase need more fewer less "
    "seats seat licences licenses licence license show list what whats how why when where can can't cannot do does turn "
    "off auto renew renewal cancel subscription subscriptions open tickets cases case my status order orders cart this "
    "week next month maintenance outage outages down help stop start over make it actually instead annual monthly paid "
    "billed now today tomorrow with have has be it's change set buy want".split()
)


def detect_language(text: str, default: str = "en") -> tuple[str, float]:
    """("de" | "en", how sure 0..1) from marker words and umlauts."""
    lowered = text.lower()
    words = re.findall(r"[a-zäöüß']+", lowered)
    folded = [fold(w) for w in words]
    de = sum(1 for w in folded if w in _GERMAN_WORDS) + 2 * len(re.findall(r"[äöüß]", lowered))
    en = sum(1 for w in words if w in _ENGLISH_WORDS)
    if de == en:
        return default, 0.0
    language = "de" if de > en else "en"
    return language, abs(de - en) / max(de + en, 1)


# -- numbers ---------------------------------------------------------------------------------
_UNITS_EN = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
             "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
             "seventeen": 17, "eighteen": 18, "nineteen": 19, "dozen": 12}
_TENS_EN = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_UNITS_DE = {"null": 0, "eins": 1, "zwei": 2, "zwo": 2, "drei": 3, "vier": 4, "funf": 5, "fuenf": 5, "sechs": 6, "sieben": 7,
             "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwolf": 12, "zwoelf": 12, "dreizehn": 13, "vierzehn": 14,
             "funfzehn": 15, "sechzehn": 16, "siebzehn": 17, "achtzehn": 18, "neunzehn": 19, "dutzend": 12}
_TENS_DE = {"zwanzig": 20, "dreissig": 30, "dreiig": 30, "vierzig": 40, "funfzig": 50, "sechzig": 60, "siebzig": 70,
            "achtzig": 80, "neunzig": 90}
_DE_COMPOUND_UNITS = {"ein": 1, "zwei": 2, "drei": 3, "vier": 4, "funf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9}
_DE_COMPOUND = re.compile(r"^(ein|zwei|drei|vier|funf|sechs|sieben|acht|neun)und(zwanzig|dreissig|vierzig|funfzig|sechzig|siebzig|achtzig|neunzig)$")


def word_number(token: str) -> int | None:
    """One token as a number: "7", "seven", "sieben", "fünfundzwanzig" (folded), "hundert"."""
    if token.isdigit():
        return int(token)
    for table in (_UNITS_EN, _TENS_EN, _UNITS_DE, _TENS_DE):
        if token in table:
            return table[token]
    if token in ("hundred", "hundert", "einhundert"):
        return 100
    match = _DE_COMPOUND.match(token)
    if match:
        return _DE_COMPOUND_UNITS[match.group(1)] + _TENS_DE[match.group(2)]
    return None


def numbers_to_digits(tokens: list[str]) -> list[str]:
    """["twenty", "five", "seats"] → ["25", "seats"]; ["a", "dozen"] → ["12"]."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        value = word_number(token) if not token.isdigit() else None
        if value is None:
            out.append(token)
            i += 1
            continue
        if value in _TENS_EN.values() and i + 1 < len(tokens) and tokens[i + 1] in _UNITS_EN and _UNITS_EN[tokens[i + 1]] < 10:
            value += _UNITS_EN[tokens[i + 1]]
            i += 1
        if out and out[-1] in ("a", "one") and token == "dozen":
            out.pop()
        if i + 1 < len(tokens) and tokens[i + 1] in ("hundred", "hundert") and value < 10:
            value *= 100
            i += 1
        out.append(str(value))
        i += 1
    return out


# -- dates -----------------------------------------------------------------------------------
_MONTHS = {
    "january": 1, "jan": 1, "januar": 1, "janner": 1, "february": 2, "feb": 2, "februar": 2, "march": 3, "mar": 3, "marz": 3,
    "maerz": 3, "april": 4, "apr": 4, "may": 5, "mai": 5, "june": 6, "jun": 6, "juni": 6, "july": 7, "jul": 7, "juli": 7,
    "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "oktober": 10, "okt": 10,
    "november": 11, "nov": 11, "december": 12, "dec": 12, "dezember": 12, "dez": 12,
}
_WEEKDAYS = {"monday": 0, "montag": 0, "tuesday": 1, "dienstag": 1, "wednesday": 2, "mittwoch": 2, "thursday": 3,
             "donnerstag": 3, "friday": 4, "freitag": 4, "saturday": 5, "samstag": 5, "sonnabend": 5, "sunday": 6, "sonntag": 6}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY_RE = r"(\d{1,2})(?:st|nd|rd|th|\.)?"
_DATE_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), "iso"),
    (re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})?(?!\d)"), "dmy"),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?\b"), "slash"),
    (re.compile(rf"\b{_DAY_RE}\s+(?:of\s+)?({_MONTH_RE})\b\.?(?:,?\s+(\d{{4}}))?"), "day_month"),
    (re.compile(rf"\b({_MONTH_RE})\.?\s+(?:the\s+)?{_DAY_RE}(?:,?\s+(\d{{4}}))?\b"), "month_day"),
]
_RELATIVE_DATES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\b(?:(?:from|starting|beginning|as of|at the start of)\s+)?(?:the\s+)?(?:1st\s+of\s+|first\s+of\s+|start\s+of\s+)?next\s+month\b"), "next_month"),
    (re.compile(r"\b(?:ab\s+|zum\s+|im\s+|anfang\s+)?(?:nachste[nmr]?|kommende[nmr]?)\s+monat[s]?\b"), "next_month"),
    (re.compile(r"\b(?:ab\s+|zum\s+)?monatsanfang\b"), "next_month"),
    (re.compile(r"\b(?:(?:at\s+)?(?:the\s+)?end\s+of\s+(?:the|this)\s+month|monatsende|ende\s+des\s+monats|zum\s+monatsende)\b"), "end_month"),
    (re.compile(r"\b(?:day\s+after\s+tomorrow|ubermorgen)\b"), "in2"),
    (re.compile(r"\b(?:tomorrow|tmrw)\b"), "tomorrow"),
    (re.compile(r"(?<!guten )\bmorgen\b"), "tomorrow"),
    (re.compile(r"\b(?:from\s+|starting\s+)?next\s+week\b|\b(?:ab\s+)?(?:nachste|kommende)\s+woche\b"), "next_week"),
    (re.compile(r"\bin\s+(\d{1,3})\s+(days?|tagen|weeks?|wochen|months?|monaten)\b"), "in_n"),
    (re.compile(rf"\b(?:on\s+|am\s+|next\s+|nachsten\s+|kommenden\s+)({'|'.join(_WEEKDAYS)})\b"), "weekday"),
]


def _year(y: str | None, today: date) -> int | None:
    if not y:
        return None
    value = int(y)
    return value + 2000 if value < 100 else value


def _make(today: date, year: int | None, month: int, day: int) -> date | None:
    try:
        found = date(year or today.year, month, day)
    except ValueError:
        return None
    if year is None and found < today:
        try:
            found = date(today.year + 1, month, day)
        except ValueError:
            return None
    return found


def _first_of_next_month(today: date) -> date:
    return date(today.year + (today.month == 12), today.month % 12 + 1, 1)


def find_date(text: str, today: date, *, month_first: bool = False) -> tuple[date | None, str]:
    """The first date in (folded) text, and the text without it. "1.12." and "1 December" in the
    coming year when no year is given; "next month" is its first day."""
    for pattern, kind in _DATE_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        g = match.groups()
        if kind == "iso":
            found = _make(today, int(g[0]), int(g[1]), int(g[2]))
        elif kind == "dmy":
            found = _make(today, _year(g[2], today), int(g[1]), int(g[0]))
        elif kind == "slash":
            a, b = int(g[0]), int(g[1])
            month, day = (a, b) if month_first else (b, a)
            found = _make(today, _year(g[2], today), month, day)
        elif kind == "day_month":
            found = _make(today, _year(g[2], today), _MONTHS[g[1]], int(g[0]))
        else:
            found = _make(today, _year(g[2], today), _MONTHS[g[0]], int(g[1]))
        if found is not None:
            return found, text[: match.start()] + " " + text[match.end():]
    for pattern, kind in _RELATIVE_DATES:
        match = pattern.search(text)
        if not match:
            continue
        if kind == "next_month":
            found = _first_of_next_month(today)
        elif kind == "end_month":
            found = date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
        elif kind == "tomorrow":
            found = today + timedelta(days=1)
        elif kind == "in2":
            found = today + timedelta(days=2)
        elif kind == "next_week":
            found = today + timedelta(days=7 - today.weekday())
        elif kind == "in_n":
            n, unit = int(match.group(1)), match.group(2)
            if unit.startswith(("week", "woch")):
                found = today + timedelta(weeks=n)
            elif unit.startswith("mon"):
                month = today.month - 1 + n
                year, month = today.year + month // 12, month % 12 + 1
                found = date(year, month, min(today.day, calendar.monthrange(year, month)[1]))
            else:
                found = today + timedelta(days=n)
        else:
            ahead = (_WEEKDAYS[match.group(1)] - today.weekday()) % 7 or 7
            found = today + timedelta(days=ahead)
        return found, text[: match.start()] + " " + text[match.end():]
    return None, text


# -- term, billing, timing -------------------------------------------------------------------
_BILLING = [
    (re.compile(r"\b(?:paid|billed|billing|pay|payment|invoiced|charged)\s+(?:per\s+|every\s+|each\s+)?(monthly|month|annually|annual|yearly|year|upfront|up front|in advance)\b"), 1),
    (re.compile(r"\b(monthly|annual|yearly|upfront)\s+(?:billing|payment|payments|invoicing|invoice)\b"), 1),
    (re.compile(r"\b(monatliche[rnms]?|jahrliche[rnms]?)\s+(?:zahlung|abrechnung|zahlweise|bezahlung|rechnung)\b"), 1),
    (re.compile(r"\b(?:zahlung|abrechnung|zahlweise|bezahlung)\s+(monatlich|jahrlich|im voraus)\b"), 1),
    (re.compile(r"\b(monatlich|jahrlich|im voraus)\s+(?:bezahlt|bezahlen|zahlen|abgerechnet|abrechnen|gezahlt)\b"), 1),
]
_TERMS = [
    (re.compile(r"\b(?:3|three|drei)[\s-]*(?:years?|yr|jahre?n?s?)\b|\btriennial\b|\b36\s+(?:months|monate)\b|\bdreijahrig\w*"), "P3Y"),
    (re.compile(r"\b(?:1|one|ein)[\s-]*(?:years?|yr|jahr(?:es)?)\b|\b12\s+(?:months|monate)\b|\bannual(?:ly)?\b|\byearly\b|\bjahrlich\w*|\bjahres(?:vertrag|laufzeit|abo)\w*|\bjahresabonnement\b"), "P1Y"),
    (re.compile(r"\b(?:1|one|ein)[\s-]*(?:months?|monat)\b|\bmonthly\b|\bmonth[\s-]to[\s-]month\b|\bmonatlich\w*|\bmonats(?:vertrag|laufzeit|abo)\w*"), "P1M"),
]
_AT_RENEWAL = re.compile(
    r"\b(?:(?:at|on|upon|with|from|after|by|for)\s+(?:the\s+|its\s+|our\s+)?(?:next\s+)?renewal|when\s+(?:it|they)\s+renews?|"
    r"at\s+the\s+end\s+of\s+the\s+(?:term|contract|commitment)|(?:at|on)\s+renewal\s+date|next\s+term|"
    r"(?:zur|zum|bei|mit|nach)\s+(?:der\s+)?(?:nachsten\s+)?verl\w*ngerung|zum\s+verlangerungs(?:termin|datum)|"
    r"(?:am|zum)\s+(?:ende\s+der\s+laufzeit|laufzeitende)|wenn\s+(?:es|sie)\s+(?:sich\s+)?verlangert)\b"
)
_NOW = re.compile(r"\b(?:now|right now|immediately|right away|asap|today|straight away|sofort|jetzt|heute|ab sofort|umgehend)\b")


def find_billing(text: str) -> tuple[str | None, str]:
    for pattern, group in _BILLING:
        match = pattern.search(text)
        if match:
            word = match.group(group)
            billing = "monthly" if word.startswith(("month", "monat")) else "annual"
            return billing, text[: match.start()] + " " + text[match.end():]
    return None, text


def find_term(text: str) -> tuple[str | None, str]:
    for pattern, term in _TERMS:
        match = pattern.search(text)
        if match:
            return term, text[: match.start()] + " " + text[match.end():]
    return None, text


# -- product matching ------------------------------------------------------------------------
_EXPANSIONS = {"o365": ("office", "365"), "m365": ("microsoft", "365"), "ms": ("microsoft",), "ms365": ("microsoft", "365"),
               "powerbi": ("power", "bi"), "autorenew": ("auto", "renew")}
_PHRASE_STOP = frozenset("the a an for of and der die das den fur und".split())
_GENERIC = frozenset(
    "microsoft office 365 plan online business standard pro for the of and a an management team add on addon "
    "m365 o365 p1 p2 p3 1 2 3 e1 e3 e5".split()
)
# Words people type that must never be "corrected" into a product name.
_COMMON = frozenset(
    "terms term team seats seat sales phone phones users user basics basic plans plane power tower please these those "
    "there their three where when what which while whole with within without would could should shows show showing "
    "renew renews renewal renewals cancel cancelled cancels license licenses licence licences licens lizenz lizenzen "
    "premiums products product project projects protect tickets ticket status states stats today month months monthly "
    "change changes charge chance order orders other about above after again against all also always another answer "
    "reduce remove reset returns visit visits video videos vision version versions details detail tell more make many "
    "standard standards office offices online essential security secure securities phone copilots exchanges exchanged "
    "defend defends defense planned planning essentials store stores start started stop states since simple single "
    "turn turned turning number numbers".split()
)


def _tokens(text: str) -> list[str]:
    raw = re.findall(r"[+-]\d+|[a-z0-9]+", fold(text).replace("'", ""))
    out: list[str] = []
    for token in raw:
        out.extend(_EXPANSIONS.get(token, (token,)))
    return numbers_to_digits(out)


def _close(a: str, b: str, limit: int) -> bool:
    """Damerau-Levenshtein distance of a and b is at most `limit` (1 or 2)."""
    if abs(len(a) - len(b)) > limit:
        return False
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
            best = min(best, cur[j])
        if best > limit:
            return False
        prev2, prev = prev, cur
    return prev[-1] <= limit


@functools.lru_cache(maxsize=128)
def _index_of(vocabulary: Vocabulary) -> "_Index":
    # A vocabulary is read again for every message; an unchanged one (the usual case) is indexed once.
    return _Index.build(vocabulary)


@dataclass(frozen=True)
class _Target:
    product_key: str | None = None
    subscription_id: int | None = None


@dataclass
class _Index:
    phrases: dict[tuple[str, ...], set[_Target]]
    words: frozenset[str]
    longest: int

    @classmethod
    def build(cls, vocabulary: Vocabulary) -> "_Index":
        phrases: dict[tuple[str, ...], set[_Target]] = {}

        def add(text: str, target: _Target) -> None:
            tokens = tuple(_tokens(text))
            if tokens:
                phrases.setdefault(tokens, set()).add(target)
            core = tuple(t for t in tokens if t not in _PHRASE_STOP)
            if core and core != tokens:
                phrases.setdefault(core, set()).add(target)
            if len(core) >= 3 and core[0] == "microsoft":  # "Microsoft Teams Essentials" is also "Teams Essentials"
                phrases.setdefault(core[1:], set()).add(target)

        names: dict[str, set[str]] = {}
        for product in vocabulary.products:
            target = _Target(product_key=product.key)
            for text in (product.name, *product.aliases, product.key.replace("-", " ")):
                add(text, target)
                names.setdefault(product.key, set()).update(_tokens(text))
        for sub in vocabulary.subscriptions:
            add(sub.name, _Target(subscription_id=sub.id))
            product = _Target(product_key=sub.product_key)
            for text in (sub.product_name, *sub.aliases):
                add(text, product)
                names.setdefault(sub.product_key, set()).update(_tokens(text))
            own = set(_tokens(sub.name)) - set(_tokens(sub.product_name))  # a nickname's own words ("Verwaltung")
            if own:
                names.setdefault(f"#sub{sub.id}", set()).update(own)
        # A word found in one product's names only ("visio", "premium", "verwaltung") names it by itself.
        owners: dict[str, set[str]] = {}
        for owner, words in names.items():
            for word in words:
                if word not in _GENERIC and word not in _PHRASE_STOP and not any(c.isdigit() for c in word) and len(word) > 3:
                    owners.setdefault(word, set()).add(owner)
        starts = {p[0] for p in phrases if len(p) > 1}  # "teams" starts "Teams Phone": alone it may mean something else
        for word, found in owners.items():
            if len(found) == 1 and (word,) not in phrases and word not in starts:
                owner = next(iter(found))
                target = _Target(subscription_id=int(owner[4:])) if owner.startswith("#sub") else _Target(product_key=owner)
                phrases[(word,)] = {target}
        words = frozenset(w for p in phrases for w in p)
        return cls(phrases, words, max((len(p) for p in phrases), default=1))

    def correct(self, token: str) -> str:
        """A typo of a product word becomes that word ("buisness" → "business")."""
        if token in self.words or len(token) < 4 or token in _COMMON or token in _KEYWORDS or any(c.isdigit() for c in token):
            return token
        limit = 1 if len(token) < 8 else 2
        for word in self.words:
            if len(word) >= 4 and word[0] in (token[0], token[1]) and _close(token, word, limit):
                return word
        return token


@dataclass(frozen=True)
class ProductMention:
    start: int
    end: int
    text: str
    targets: frozenset[_Target]


def find_products(tokens: list[str], vocabulary: Vocabulary) -> ProductMention | None:
    """The longest span of tokens that names a product or subscription (typos forgiven)."""
    index = vocabulary.index
    if not index.phrases:
        return None
    fixed = [index.correct(t) for t in tokens]
    for size in range(min(index.longest, len(fixed)), 0, -1):
        for start in range(0, len(fixed) - size + 1):
            targets = index.phrases.get(tuple(fixed[start: start + size]))
            if targets:  # the longest name wins; of two as long, the first one named
                return ProductMention(start, start + size, " ".join(tokens[start: start + size]), frozenset(targets))
    return None


def resolve(mention: ProductMention, vocabulary: Vocabulary, *, prefer_active: bool) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The customer's subscriptions and catalog products a mention means."""
    keys = {t.product_key for t in mention.targets if t.product_key}
    ids = {t.subscription_id for t in mention.targets if t.subscription_id is not None}
    subs = [s for s in vocabulary.subscriptions if s.id in ids or s.product_key in keys]
    if prefer_active and any(s.active for s in subs):
        subs = [s for s in subs if s.active]
    catalog = tuple(sorted(k for k in keys if vocabulary.product(k) is not None))
    return tuple(sorted(s.id for s in subs)), catalog


# -- intents ---------------------------------------------------------------------------------
_SEAT_NOUNS = frozenset("seat seats licence licences license licenses licenes lizenz lizenzen lizensen platz platze arbeitsplatze user users nutzer benutzer".split())
_ADD = frozenset("add adding buy purchase increase raise get order another more additional extra plus hinzufugen fuge fugen hinzu erhohe erhohen erhoht aufstocken stocke kaufe kaufen bestelle bestellen zusatzliche zusatzlich weitere mehr".split())
# "We need 40" is a new total; "we need 3 more" says more.
_NEED = frozenset("need needs want wants brauchen brauche braucht benotigen benotige".split())
_REMOVE = frozenset("remove reduce decrease drop lower cut fewer less minus entferne entfernen reduziere reduzieren verringere verringern senke senken weniger streiche streichen kurze kurzen abbauen".split())
_SET = frozenset("set change make adjust update andere andern setze setzen stelle stellen mach mache".split())
_KEYWORDS = _SEAT_NOUNS | _ADD | _REMOVE | _SET | _NEED | frozenset(
    "cancel kundige kundigen auto renew renewal verlangerung verlangern details show status orders order cart tickets "
    "cases outages maintenance wartung storung help hilfe actually instead stattdessen lieber eigentlich".split()
)

_INTERRUPT_CANCEL = frozenset({
    "cancel", "cancel that", "cancel this", "cancel it", "stop", "stop it", "stop that", "abort", "quit", "exit", "nevermind",
    "never mind", "forget it", "forget that", "nothing", "no thanks", "abbrechen", "abbruch", "stopp", "halt", "vergiss es",
    "vergiss das", "lass es", "lass gut sein", "nicht mehr", "beenden", "abbrechen bitte", "bitte abbrechen",
})
_INTERRUPT_RESTART = frozenset({
    "start over", "start again", "restart", "reset", "begin again", "from the start", "from scratch", "lets start over",
    "von vorne", "nochmal von vorne", "neu anfangen", "neustart", "neu starten", "von vorn", "alles neu",
})
_HELP = frozenset({
    "help", "help me", "hilfe", "what can you do", "what can i ask", "what do you do", "commands", "menu", "how does this work",
    "was kannst du", "was kannst du alles", "was kann ich fragen", "wie funktionierst du", "befehle", "hilf mir", "i need help",
    "options", "what are my options", "was geht", "was kann seatdesk",
})
_GREETING = frozenset({"hi", "hello", "hey", "hallo", "moin", "servus", "guten morgen", "guten tag", "good morning", "start", "hi there"})
_POLITE = re.compile(r"^(?:please|pls|bitte|ok|okay|no|nein|hey|seatdesk|just|einfach)\s+|\s+(?:please|pls|bitte|now|jetzt|then|dann)$")

_CASE_NUMBER = re.compile(r"\bcs\s*-?\s*(\d{4})\s*-?\s*(\d{1,9})\b")
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|your\s+|the\s+|previous\s+|prior\s+|my\s+)*(?:rules|instructions|prompt|guidelines|policies|restrictions)\b|"
    r"\b(?:ignoriere|vergiss|umgehe)\s+(?:alle\s+|deine\s+|die\s+|bisherigen\s+)*(?:regeln|anweisungen|vorgaben|einschrankungen)\b|"
    r"\bsystem\s*prompt\b|\bdeveloper\s+mode\b|\bjailbreak\b|\byou\s+are\s+now\b|\bdu\s+bist\s+jetzt\b|\bact\s+as\s+(?:an?\s+)?admin\b"
)
_APPROVE = re.compile(r"\b(?:approve|approved|genehmige|genehmigen|freigeben|gib\s+\w+\s+frei|autorisiere|confirm\s+(?:my|the|all)\s+(?:order|change|request)s?|bestatige)\b")
_CORRECTION = re.compile(
    r"\b(?:actually|make\s+(?:it|that|them)|change\s+(?:it|that)\s+to|instead|rather|correction|i\s+meant|i\s+mean|no\s+wait|"
    r"eigentlich|stattdessen|lieber|doch|mach(?:e)?\s+(?:es|das|daraus)?|daraus|korrigiere|korrektur|ich\s+meinte|besser)\b"
)
_QUESTION_START = frozenset(
    "how why what when where which who can could do does did is are should will would may "
    "whats hows wheres whens whos wie warum wieso weshalb was wann wo welche welcher welches wer kann konnen darf muss ist sind gibt".split()
)
_PROBLEM = re.compile(
    r"\b(?:can ?not|can'?t|cant|cannot|unable to|couldn'?t|could not|won'?t|doesn'?t work|does not work|isn'?t working|"
    r"not working|stopped working|broken|crash(?:es|ed|ing)?|error|fails?|failed|failing|problem with|issue with|keeps? (?:crashing|freezing|asking)|"
    r"kann (?:mich )?nicht|geht nicht|funktioniert nicht|klappt nicht|kaputt|fehler|absturz|sturzt ab|problem mit)\b"
)
_OPEN_CASE = re.compile(
    r"\b(?:open|create|raise|file|log|submit|start|need|want|report)\s+(?:a|an|new|a\s+new|one)\s+(?:support\s+)?(?:case|ticket|request|incident)\b|"
    r"\b(?:new|neuer?n?|neues)\s+(?:support\s*)?(?:case|ticket|fall|anfrage|supportfall)\b|"
    r"\b(?:ticket|fall|anfrage|supportfall|supportanfrage|case)\s+(?:eroffnen|erstellen|anlegen|aufmachen|aufgeben)\b|"
    r"\b(?:eroffne|erstelle|lege)\s+(?:bitte\s+)?(?:einen?|ein)\s+(?:neuen?\s+)?(?:ticket|fall|anfrage|supportfall)\b|"
    r"\b(?:report\s+(?:a|an)\s+(?:problem|issue)|contact\s+support|i\s+need\s+support|support\s+kontaktieren)\b"
)


_UNITS = frozenset("day days tag tage tagen hour hours stunden week weeks wochen month months monate monaten year years jahre jahren percent prozent gb tb mb".split())
_FILL_WORDS = _SEAT_NOUNS | frozenset(
    "more mehr fewer less weniger plus minus extra additional weitere zusatzliche another noch total insgesamt in to auf by um "
    "at on am from ab the a it make seats then dann".split()
)


_NAMED = re.compile(
    r"\b(?:to|for|from|of|on|fur|von|bei|cancel|kundige|kundigen|terminate)\s+(?:the\s+|my\s+|our\s+|die\s+|der\s+|das\s+|den\s+|unsere?[nm]?\s+)?"
    r"(?P<name>[a-z][a-z0-9 .-]*?)\s*$"
)
_NOT_A_NAME = _SEAT_NOUNS | _FILL_WORDS | frozenset("subscription subscriptions abo abonnement it them all".split())


def unknown_name(text: str) -> str | None:
    """The words after "to/for/from…" at the end that name no product ("add 5 seats to Dynamics 365 Sales")."""
    match = _NAMED.search(text)
    if not match:
        return None
    name = match.group("name").strip(" .-")
    if not name or all(w in _NOT_A_NAME or w.isdigit() for w in name.split()):
        return None
    return name


def _quantity(tokens: list[str], direction: int) -> dict[str, int]:
    """Quantity slots from tokens (product and dates already removed). `direction` +1/-1/0 from the verbs."""
    n = len(tokens)
    for i, token in enumerate(tokens):
        if token[0] in "+-" and token[1:].isdigit():
            return {"delta": int(token)}
    for i, token in enumerate(tokens):
        if not token.isdigit() or (i + 1 < n and tokens[i + 1] in _UNITS):
            continue
        value = int(token)
        before = tokens[i - 1] if i else ""
        before2 = tokens[i - 2] if i > 1 else ""
        after = tokens[i + 1] if i + 1 < n else ""
        after2 = tokens[i + 2] if i + 2 < n else ""
        if before in ("by", "um"):
            return {"delta": value * (direction or 1)}
        if before in ("to", "auf", "total", "insgesamt", "exactly", "genau") or (before == "of" and before2 == "total"):
            return {"quantity": value}
        if after in ("fewer", "less", "weniger") or (after in _SEAT_NOUNS and after2 in ("fewer", "less", "weniger")):
            return {"delta": -value}
        if after in ("more", "additional", "extra", "mehr", "weitere", "zusatzliche", "zusatzlich", "new", "neue") or before in ("another", "noch", "plus", "additional", "extra") or (
            after in _SEAT_NOUNS and after2 in ("more", "mehr", "extra", "additional", "zusatzlich")
        ):
            return {"delta": value}
        if after in ("in", "insgesamt") and after2 in ("total", "") or after == "total":
            return {"quantity": value}
        if before == "minus":
            return {"delta": -value}
        if direction > 0:
            return {"delta": value}
        if direction < 0:
            return {"delta": -value}
        return {"quantity": value}
    for i, token in enumerate(tokens[:-1]):
        if token in ("a", "an", "another", "one", "ein", "eine", "einen") and (tokens[i + 1] in _SEAT_NOUNS or tokens[i + 1] in ("more", "extra", "weitere")):
            return {"delta": direction or 1}
    return {}


def _as_typed(original: str, folded_name: str) -> str:
    """The name as the person typed it (umlauts and capitals kept), found again in the original text."""
    words = original.split()
    count = len(folded_name.split())
    for start in range(len(words) - count, -1, -1):
        candidate = " ".join(words[start: start + count]).strip(".,!?\"'")
        if fold(candidate) == folded_name:
            return candidate
    return folded_name


def parse(text: str, *, customer_vocabulary: Vocabulary = EMPTY, locale: str | None = None, today: date | None = None) -> Understanding:
    """Understand one typed message. Pure: same input, same answer, no I/O."""
    today = today or date.today()
    original = strip_mentions(text)
    default_language = "de" if (locale or "").lower().startswith("de") else "en"
    language, _ = detect_language(original, default_language)

    def result(intent: str, confidence: float, **slots: Any) -> Understanding:
        return Understanding(intent, {k: v for k, v in slots.items() if v is not None}, confidence, language)

    folded = fold(original).replace("'", "")
    plain = " ".join(re.sub(r"[^\w\s+\-./]", " ", folded).split())
    bare = " ".join(re.sub(r"[^\w\s]", " ", folded).split())
    while True:
        shorter = _POLITE.sub("", bare).strip()
        if shorter == bare:
            break
        bare = shorter
    if not bare:
        return result("unknown", 0.0)

    # Fixed words that work anywhere in a flow.
    if bare in _INTERRUPT_CANCEL:
        return result("flow.cancel", 1.0)
    if bare in _INTERRUPT_RESTART:
        return result("flow.restart", 1.0)
    if bare in _HELP or bare in ("help please", "hilfe bitte") or re.match(r"^(?:what|was)\s+(?:can|kannst|kann)\s+(?:you|du|i|ich)\s+(?:do|ask|tun|machen|fragen)\b", bare):
        return result("help", 1.0)
    if bare in _GREETING:
        return result("welcome", 0.95)
    if _INJECTION.search(plain):
        # Asked to act against the rules: a polite refusal. Otherwise the words are only data (a question).
        if _APPROVE.search(plain) or re.search(r"\b(?:do|execute|run|delete|remove|cancel all|everything|every)\b", plain):
            return result("refuse", 0.95)
        return result("kb.ask", 0.5, question=original)
    if _APPROVE.search(plain) and not re.search(r"\b(?:who|wer|wie|how|status|need|braucht|brauchen|waiting|wartet)\b", plain):
        return result("approve", 0.9)
    number = _CASE_NUMBER.search(plain)
    if number:
        return result("case.details", 0.95, number=f"CS-{number.group(1)}-{number.group(2)}")

    # Details that do not depend on the intent: when, term and billing (removed before numbers are read).
    rest = plain
    timing: str | None = None
    if _AT_RENEWAL.search(rest):
        timing = "at_renewal"
        rest = _AT_RENEWAL.sub(" ", rest)
    billing, rest = find_billing(rest)
    term, rest = find_term(rest)
    when, rest = find_date(rest, today, month_first=(locale or "").lower() == "en-us")
    if when is not None:
        timing = "on_date"
    if timing is None and _NOW.search(rest):
        timing = "now"
        rest = _NOW.sub(" ", rest)

    tokens = _tokens(rest)
    words = set(tokens)
    mention = find_products(tokens, customer_vocabulary)
    product_tokens = tokens[mention.start: mention.end] if mention else []
    others = tokens[: mention.start] + tokens[mention.end:] if mention else tokens
    other_words = set(others)
    date_slot = when.isoformat() if when else None

    def product_slots(prefer_active: bool) -> dict[str, Any]:
        if mention is None:
            name = unknown_name(" ".join(t for t in rest.split()))
            return {"subscription": (), "product": (), "product_text": _as_typed(original, name)} if name else {}
        ids, keys = resolve(mention, customer_vocabulary, prefer_active=prefer_active)
        return {"subscription": ids, "product": keys, "product_text": mention.text}

    direction = 1 if other_words & _ADD else -1 if other_words & _REMOVE else 0
    quantity = _quantity(others, direction)
    asked = original.rstrip().endswith("?") or (bare.split(" ", 1)[0] in _QUESTION_START)

    # Corrections of the pending confirmation ("actually make it 30", "doch lieber 25 zur Verlängerung").
    if mention is None and (quantity or timing) and _CORRECTION.search(plain):
        return result("correction", 0.9, **quantity, timing=timing, date=date_slot)
    if mention is None and not asked and (quantity or timing) and all(t.isdigit() or t[0] in "+-" or t in _FILL_WORDS for t in others):
        # Only a number or a date: the answer to a question the router asked.
        return result("fill", 0.8, **quantity, timing=timing, date=date_slot)

    # Auto-renew on/off.
    renew_words = {"renew", "renewal", "renewing", "renews", "verlangerung", "verlangern", "verlangert", "autoverlangerung", "autorenewal"}
    auto = ("auto" in other_words or "automatic" in other_words or "automatically" in other_words or "automatische" in other_words
            or "automatisch" in other_words or "autoverlangerung" in other_words or "autorenewal" in other_words)
    off = bool(other_words & {"off", "disable", "deactivate", "stop", "dont", "not", "no", "aus", "ausschalten", "abschalten",
                              "deaktivieren", "deaktiviere", "nicht", "stoppen", "stoppe", "beenden", "expire", "auslaufen", "cancel"})
    on = bool(other_words & {"on", "enable", "activate", "resume", "reactivate", "an", "ein", "einschalten", "aktivieren",
                             "aktiviere", "wieder", "reaktivieren", "keep"})
    if other_words & renew_words and (auto or off or on) and not quantity and timing != "at_renewal" or (
        mention is not None and other_words & {"expire", "auslaufen"}
    ):
        enable = False if off and not (on and not off) else True if on else None
        if "wieder" in other_words and not other_words & {"nicht", "not"}:
            enable = True
        return result("renewal.set", 0.9, **product_slots(True), enable=enable)

    # Cancel a subscription (a plain "cancel" was an interruption above).
    cancel_words = {"cancel", "kundige", "kundigen", "kundigung", "terminate", "storniere", "stornieren", "kuendige"}
    if other_words & cancel_words:
        if asked:
            return result("kb.ask", 0.8, question=original)
        if other_words & {"order", "orders", "bestellung", "cart", "warenkorb"}:
            return result("orders.list", 0.7)
        if other_words & {"case", "ticket", "fall", "anfrage"}:
            return result("cases.list", 0.7)
        if mention is not None or other_words & {"subscription", "abo", "abonnement", "vertrag"} or (len(tokens) <= 6 and unknown_name(rest)):
            return result("cancel.subscription", 0.9, **product_slots(True))
        if asked:
            return result("kb.ask", 0.6, question=original)

    # Orders, cart, catalog.
    order_nouns = {"order", "orders", "bestellung", "bestellungen", "bestellstatus", "purchase", "purchases"}
    if other_words & {"cart", "basket", "warenkorb", "einkaufswagen"}:
        return result("cart.show", 0.9)
    if other_words & order_nouns and (
        other_words & {"status", "my", "our", "where", "track", "history", "meine", "meiner", "unsere", "stand", "wo", "show", "zeige", "list", "recent", "letzte", "last", "pending", "offene", "offenen"}
        or bare in ("orders", "bestellungen", "my orders")
    ) and not quantity and mention is None:
        return result("orders.list", 0.9)
    if other_words & {"catalog", "catalogue", "katalog", "pricelist", "preisliste", "shop"} or re.search(r"\b(?:price list|what can (?:i|we) (?:buy|order)|was konnen wir (?:kaufen|bestellen))\b", plain):
        return result("catalog.search", 0.85, query=mention.text if mention else None, **({"product": product_slots(False)["product"]} if mention else {}))
    buying = other_words & {"buy", "purchase", "order", "kaufen", "kaufe", "bestellen", "bestelle", "subscribe"}
    if mention is not None:
        ids, keys = resolve(mention, customer_vocabulary, prefer_active=True)
        if buying and not ids and keys or other_words & {"new", "neues", "neue", "neuen"} and other_words & {"subscription", "abo", "abonnement"} and keys:
            return result("catalog.search", 0.85, query=mention.text, product=keys, **quantity, term=term, billing=billing)
    elif buying and (other_words & {"new", "neue", "neues", "neuen"} or term or billing):
        return result("catalog.search", 0.75, **quantity, term=term, billing=billing)

    # Seats.
    seat_talk = bool(other_words & _SEAT_NOUNS)
    change_verb = bool(other_words & (_ADD | _REMOVE | _SET | _NEED))
    if (quantity and (mention is not None or seat_talk or change_verb)) or (change_verb and seat_talk and not asked) or (
        mention is not None and change_verb and not asked and other_words & (_ADD | _REMOVE)
    ):
        if not (asked and not quantity):
            return result("seats.change", 0.9 if quantity and mention else 0.75, **product_slots(True), **quantity, timing=timing, date=date_slot, term=term, billing=billing)

    # Cases.
    case_nouns = {"case", "cases", "ticket", "tickets", "fall", "falle", "anfrage", "anfragen", "supportfalle", "supportfall", "supportanfragen"}
    if _OPEN_CASE.search(plain) and not re.match(r"(?:how|wie|why|warum|what|was|when|wann)\b", bare):  # "how do I open a case?" is a question
        return result("case.open", 0.9, summary=original)
    if other_words & case_nouns and not other_words & {"maintenance", "outage", "outages"}:
        if other_words & {"resolved", "closed", "geschlossen", "geschlossene", "geschlossenen", "erledigt", "erledigte", "erledigten", "past", "old", "alte"}:
            return result("cases.resolved", 0.9)
        if other_words & {"company", "all", "alle", "firma", "unternehmen", "everyone", "team"} and not other_words & {"my", "meine"}:
            return result("cases.company", 0.9)
        if not (asked and other_words & {"how", "wie"}):
            return result("cases.list", 0.9)

    # Outages and maintenance.
    outage_words = {"outage", "outages", "maintenance", "wartung", "wartungen", "wartungsarbeiten", "storung", "storungen", "ausfall",
                    "ausfalle", "incident", "incidents", "down", "downtime", "servicestatus", "dienststatus", "degraded", "disruption"}
    if other_words & outage_words or re.search(r"\bservice (?:status|health)\b", plain):
        past = other_words & {"past", "previous", "last", "history", "earlier", "vergangene", "vergangenen", "letzte", "letzten", "fruhere", "fruheren", "gestern", "yesterday"}
        return result("outages.past" if past else "outages.status", 0.9)

    # Scheduled changes and the change log.
    if other_words & {"scheduled", "geplant", "geplante", "geplanten", "anstehende", "anstehenden", "upcoming", "pending", "vorgemerkte"} and (
        other_words & {"change", "changes", "anderung", "anderungen", "what", "was"} or bare in ("scheduled", "geplant")
    ):
        return result("changes.list", 0.9)
    if re.search(r"\b(?:change\s*log|changelog|audit\s*log|history|verlauf|protokoll|anderungsprotokoll|anderungsverlauf|who changed|wer hat\b.*\bgeandert|what changed|was wurde geandert|recent changes|letzte anderungen)\b", plain):
        return result("changes.log", 0.9)

    # Knowledge questions and problems.
    how_to = re.search(r"\b(?:how (?:do|can|to|should|would)|wie (?:kann|konnen|mache|richte|setze|andere|funktioniert|geht)|what is|was ist|why|warum|wieso|weshalb)\b", plain)
    if how_to and not (mention is not None and re.search(r"\b(?:how many|wie viele|when|wann)\b", plain)):
        return result("kb.ask", 0.85, question=original)
    if _PROBLEM.search(plain) and not asked:
        return result("case.open", 0.8, summary=original)
    if other_words & {"knowledge", "wissensdatenbank", "articles", "artikel", "faq", "faqs", "kb"} or bare == "how to":
        return result("kb.categories", 0.85)

    # Overview, the list, details.
    if other_words & {"dashboard", "overview", "ubersicht", "uberblick", "summary", "zusammenfassung"} or re.search(
        r"\b(?:what do (?:we|i) have|what have we got|was haben wir|at a glance|auf einen blick)\b", plain
    ) or bare in ("status", "home", "start"):
        return result("overview", 0.9)
    if other_words & {"switch", "wechsle", "wechseln"} and other_words & {"customer", "kunde", "kunden"} or bare in ("customers", "kunden"):
        return result("customer.choose", 0.9)
    if mention is not None:
        if asked and not re.search(r"\b(?:how many|wie viele|when|wann|which|welche)\b", plain) and len(others) > 3:
            return result("kb.ask", 0.6, question=original)
        return result("subscription.details", 0.85 if others else 0.8, **product_slots(False))
    if other_words & {"subscriptions", "subscription", "abonnements", "abonnement", "abos", "abo", "licences", "licenses", "lizenzen", "products", "produkte", "vertrage"} or bare in ("list", "liste"):
        return result("subscriptions.list", 0.85)
    if asked:
        return result("kb.ask", 0.6, question=original)
    if len(tokens) >= 3:
        return result("kb.ask", 0.4, question=original)
    if len(tokens) == 1 and len(tokens[0]) >= 5:  # one mistyped command word: "subscritions", "dashbord"
        for word, intent in _COMMANDS.items():
            if _close(tokens[0], word, 1 if len(word) < 8 else 2):
                return result(intent, 0.6)
    return result("unknown", 0.2)


_COMMANDS = {
    "subscriptions": "subscriptions.list", "abonnements": "subscriptions.list", "licences": "subscriptions.list", "licenses": "subscriptions.list",
    "lizenzen": "subscriptions.list", "dashboard": "overview", "overview": "overview", "ubersicht": "overview", "outages": "outages.status",
    "maintenance": "outages.status", "wartung": "outages.status", "tickets": "cases.list", "cases": "cases.list", "help": "help", "hilfe": "help",
    "catalog": "catalog.search", "katalog": "catalog.search", "orders": "orders.list", "bestellungen": "orders.list",
}
