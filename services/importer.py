"""Import catalogs, products, customers (users, subscriptions, scheduled changes), case questions
and outages from one YAML or JSON document (the format: `docs/import-format.md`).

Three steps, so nothing half-imported can stay behind:
1. read the file, keeping the line of every value, and check it against `import_schema.json`;
2. inside one transaction, check every cross reference against the file and what the database
   already holds, before anything is written;
3. upsert by natural keys (importing the same file twice changes nothing), then commit —
   any error rolls the whole import back.

Dates may be written relative to the clock's "today" (`today-3d`, `today+2w`, `today-11M`,
`today+7d 22:00`, `now-2h`), so the demo shows the same interesting states whenever it is loaded.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml
from jsonschema import Draft202012Validator
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clock import Clock
from services.commerce import add_months, commitment_end_for, renewal_date
from services.models import (
    BillingCycle,
    CaseQuestion,
    Catalog,
    CatalogProduct,
    ChangeKind,
    ChangeStatus,
    ChangeTiming,
    Customer,
    Offer,
    Outage,
    OutageKind,
    Product,
    QuestionKind,
    Role,
    ScheduledChange,
    Subscription,
    SubscriptionStatus,
    Term,
    User,
    UserStatus,
)

SCHEMA_PATH = Path(__file__).with_name("import_schema.json")
DEMO_PATH = Path(__file__).with_name("demo.yaml")

KINDS = (
    "catalogs",
    "products",
    "offers",
    "customers",
    "users",
    "subscriptions",
    "scheduled_changes",
    "case_questions",
    "outages",
)

DEFAULT_APPROVAL_POLICY: dict[str, Any] = {
    "modify_requires_approval": False,
    "amount_per_month_threshold": None,
    "approver_roles": ["admin"],
    "admin_auto_approve": True,
    "expire_after_hours": 72,
    "remind_after_hours": 24,
}

# Which billing cycles Microsoft sells with which term (a P1M term cannot be billed annually).
_BILLING_FOR_TERM = {
    Term.P1M: {BillingCycle.MONTHLY, BillingCycle.NONE},
    Term.P1Y: {BillingCycle.MONTHLY, BillingCycle.ANNUAL, BillingCycle.NONE},
    Term.P3Y: {BillingCycle.MONTHLY, BillingCycle.ANNUAL, BillingCycle.TRIENNIAL},
}


class ImportFileError(Exception):
    """An import file Seatdesk cannot take; says where (line and field path) and what is wrong."""

    def __init__(self, message: str, line: int | None = None, path: str = "", *, source: str | None = None):
        self.message = message
        self.line = line
        self.path = path
        self.source = source
        super().__init__(message, line, path)

    def __str__(self) -> str:
        where = " ".join(part for part in (self.source, f"line {self.line}" if self.line else None) if part)
        if self.path:
            where = f"{where}, {self.path}" if where else self.path
        return f"{where}: {self.message}" if where else self.message


@dataclass
class ImportReport:
    """What an import did, per kind of record."""

    source: str
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    @property
    def total_created(self) -> int:
        return sum(self.created.values())

    @property
    def total_updated(self) -> int:
        return sum(self.updated.values())

    def count(self, kind: str, outcome: str) -> None:
        getattr(self, outcome)[kind] += 1

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        lines = [f"Imported {self.source}:"]
        for kind in KINDS:
            c, u, n = self.created[kind], self.updated[kind], self.unchanged[kind]
            if c or u or n:
                lines.append(f"  {kind.replace('_', ' ')}: {c} created, {u} updated, {n} unchanged")
        if len(lines) == 1:
            lines.append("  nothing in the file")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Reading: YAML and JSON with the line of every value
# --------------------------------------------------------------------------------------------


class _Mapping(dict):
    """A mapping from the file that remembers where its keys and values start."""

    def __init__(self, line: int | None = None):
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int]] = []


class _Sequence(list):
    def __init__(self, items: Iterable[Any] = (), line: int | None = None, item_lines: list[int] | None = None):
        super().__init__(items)
        self.line = line
        self.item_lines = item_lines or []


class _MarkedLoader(yaml.SafeLoader):
    """SafeLoader that keeps line numbers, leaves dates as text and reads decimals exactly."""


# Dates stay strings: the importer reads them itself (and relative dates are strings anyway).
_MarkedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _MarkedLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    result = _Mapping(node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from None
        if key in result:
            result.duplicates.append((key, key_node.start_mark.line + 1))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
        result.value_lines[key] = value_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _MarkedLoader, node: yaml.SequenceNode) -> _Sequence:
    items = [loader.construct_object(child, deep=True) for child in node.value]
    return _Sequence(items, node.start_mark.line + 1, [child.start_mark.line + 1 for child in node.value])


def _construct_float(loader: _MarkedLoader, node: yaml.ScalarNode) -> Decimal | float:
    text = loader.construct_scalar(node)
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation:
        return loader.construct_yaml_float(node)
    return value if value.is_finite() else loader.construct_yaml_float(node)


_MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_MarkedLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_MarkedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "not valid YAML"
        raise ImportFileError(f"not valid YAML: {problem}", mark.line + 1 if mark else None, source=source) from None
    except yaml.YAMLError as exc:
        raise ImportFileError(f"not valid YAML: {exc}", source=source) from None


def _load_json(text: str, source: str) -> Any:
    try:
        plain = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno, source=source) from None
    # JSON is (nearly) YAML: read it once more to learn the lines, and use that only if it agrees.
    try:
        marked = yaml.load(text, Loader=_MarkedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return plain
    return marked if marked == plain else plain


def _plain(value: Any) -> Any:
    """Data handed in by a caller: dates to ISO text, floats to Decimal (as written), keeping marks."""
    if isinstance(value, _Mapping):
        for key, item in list(value.items()):
            dict.__setitem__(value, key, _plain(item))
        return value
    if isinstance(value, _Sequence):
        value[:] = [_plain(item) for item in value]
        return value
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


# --------------------------------------------------------------------------------------------
# Locating and explaining problems
# --------------------------------------------------------------------------------------------

PathT = tuple[Any, ...]


def _format_path(path: PathT) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


class _Document:
    def __init__(self, data: Any, source: str):
        self.data = data
        self.source = source

    def line(self, path: PathT, *, at_key: bool = False) -> int | None:
        node = self.data
        line = getattr(node, "line", None)
        for index, step in enumerate(path):
            last = index == len(path) - 1
            if isinstance(node, _Mapping) and step in node:
                lines = node.key_lines if (last and at_key) else node.value_lines
                line = lines.get(step, line)
                node = node[step]
            elif isinstance(node, _Sequence) and isinstance(step, int) and 0 <= step < len(node):
                line = node.item_lines[step] if step < len(node.item_lines) else line
                node = node[step]
            else:
                break
        return line

    def error(self, path: PathT, message: str, *, at_key: bool = False) -> ImportFileError:
        return ImportFileError(message, self.line(path, at_key=at_key), _format_path(path), source=self.source)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = _schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _field_name(path: PathT) -> str:
    return next((step for step in reversed(path) if isinstance(step, str)), "value")


def _explain(doc: _Document, error) -> ImportFileError:
    path = tuple(error.absolute_path)
    kind = error.validator
    if kind in ("anyOf", "oneOf") and error.context:
        deeper = [e for e in error.context if len(e.relative_path) > 0]
        if deeper:
            return _explain(doc, max(deeper, key=lambda e: len(e.relative_path)))
    if not path and kind == "type":
        return doc.error(path, "the file must be a mapping with catalogs, products, customers, case_questions and outages")
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = next(key for key in error.instance if key not in allowed)
        close = difflib.get_close_matches(str(extra), allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
        return doc.error(path + (extra,), f"unknown field '{extra}'; {hint}", at_key=True)
    if kind == "required":
        missing = next(name for name in error.validator_value if name not in error.instance)
        return doc.error(path, f"'{missing}' is required")
    if kind == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return doc.error(path, f"{_field_name(path)} {_show(error.instance)} is not one of {allowed}")
    if kind == "const":
        return doc.error(path, f"{_field_name(path)} must be {error.validator_value!r}")
    if kind in ("type", "pattern", "anyOf", "oneOf") and "description" in error.schema and path:
        return doc.error(path, f"{_show(error.instance)} is not {error.schema['description']}")
    if kind == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        return doc.error(path, f"{_field_name(path)} should be {words} (got {_show(error.instance)})")
    return doc.error(path, error.message)


_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "empty",
}


def _check_schema(doc: _Document) -> None:
    ranked = []
    for error in _validator().iter_errors(doc.data):
        problem = _explain(doc, error)
        # Group by the object the problem is in; within it, an unknown (mistyped) field explains
        # a missing one better than the other way round.
        path = tuple(error.absolute_path)
        holder = path if error.validator in ("required", "additionalProperties") else path[:-1]
        ranked.append(((doc.line(holder) or 1 << 30, error.validator != "additionalProperties", problem.line or 1 << 30), problem))
    if not ranked:
        return
    problems = [problem for _, problem in sorted(ranked, key=lambda item: item[0])]
    first = problems[0]
    if len(problems) > 1:
        first.message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    raise first


def _check_duplicate_keys(doc: _Document, node: Any, path: PathT = ()) -> None:
    if isinstance(node, _Mapping):
        if node.duplicates:
            key, line = node.duplicates[0]
            raise ImportFileError(f"'{key}' is given twice in the same mapping", line, _format_path(path + (key,)), source=doc.source)
        for key, value in node.items():
            _check_duplicate_keys(doc, value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_duplicate_keys(doc, value, path + (index,))


# --------------------------------------------------------------------------------------------
# Values: dates relative to the clock, money
# --------------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(today|now)((?:[+-]\d+[yMwdhm])*)(?:[ T](\d{1,2}):(\d{2}))?$")
_OFFSET = re.compile(r"([+-])(\d+)([yMwdhm])")


class _Values:
    """Turns the file's text into dates, times and amounts; `today`/`now` come from the clock."""

    def __init__(self, doc: _Document, now: datetime):
        self.doc = doc
        self.now = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
        self.today = self.now.date()

    def _relative(self, text: str, path: PathT, *, with_time: bool) -> datetime | None:
        match = _RELATIVE.match(text)
        if not match:
            return None
        anchor, offsets, hour, minute = match.groups()
        if anchor == "now" and not with_time:
            raise self.doc.error(path, f"{text!r}: a date is expected here; write today{offsets}")
        moment = self.now if anchor == "now" else datetime.combine(self.today, time(), timezone.utc)
        for sign, amount, unit in _OFFSET.findall(offsets):
            n = int(amount) * (1 if sign == "+" else -1)
            if unit in "hm" and anchor == "today":
                raise self.doc.error(path, f"{text!r}: '{unit}' (hours or minutes) only works after now; months are 'M'")
            if unit == "y":
                moment = datetime.combine(add_months(moment.date(), 12 * n), moment.timetz())
            elif unit == "M":
                moment = datetime.combine(add_months(moment.date(), n), moment.timetz())
            else:
                moment += {"w": timedelta(weeks=n), "d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
        if hour is not None:
            if not with_time:
                raise self.doc.error(path, f"{text!r}: a date without a time is expected here")
            if int(hour) > 23 or int(minute) > 59:
                raise self.doc.error(path, f"{text!r} is not a valid time of day")
            moment = moment.replace(hour=int(hour), minute=int(minute))
        return moment

    def date(self, value: Any, path: PathT) -> date:
        relative = self._relative(str(value), path, with_time=False)
        if relative is not None:
            return relative.date()
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.doc.error(path, f"{_show(value)} is not a valid date (YYYY-MM-DD, or today-3d)") from None

    def datetime(self, value: Any, path: PathT) -> datetime:
        text = str(value)
        relative = self._relative(text, path, with_time=True)
        if relative is not None:
            return relative
        try:
            if len(text) == 10:
                return datetime.combine(date.fromisoformat(text), time(), timezone.utc)
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.doc.error(path, f"{_show(value)} is not a valid date and time (2026-11-22T09:00:00Z)") from None
        # Without a zone the file means UTC.
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)

    def money(self, value: Any, path: PathT) -> Decimal:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise self.doc.error(path, f"{_show(value)} is not an amount such as \"12.50\"") from None
        if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -4:
            raise self.doc.error(path, f"{_show(value)} is not an amount such as \"12.50\" (not negative, at most four decimals)")
        return amount


# --------------------------------------------------------------------------------------------
# The plan: the file's records, resolved and checked
# --------------------------------------------------------------------------------------------


@dataclass
class _CatalogRec:
    path: PathT
    key: str
    name: str
    is_global: bool
    products: list[str] | None  # None: every product


@dataclass
class _ProductRec:
    path: PathT
    key: str
    values: dict[str, Any]
    addon_of: str | None


@dataclass
class _OfferRec:
    path: PathT
    product: str
    term: Term
    billing: BillingCycle
    is_trial: bool
    values: dict[str, Any]


@dataclass
class _CustomerRec:
    path: PathT
    key: str
    tenant_id: str
    values: dict[str, Any]
    catalog: str | None
    existing: Customer | None = None


@dataclass
class _UserRec:
    path: PathT
    customer: str
    aad_object_id: str
    values: dict[str, Any]


@dataclass
class _SubscriptionRec:
    path: PathT
    customer: str
    provider_id: str
    offer: tuple[str, Term, BillingCycle, bool]
    values: dict[str, Any]
    parent: str | None


@dataclass
class _ChangeRec:
    path: PathT
    customer: str
    subscription: str
    reference: str
    values: dict[str, Any]
    created_by: str | None


@dataclass
class _QuestionRec:
    path: PathT
    customer: str | None
    key: str
    values: dict[str, Any]


@dataclass
class _OutageRec:
    path: PathT
    key: str
    customer: str | None
    values: dict[str, Any]


@dataclass
class _Existing:
    """What the database holds before the import (all in the import's transaction)."""

    catalogs: dict[str, Catalog]
    products: dict[str, Product]
    offers: dict[tuple[int, Term, BillingCycle, bool], Offer]
    customers: dict[str, Customer]
    customers_by_tenant: dict[str, Customer]
    users: dict[tuple[int, str], User]
    subscriptions: dict[tuple[int, str], Subscription]
    changes: dict[str, ScheduledChange]
    questions: dict[tuple[int | None, str], CaseQuestion]
    outages: dict[str, Outage]
    links: set[tuple[int, int]]

    @classmethod
    async def load(cls, session: AsyncSession) -> "_Existing":
        async def rows(model):
            return list((await session.scalars(select(model))).unique())

        products = await rows(Product)
        customers = await rows(Customer)
        links = (await session.execute(select(CatalogProduct.catalog_id, CatalogProduct.product_id))).all()
        return cls(
            catalogs={c.key: c for c in await rows(Catalog)},
            products={p.key: p for p in products},
            offers={(o.product_id, o.term, o.billing, o.is_trial): o for o in await rows(Offer)},
            customers={c.key: c for c in customers},
            customers_by_tenant={c.tenant_id.lower(): c for c in customers},
            users={(u.customer_id, u.aad_object_id.lower()): u for u in await rows(User)},
            subscriptions={(s.customer_id, s.provider_id): s for s in await rows(Subscription)},
            changes={c.reference: c for c in await rows(ScheduledChange) if c.reference},
            questions={(q.customer_id, q.key): q for q in await rows(CaseQuestion)},
            outages={o.key: o for o in await rows(Outage)},
            links={(c, p) for c, p in links},
        )

    def product_by_id(self, product_id: int | None) -> Product | None:
        return next((p for p in self.products.values() if p.id == product_id), None)


@dataclass
class _Plan:
    catalogs: list[_CatalogRec] = field(default_factory=list)
    products: list[_ProductRec] = field(default_factory=list)
    offers: list[_OfferRec] = field(default_factory=list)
    customers: list[_CustomerRec] = field(default_factory=list)
    users: list[_UserRec] = field(default_factory=list)
    subscriptions: list[_SubscriptionRec] = field(default_factory=list)
    changes: list[_ChangeRec] = field(default_factory=list)
    questions: list[_QuestionRec] = field(default_factory=list)
    outages: list[_OutageRec] = field(default_factory=list)


class _Planner:
    """Reads the schema-valid document into records and checks every rule and reference."""

    def __init__(self, doc: _Document, existing: _Existing, now: datetime):
        self.doc = doc
        self.db = existing
        self.values = _Values(doc, now)
        self.plan = _Plan()

    def fail(self, path: PathT, message: str) -> ImportFileError:
        return self.doc.error(path, message)

    def build(self) -> _Plan:
        data = self.doc.data
        self._products(data.get("products") or [])
        self._catalogs(data.get("catalogs") or [])
        self._customers(data.get("customers") or [])
        self._questions(data.get("case_questions") or [], None, ("case_questions",))
        self._outages(data.get("outages") or [])
        return self.plan

    # -- products and offers
    def _products(self, items: list[dict]) -> None:
        seen: dict[str, PathT] = {}
        for i, item in enumerate(items):
            path = ("products", i)
            key = item["key"]
            if key in seen:
                raise self.fail(path + ("key",), f"product '{key}' is defined twice (first at {_format_path(seen[key])})")
            seen[key] = path
            values = {
                "name": item["name"],
                "aliases": list(item.get("aliases", [])),
                "category": item.get("category", "Microsoft 365"),
                "description": item.get("description", ""),
                "provider_product_id": item.get("provider_product_id"),
                "provider_sku_id": item.get("provider_sku_id"),
                "graph_sku_id": item.get("graph_sku_id"),
                "sku_part_number": item.get("sku_part_number"),
            }
            self.plan.products.append(_ProductRec(path, key, values, item.get("addon_of")))
            self._offers(key, item.get("offers") or [], path + ("offers",))
        self.file_products = {rec.key: rec for rec in self.plan.products}
        for rec in self.plan.products:
            if rec.addon_of is None:
                continue
            where = rec.path + ("addon_of",)
            if rec.addon_of == rec.key:
                raise self.fail(where, f"product '{rec.key}' cannot be an add-on of itself")
            if not self.product_known(rec.addon_of):
                raise self.fail(where, f"product '{rec.addon_of}' is not defined")
            if self.addon_base(rec.addon_of) is not None:
                raise self.fail(where, f"product '{rec.addon_of}' is itself an add-on; an add-on must belong to a base product")

    def _offers(self, product: str, items: list[dict], base: PathT) -> None:
        seen: dict[tuple, PathT] = {}
        for i, item in enumerate(items):
            path = base + (i,)
            term, billing, trial = Term(item["term"]), BillingCycle(item["billing"]), bool(item.get("trial", False))
            if (term, billing, trial) in seen:
                raise self.fail(path, f"product '{product}' already has a {term.value}/{billing.value}{' trial' if trial else ''} offer (at {_format_path(seen[(term, billing, trial)])})")
            seen[(term, billing, trial)] = path
            if billing not in _BILLING_FOR_TERM[term]:
                raise self.fail(path + ("billing",), f"a {term.value} term cannot be billed {billing.value}")
            low, high = item.get("min_quantity", 1), item.get("max_quantity", 300)
            if low > high:
                raise self.fail(path + ("max_quantity",), f"max_quantity {high} is below min_quantity {low}")
            values = {
                "unit_price_monthly": self.values.money(item["price_per_seat_month"], path + ("price_per_seat_month",)),
                "currency": item.get("currency", "EUR"),
                "catalog_item_id": item.get("catalog_item_id"),
                "cancellation_window_hours": item.get("cancellation_window_hours", 168),
                "min_quantity": low,
                "max_quantity": high,
            }
            self.plan.offers.append(_OfferRec(path, product, term, billing, trial, values))

    def product_known(self, key: str) -> bool:
        return key in self.file_products or key in self.db.products

    def addon_base(self, key: str) -> str | None:
        if key in self.file_products:
            return self.file_products[key].addon_of
        product = self.db.products.get(key)
        base = self.db.product_by_id(product.addon_of_id) if product else None
        return base.key if base else None

    def offer_known(self, product: str, term: Term, billing: BillingCycle, trial: bool) -> _OfferRec | Offer | None:
        for rec in self.plan.offers:
            if (rec.product, rec.term, rec.billing, rec.is_trial) == (product, term, billing, trial):
                return rec
        existing = self.db.products.get(product)
        return self.db.offers.get((existing.id, term, billing, trial)) if existing else None

    # -- catalogs
    def _catalogs(self, items: list[dict]) -> None:
        seen: dict[str, PathT] = {}
        for i, item in enumerate(items):
            path = ("catalogs", i)
            key = item["key"]
            if key in seen:
                raise self.fail(path + ("key",), f"catalog '{key}' is defined twice (first at {_format_path(seen[key])})")
            seen[key] = path
            is_global = bool(item.get("global", False))
            products = item.get("products", [])
            if products == "all":
                if not is_global:
                    raise self.fail(path + ("products",), "only the global catalog can offer all products; list the product keys")
                products = None
            else:
                for j, product in enumerate(products):
                    if not self.product_known(product):
                        raise self.fail(path + ("products", j), f"product '{product}' is not defined")
                    if products.index(product) != j:
                        raise self.fail(path + ("products", j), f"product '{product}' is listed twice")
            self.plan.catalogs.append(_CatalogRec(path, key, item["name"], is_global, products))
        globals_ = [rec for rec in self.plan.catalogs if rec.is_global]
        if len(globals_) > 1:
            raise self.fail(globals_[1].path + ("global",), f"only one catalog can be global; '{globals_[0].key}' already is")
        if globals_:
            other = next((c for c in self.db.catalogs.values() if c.is_global and c.key not in seen), None)
            if other is not None:
                raise self.fail(globals_[0].path + ("global",), f"catalog '{other.key}' is already the global catalog; only one catalog can be global")
        self.file_catalogs = set(seen)

    # -- customers and everything inside them
    def _customers(self, items: list[dict]) -> None:
        keys: dict[str, PathT] = {}
        tenants: dict[str, PathT] = {}
        for i, item in enumerate(items):
            path = ("customers", i)
            key, tenant = item["key"], item["tenant_id"].lower()
            if key in keys:
                raise self.fail(path + ("key",), f"customer '{key}' is defined twice (first at {_format_path(keys[key])})")
            if tenant in tenants:
                raise self.fail(path + ("tenant_id",), f"tenant {tenant} is already customer {_format_path(tenants[tenant])}")
            keys[key], tenants[tenant] = path, path
        self.file_customers = set(keys)
        partners = [i for i, item in enumerate(items) if item.get("partner")]
        if len(partners) > 1:
            raise self.fail(("customers", partners[1], "partner"), "only one customer can be the partner (the MSP's own tenant)")
        if partners:
            other = next((c for c in self.db.customers.values() if c.is_partner and c.key not in keys), None)
            if other is not None:
                raise self.fail(("customers", partners[0], "partner"), f"customer '{other.key}' is already the partner")
        self.file_users: dict[str, set[str]] = {}
        self.existing_customers: dict[str, Customer] = {}
        self.partner_staff = {
            item_user["email"].lower()
            for item in items
            if item.get("partner")
            for item_user in item.get("users", [])
            if item_user.get("partner_staff")
        }
        for i, item in enumerate(items):
            self._customer(item, ("customers", i))

    def _customer(self, item: dict, path: PathT) -> None:
        key, tenant = item["key"], item["tenant_id"].lower()
        existing = self.db.customers.get(key)
        if existing is not None and existing.tenant_id.lower() != tenant:
            raise self.fail(path + ("tenant_id",), f"customer '{key}' already exists with tenant {existing.tenant_id}; a tenant id does not change")
        by_tenant = self.db.customers_by_tenant.get(tenant)
        if existing is None and by_tenant is not None:
            if by_tenant.key in self.file_customers:
                raise self.fail(path + ("tenant_id",), f"tenant {tenant} belongs to customer '{by_tenant.key}'")
            existing = by_tenant  # the same tenant under a new key: the key is renamed
        catalog = item.get("catalog")
        if catalog is not None and catalog not in self.file_catalogs and catalog not in self.db.catalogs:
            raise self.fail(path + ("catalog",), f"catalog '{catalog}' is not defined")
        values = {
            "name": item["name"],
            "domain": item.get("domain", ""),
            "is_partner": bool(item.get("partner", False)),
            "approval_policy": self._policy(item.get("approval_policy") or {}, path + ("approval_policy",)),
        }
        self.plan.customers.append(_CustomerRec(path, key, item["tenant_id"], values, catalog, existing))
        if existing is not None:
            self.existing_customers[key] = existing
        self._users(key, bool(item.get("partner")), item.get("users") or [], path + ("users",))
        self._subscriptions(key, item.get("subscriptions") or [], path + ("subscriptions",))
        self._questions(item.get("case_questions") or [], key, path + ("case_questions",))

    def _policy(self, item: dict, path: PathT) -> dict[str, Any]:
        policy = {**DEFAULT_APPROVAL_POLICY, **item}
        threshold = policy["amount_per_month_threshold"]
        if threshold is not None:
            # Kept as text in the JSON column: exact, and read back with Decimal(...).
            policy["amount_per_month_threshold"] = str(self.values.money(threshold, path + ("amount_per_month_threshold",)))
        if policy["remind_after_hours"] >= policy["expire_after_hours"]:
            raise self.fail(path + ("remind_after_hours",), "remind_after_hours must be less than expire_after_hours")
        policy["approver_roles"] = list(policy["approver_roles"])
        return policy

    def _users(self, customer: str, is_partner: bool, items: list[dict], base: PathT) -> None:
        aads: dict[str, PathT] = {}
        emails: dict[str, PathT] = {}
        for i, item in enumerate(items):
            path = base + (i,)
            aad, email = item["aad_object_id"].lower(), item["email"].lower()
            if aad in aads:
                raise self.fail(path + ("aad_object_id",), f"user {aad} is listed twice (first at {_format_path(aads[aad])})")
            if email in emails:
                raise self.fail(path + ("email",), f"{item['email']} is listed twice (first at {_format_path(emails[email])})")
            aads[aad], emails[email] = path, path
            if item.get("partner_staff") and not is_partner:
                raise self.fail(path + ("partner_staff",), "partner_staff is only for users of the partner customer (the MSP's technicians)")
            values = {
                "email": item["email"],
                "name": item["name"],
                "role": Role(item["role"]),
                "status": UserStatus(item.get("status", "active")),
                "is_partner_staff": bool(item.get("partner_staff", False)),
                "locale": item.get("locale"),
            }
            self.plan.users.append(_UserRec(path, customer, aad, values))
        self.file_users[customer] = set(emails)

    def _subscriptions(self, customer: str, items: list[dict], base: PathT) -> None:
        ids: dict[str, PathT] = {}
        records: list[_SubscriptionRec] = []
        for i, item in enumerate(items):
            path = base + (i,)
            provider_id = item["id"]
            if provider_id in ids:
                raise self.fail(path + ("id",), f"subscription '{provider_id}' is listed twice (first at {_format_path(ids[provider_id])})")
            ids[provider_id] = path
            product = item["product"]
            if not self.product_known(product):
                raise self.fail(path + ("product",), f"product '{product}' is not defined")
            term, billing, trial = Term(item["term"]), BillingCycle(item["billing"]), bool(item.get("trial", False))
            offer = self.offer_known(product, term, billing, trial)
            if offer is None:
                kind = f"{term.value}/{billing.value}{' trial' if trial else ''}"
                raise self.fail(path + ("billing",), f"product '{product}' has no {kind} offer")
            term_start = self.values.datetime(item["term_start"], path + ("term_start",))
            start_date = self.values.date(item["start_date"], path + ("start_date",)) if "start_date" in item else term_start.date()
            if term_start.date() < start_date:
                raise self.fail(path + ("term_start",), f"term_start {term_start.date()} is before start_date {start_date}")
            if "commitment_end" in item:
                commitment_end = self.values.date(item["commitment_end"], path + ("commitment_end",))
                if commitment_end < term_start.date():
                    raise self.fail(path + ("commitment_end",), f"commitment_end {commitment_end} before term_start {term_start.date()}")
            else:
                commitment_end = commitment_end_for(term_start.date(), term)
            values = {
                "quantity": item["quantity"],
                "assigned_seats": item.get("assigned_seats"),
                "status": SubscriptionStatus(item.get("status", "active")),
                "is_trial": trial,
                "auto_renew": bool(item.get("auto_renew", True)),
                "start_date": start_date,
                "term_start": term_start,
                "commitment_end": commitment_end,
                "nickname": item.get("nickname"),
            }
            record = _SubscriptionRec(path, customer, provider_id, (product, term, billing, trial), values, item.get("parent"))
            records.append(record)
            self._changes(record, offer, item.get("scheduled_changes") or [], path + ("scheduled_changes",))
        by_id = {rec.provider_id: rec for rec in records}
        existing_customer = self.existing_customers.get(customer)
        for rec in records:
            if rec.parent is None:
                continue
            where = rec.path + ("parent",)
            if rec.parent == rec.provider_id:
                raise self.fail(where, "a subscription cannot be its own parent")
            if rec.parent in by_id:
                parent_product, grandparent = by_id[rec.parent].offer[0], by_id[rec.parent].parent
            else:
                stored = self.db.subscriptions.get((existing_customer.id, rec.parent)) if existing_customer else None
                if stored is None:
                    raise self.fail(where, f"parent subscription '{rec.parent}' not found in customer '{customer}'")
                parent_product, grandparent = stored.offer.product.key, stored.parent_id
            if grandparent is not None or self.addon_base(parent_product) is not None:
                raise self.fail(where, f"parent subscription '{rec.parent}' is itself an add-on")
            if self.addon_base(rec.offer[0]) is None:
                raise self.fail(where, f"product '{rec.offer[0]}' is not an add-on, so its subscription has no parent")
        self.plan.subscriptions.extend(records)

    def _changes(self, sub: _SubscriptionRec, offer: _OfferRec | Offer, items: list[dict], base: PathT) -> None:
        known = {rec.reference: rec.path for rec in self.plan.changes}
        low = offer.values["min_quantity"] if isinstance(offer, _OfferRec) else offer.min_quantity
        high = offer.values["max_quantity"] if isinstance(offer, _OfferRec) else offer.max_quantity
        renewal = renewal_date(sub.values["commitment_end"])
        for i, item in enumerate(items):
            path = base + (i,)
            timing = ChangeTiming(item["timing"])
            effective = self.values.date(item["effective_date"], path + ("effective_date",)) if "effective_date" in item else None
            if timing is ChangeTiming.AT_RENEWAL:
                if not sub.values["auto_renew"]:
                    raise self.fail(path + ("timing",), "a change at renewal needs auto_renew: true (the subscription would expire instead)")
                if effective is not None and effective != renewal:
                    raise self.fail(path + ("effective_date",), f"a change at renewal takes effect on {renewal} (the day after commitment_end); leave effective_date out")
                effective = renewal
            elif effective is None:
                raise self.fail(path, "'effective_date' is required for a change on_date")
            elif not sub.values["term_start"].date() < effective <= sub.values["commitment_end"]:
                raise self.fail(path + ("effective_date",), f"{effective} is not within the current term ({sub.values['term_start'].date()} – {sub.values['commitment_end']})")
            if not low <= item["new_quantity"] <= high:
                raise self.fail(path + ("new_quantity",), f"new_quantity must be between {low} and {high} for this offer")
            # Without a reference, the subscription and the change's place in its list name it.
            reference = item.get("reference") or "imp-" + hashlib.sha256(
                f"{sub.customer}\x1f{sub.provider_id}\x1f{i}".encode()
            ).hexdigest()[:20]
            if reference in known:
                raise self.fail(path + ("reference",), f"reference '{reference}' is used twice (first at {_format_path(known[reference])})")
            stored = self.db.changes.get(reference)
            if stored is not None:
                customer = self.existing_customers.get(sub.customer)
                mine = self.db.subscriptions.get((customer.id, sub.provider_id)) if customer else None
                if mine is None or stored.subscription_id != mine.id:
                    raise self.fail(path + ("reference",), f"reference '{reference}' already belongs to another subscription")
            known[reference] = path
            created_by = item.get("created_by")
            if created_by is not None and not self.author_known(sub.customer, created_by):
                raise self.fail(path + ("created_by",), f"no user {created_by} in customer '{sub.customer}' or among the partner's technicians")
            values = {"timing": timing, "effective_date": effective, "new_quantity": item["new_quantity"]}
            self.plan.changes.append(_ChangeRec(path, sub.customer, sub.provider_id, reference, values, created_by))

    def author_known(self, customer: str, email: str) -> bool:
        email = email.lower()
        if email in self.file_users.get(customer, set()) or email in self.partner_staff:
            return True
        existing = self.existing_customers.get(customer)
        return any(
            user.email.lower() == email and ((existing is not None and user.customer_id == existing.id) or user.is_partner_staff)
            for user in self.db.users.values()
        )

    def _questions(self, items: list[dict], customer: str | None, base: PathT) -> None:
        seen: dict[str, PathT] = {}
        for i, item in enumerate(items):
            path = base + (i,)
            key = item["key"]
            if key in seen:
                raise self.fail(path + ("key",), f"case question '{key}' is defined twice (first at {_format_path(seen[key])})")
            seen[key] = path
            kind = QuestionKind(item["kind"])
            choices = list(item.get("choices", []))
            if kind is QuestionKind.CHOICE and len(choices) < 2:
                raise self.fail(path + ("choices",), "a choice question needs at least two choices")
            if kind is not QuestionKind.CHOICE and choices:
                raise self.fail(path + ("choices",), f"only choice questions have choices (this one is {kind.value})")
            values = {"label": item["label"], "kind": kind, "required": bool(item.get("required", False)), "choices": choices, "position": i}
            self.plan.questions.append(_QuestionRec(path, customer, key, values))

    def _outages(self, items: list[dict]) -> None:
        seen: dict[str, PathT] = {}
        for i, item in enumerate(items):
            path = ("outages", i)
            key = item["key"]
            if key in seen:
                raise self.fail(path + ("key",), f"outage '{key}' is defined twice (first at {_format_path(seen[key])})")
            seen[key] = path
            customer = item.get("customer")
            if customer is not None and customer not in self.file_customers and customer not in self.db.customers:
                raise self.fail(path + ("customer",), f"customer '{customer}' is not defined")
            starts = self.values.datetime(item["starts_at"], path + ("starts_at",))
            ends = self.values.datetime(item["ends_at"], path + ("ends_at",)) if item.get("ends_at") is not None else None
            if ends is not None and ends <= starts:
                raise self.fail(path + ("ends_at",), "ends_at must be after starts_at")
            values = {
                "kind": OutageKind(item["kind"]),
                "title": item["title"],
                "description": item.get("description", ""),
                "services": list(item.get("services", [])),
                "starts_at": starts,
                "ends_at": ends,
            }
            self.plan.outages.append(_OutageRec(path, key, customer, values))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _apply(obj: Any, values: dict[str, Any]) -> bool:
    """Set what differs; True when anything did."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


class _Writer:
    def __init__(self, session: AsyncSession, doc: _Document, db: _Existing, plan: _Plan, now: datetime, report: ImportReport):
        self.session = session
        self.doc = doc
        self.db = db
        self.plan = plan
        self.now = now
        self.report = report
        # kind -> natural key -> created/updated/unchanged; counted into the report at the end.
        self.outcomes: dict[str, dict[Any, str]] = {kind: {} for kind in KINDS}

    def _upsert(self, kind: str, key: Any, existing: Any, make, values: dict[str, Any]) -> Any:
        if existing is None:
            obj = make()
            _apply(obj, values)
            self.session.add(obj)
            self.outcomes[kind][key] = "created"
            return obj
        self.outcomes[kind][key] = "updated" if _apply(existing, values) else "unchanged"
        return existing

    def _touched(self, kind: str, key: Any) -> None:
        if self.outcomes[kind].get(key) == "unchanged":
            self.outcomes[kind][key] = "updated"

    async def write(self) -> None:
        db, plan, flush = self.db, self.plan, self.session.flush

        catalogs: dict[str, Catalog] = dict(db.catalogs)
        for rec in plan.catalogs:
            catalogs[rec.key] = self._upsert(
                "catalogs", rec.key, db.catalogs.get(rec.key), lambda rec=rec: Catalog(key=rec.key), {"name": rec.name, "is_global": rec.is_global}
            )

        products: dict[str, Product] = dict(db.products)
        for rec in plan.products:
            products[rec.key] = self._upsert("products", rec.key, db.products.get(rec.key), lambda rec=rec: Product(key=rec.key), rec.values)
        await flush()
        for rec in plan.products:
            base = products[rec.addon_of].id if rec.addon_of else None
            if products[rec.key].addon_of_id != base:
                products[rec.key].addon_of_id = base
                self._touched("products", rec.key)

        offers: dict[tuple[str, Term, BillingCycle, bool], Offer] = {
            (product.key, term, billing, trial): offer
            for (product_id, term, billing, trial), offer in db.offers.items()
            for product in [db.product_by_id(product_id)]
            if product is not None
        }
        for rec in plan.offers:
            key = (rec.product, rec.term, rec.billing, rec.is_trial)
            product_id = products[rec.product].id
            offers[key] = self._upsert(
                "offers",
                key,
                offers.get(key),
                lambda rec=rec, product_id=product_id: Offer(product_id=product_id, term=rec.term, billing=rec.billing, is_trial=rec.is_trial),
                rec.values,
            )
        await flush()
        await self._links(catalogs, products)

        customers: dict[str, Customer] = dict(db.customers)
        for rec in plan.customers:
            values = {**rec.values, "key": rec.key, "tenant_id": rec.tenant_id, "catalog_id": catalogs[rec.catalog].id if rec.catalog else None}
            customers[rec.key] = self._upsert("customers", rec.key, rec.existing, lambda: Customer(created_at=self.now), values)
        await flush()

        users: dict[tuple[int, str], User] = dict(db.users)
        for rec in plan.users:
            customer_id = customers[rec.customer].id
            key = (customer_id, rec.aad_object_id)
            users[key] = self._upsert(
                "users", key, db.users.get(key), lambda customer_id=customer_id, rec=rec: User(customer_id=customer_id, aad_object_id=rec.aad_object_id), rec.values
            )
        await flush()

        subscriptions: dict[tuple[int, str], Subscription] = dict(db.subscriptions)
        # Bases first, so an add-on is inserted with its parent's id (and version 1).
        for group in ([r for r in plan.subscriptions if r.parent is None], [r for r in plan.subscriptions if r.parent]):
            for rec in group:
                customer_id = customers[rec.customer].id
                key = (customer_id, rec.provider_id)
                values = {
                    **rec.values,
                    "offer_id": offers[rec.offer].id,
                    "parent_id": subscriptions[(customer_id, rec.parent)].id if rec.parent else None,
                }
                existing = db.subscriptions.get(key)
                subscriptions[key] = self._upsert(
                    "subscriptions",
                    key,
                    existing,
                    lambda customer_id=customer_id, rec=rec: Subscription(customer_id=customer_id, provider_id=rec.provider_id, updated_at=self.now),
                    values,
                )
                if existing is not None and self.outcomes["subscriptions"][key] == "updated":
                    existing.updated_at = self.now
            await flush()

        for rec in plan.changes:
            customer = customers[rec.customer]
            sub = subscriptions[(customer.id, rec.subscription)]
            existing = db.changes.get(rec.reference)
            values = {**rec.values, "subscription_id": sub.id, "created_by_id": self._author(rec, customer, users)}
            self._upsert(
                "scheduled_changes",
                rec.reference,
                existing,
                lambda rec=rec, customer=customer: ScheduledChange(
                    customer_id=customer.id, reference=rec.reference, kind=ChangeKind.QUANTITY, status=ChangeStatus.PENDING, created_at=self.now
                ),
                values,
            )

        for rec in plan.questions:
            customer_id = customers[rec.customer].id if rec.customer else None
            key = (customer_id, rec.key)
            self._upsert(
                "case_questions",
                key,
                db.questions.get(key),
                lambda customer_id=customer_id, rec=rec: CaseQuestion(customer_id=customer_id, key=rec.key),
                rec.values,
            )

        for rec in plan.outages:
            values = {**rec.values, "customer_id": customers[rec.customer].id if rec.customer else None}
            self._upsert("outages", rec.key, db.outages.get(rec.key), lambda rec=rec: Outage(key=rec.key), values)
        await flush()

        for kind, outcomes in self.outcomes.items():
            for outcome in outcomes.values():
                self.report.count(kind, outcome)

    async def _links(self, catalogs: dict[str, Catalog], products: dict[str, Product]) -> None:
        for rec in self.plan.catalogs:
            catalog = catalogs[rec.key]
            keys = products.keys() if rec.products is None else rec.products
            wanted = {products[key].id for key in keys}
            have = {p for c, p in self.db.links if c == catalog.id}
            if wanted == have:
                continue
            if have - wanted:
                await self.session.execute(
                    delete(CatalogProduct).where(CatalogProduct.catalog_id == catalog.id, CatalogProduct.product_id.in_(have - wanted))
                )
            self.session.add_all(CatalogProduct(catalog_id=catalog.id, product_id=pid) for pid in sorted(wanted - have))
            self._touched("catalogs", rec.key)

    def _author(self, rec: _ChangeRec, customer: Customer, users: dict[tuple[int, str], User]) -> int | None:
        if rec.created_by is None:
            return None
        email = rec.created_by.lower()
        for user in users.values():
            if user.email.lower() != email:
                continue
            if user.customer_id == customer.id or user.is_partner_staff:
                return user.id
        raise self.doc.error(rec.path + ("created_by",), f"no user {rec.created_by} in customer '{rec.customer}' or among the partner's technicians")


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def read_file(path: Path) -> tuple[Any, str]:
    """The document in `path` (YAML, or JSON when it ends in .json), with lines kept."""
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportFileError(f"file not found: {path}", source=source) from None
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"the file is not UTF-8 text ({exc.reason})", source=source) from None
    data = _load_json(text, source) if path.suffix.lower() == ".json" else _load_yaml(text, source)
    return data, source


async def import_file(session_factory: async_sessionmaker[AsyncSession], path: Path, *, clock: Clock) -> ImportReport:
    """Import one YAML or JSON file; raises ImportFileError (nothing written) when it is wrong."""
    data, source = read_file(Path(path))
    return await import_data(session_factory, data, clock=clock, source_name=source)


async def import_data(
    session_factory: async_sessionmaker[AsyncSession], data: dict, *, clock: Clock, source_name: str
) -> ImportReport:
    """Import an already-read document; `today`/`now` in relative dates come from `clock`."""
    doc = _Document(_plain(data), source_name)
    _check_duplicate_keys(doc, doc.data)
    _check_schema(doc)
    now = clock.now()
    report = ImportReport(source_name)
    async with session_factory() as session:
        try:
            async with session.begin():
                existing = await _Existing.load(session)
                plan = _Planner(doc, existing, now).build()
                await _Writer(session, doc, existing, plan, now, report).write()
        except IntegrityError as exc:
            # The checks above should make this unreachable; say so instead of a stack trace.
            raise ImportFileError(f"the database refused the import: {exc.orig}", source=source_name) from exc
    return report


async def load_demo(session_factory: async_sessionmaker[AsyncSession], *, clock: Clock) -> ImportReport:
    """Import `services/demo.yaml` (its dates are relative to the clock's today)."""
    return await import_file(session_factory, DEMO_PATH, clock=clock)


async def database_is_empty(session_factory: async_sessionmaker[AsyncSession]) -> bool:
    """True while no customer exists (e.g. to load the demo on first start)."""
    async with session_factory() as session:
        return (await session.scalar(select(Customer.id).limit(1))) is None
