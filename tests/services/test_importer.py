"""The import format: the demo loads, re-importing changes nothing, what goes in comes back out,
and a wrong file is refused with its line and field — leaving the database exactly as it was.

Uses the shared fixtures `db` (a session factory on a fresh migrated SQLite file) and `clock`
(fixed at 2026-11-22 09:00 UTC) from tests/conftest.py.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from services.clock import FixedClock
from services.importer import (
    DEMO_PATH,
    ImportFileError,
    database_is_empty,
    import_data,
    import_file,
    load_demo,
)
from services.models import (
    Base,
    CaseQuestion,
    Catalog,
    CatalogProduct,
    ChangeTiming,
    Customer,
    Offer,
    Outage,
    Product,
    Role,
    ScheduledChange,
    Subscription,
    SubscriptionStatus,
    User,
    UserStatus,
)

UTC = timezone.utc


async def table_rows(db) -> dict[str, list[tuple]]:
    """Every row of every table, so "unchanged" can be checked exactly."""
    async with db() as session:
        return {
            table.name: sorted((tuple(row) for row in (await session.execute(select(table))).all()), key=repr)
            for table in Base.metadata.sorted_tables
        }


def counts(rows: dict[str, list[tuple]]) -> dict[str, int]:
    return {name: len(table) for name, table in rows.items()}


def resolve(text: str, today: date) -> date:
    """The test's own reading of `today±N(d|w|M|y)` (months clamp to the month's end)."""
    if not text.startswith("today"):
        return date.fromisoformat(text)
    day = today
    for sign, amount, unit in re.findall(r"([+-])(\d+)([dwMy])", text):
        n = int(amount) * (1 if sign == "+" else -1)
        if unit in "My":
            months = n * (12 if unit == "y" else 1)
            y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
            for d in range(day.day, 27, -1):
                try:
                    day = date(y, m + 1, d)
                    break
                except ValueError:
                    continue
            else:
                day = date(y, m + 1, day.day)
        else:
            day += timedelta(days=n * (7 if unit == "w" else 1))
    return day


# --------------------------------------------------------------------------------------------
# The demo
# --------------------------------------------------------------------------------------------


async def test_the_demo_imports_into_an_empty_database(db, clock):
    assert await database_is_empty(db)

    report = await load_demo(db, clock=clock)

    assert not await database_is_empty(db)
    assert report.created["customers"] == 3
    assert report.created["users"] == 11
    assert report.created["products"] == 16
    assert report.created["subscriptions"] == 18
    assert report.created["scheduled_changes"] == 3
    assert report.created["outages"] == 3
    assert report.total_updated == 0
    assert "customers: 3 created" in report.summary()


async def test_importing_twice_changes_nothing(db, clock):
    """Guards idempotency: upserts by natural keys, no new rows, no new versions or timestamps."""
    await load_demo(db, clock=clock)
    before = await table_rows(db)

    clock.advance(timedelta(seconds=20))  # same minute: relative dates resolve identically
    report = await load_demo(db, clock=clock)

    after = await table_rows(db)
    assert counts(after) == counts(before)
    assert after == before
    assert report.total_created == 0 and report.total_updated == 0
    assert report.unchanged["subscriptions"] == 18


async def test_round_trip_matches_the_file(db, clock):
    await load_demo(db, clock=clock)
    source = yaml.safe_load(DEMO_PATH.read_text(encoding="utf-8"))
    today = clock.now().date()

    async with db() as session:
        customers = {c.key: c for c in await session.scalars(select(Customer))}
        catalogs = {c.id: c for c in await session.scalars(select(Catalog))}
        products = {p.id: p for p in await session.scalars(select(Product))}
        offers = list(await session.scalars(select(Offer)))
        users = list(await session.scalars(select(User)))
        subscriptions = list(await session.scalars(select(Subscription)))
        changes = {c.reference: c for c in await session.scalars(select(ScheduledChange))}
        links = (await session.execute(select(CatalogProduct.catalog_id, CatalogProduct.product_id))).all()

    # Products, add-on bases and exact prices.
    by_key = {p.key: p for p in products.values()}
    for item in source["products"]:
        product = by_key[item["key"]]
        assert product.name == item["name"]
        assert product.aliases == item["aliases"]
        base = products.get(product.addon_of_id)
        assert (base.key if base else None) == item.get("addon_of")
        stored = {(o.term.value, o.billing.value, o.is_trial): o for o in offers if o.product_id == product.id}
        assert len(stored) == len(item["offers"])
        for offer in item["offers"]:
            row = stored[(offer["term"], offer["billing"], offer.get("trial", False))]
            assert isinstance(row.unit_price_monthly, Decimal)
            assert str(row.unit_price_monthly) == offer["price_per_seat_month"]
            assert row.cancellation_window_hours == 168

    # Catalogs: the global one offers everything, the custom one what it lists.
    for item in source["catalogs"]:
        catalog = next(c for c in catalogs.values() if c.key == item["key"])
        listed = {products[p].key for c, p in links if c == catalog.id}
        assert listed == (set(by_key) if item["products"] == "all" else set(item["products"]))
        assert catalog.is_global is item.get("global", False)

    for item in source["customers"]:
        customer = customers[item["key"]]
        assert (customer.tenant_id, customer.name, customer.domain) == (item["tenant_id"], item["name"], item["domain"])
        assert customer.is_partner is item.get("partner", False)
        assert catalogs[customer.catalog_id].key == item["catalog"]
        if "approval_policy" in item:
            expected = dict(item["approval_policy"])
            assert customer.approval_policy == expected

        mine = {u.aad_object_id: u for u in users if u.customer_id == customer.id}
        assert set(mine) == {u["aad_object_id"] for u in item["users"]}
        for entry in item["users"]:
            user = mine[entry["aad_object_id"]]
            assert (user.email, user.name, user.role, user.locale) == (entry["email"], entry["name"], Role(entry["role"]), entry.get("locale"))
            assert user.status == UserStatus(entry.get("status", "active"))
            assert user.is_partner_staff is entry.get("partner_staff", False)

        subs = {s.provider_id: s for s in subscriptions if s.customer_id == customer.id}
        ids = {s.id: s.provider_id for s in subs.values()}
        assert set(subs) == {s["id"] for s in item["subscriptions"]}
        for entry in item["subscriptions"]:
            sub = subs[entry["id"]]
            assert products[sub.offer.product_id].key == entry["product"]
            assert (sub.offer.term.value, sub.offer.billing.value, sub.offer.is_trial) == (entry["term"], entry["billing"], entry.get("trial", False))
            assert sub.is_trial is entry.get("trial", False)
            assert sub.quantity == entry["quantity"] and sub.assigned_seats == entry.get("assigned_seats")
            assert sub.status == SubscriptionStatus(entry.get("status", "active"))
            assert sub.auto_renew is entry.get("auto_renew", True)
            assert sub.nickname == entry.get("nickname")
            term_start = resolve(entry["term_start"], today)
            assert sub.term_start == datetime(term_start.year, term_start.month, term_start.day, tzinfo=UTC)
            assert sub.start_date == resolve(entry.get("start_date", entry["term_start"]), today)
            assert sub.commitment_end > sub.term_start.date()
            assert ids.get(sub.parent_id) == entry.get("parent")
            assert sub.version == 1 and sub.updated_at == clock.now()
            for change in entry.get("scheduled_changes", []):
                stored = changes[change["reference"]] if "reference" in change else next(
                    c for c in changes.values() if c.subscription_id == sub.id
                )
                assert stored.subscription_id == sub.id and stored.customer_id == customer.id
                assert stored.new_quantity == change["new_quantity"]
                assert stored.timing == ChangeTiming(change["timing"])
                creator = next(u for u in users if u.id == stored.created_by_id)
                assert creator.email == change["created_by"]
                if "effective_date" in change:
                    assert stored.effective_date == resolve(change["effective_date"], today)
                else:
                    assert stored.effective_date == sub.commitment_end + timedelta(days=1)


async def test_demo_states_are_the_promised_ones(db, clock):
    """The states the demo's header promises, against 2026-11-22."""
    await load_demo(db, clock=clock)
    async with db() as session:
        subs = {s.provider_id: s for s in await session.scalars(select(Subscription))}
        outages = {o.key: o for o in await session.scalars(select(Outage))}
        questions = list(await session.scalars(select(CaseQuestion)))

    assert subs["FAB-COPILOT-01"].term_start == datetime(2026, 11, 20, tzinfo=UTC)  # inside the window
    assert subs["FAB-E5SEC-01"].term_start == datetime(2026, 11, 14, tzinfo=UTC)  # just outside
    assert subs["FAB-O365E3-01"].commitment_end == date(2026, 12, 3)  # renews in 11 days
    assert subs["FAB-VISIO-01"].commitment_end == date(2026, 12, 11) and not subs["FAB-VISIO-01"].auto_renew
    assert subs["FAB-PBI-TRIAL"].is_trial and subs["FAB-PBI-TRIAL"].offer.unit_price_monthly == Decimal("0.00")
    assert subs["FAB-PROJ-01"].status is SubscriptionStatus.SUSPENDED
    assert subs["FAB-EXO-01"].status is SubscriptionStatus.EXPIRED and subs["FAB-EXO-01"].commitment_end < date(2026, 11, 22)
    assert subs["NW-E5-001"].commitment_end == date(2028, 9, 21)  # three-year term
    assert outages["incident-northwind-shared-mailboxes"].starts_at == datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    assert outages["incident-northwind-shared-mailboxes"].ends_at is None
    assert outages["maint-backup-next-week"].starts_at == datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
    assert {q.key for q in questions if q.customer_id is None} == {"device", "affected_users", "since"}
    assert [q.key for q in questions if q.customer_id is not None] == ["cost_centre"]


# --------------------------------------------------------------------------------------------
# Relative dates and the clock
# --------------------------------------------------------------------------------------------

SMALL = """\
products:
  - key: bp
    name: Microsoft 365 Business Premium
    offers:
      - {term: P1Y, billing: annual, price_per_seat_month: 20.60}
      - {term: P1M, billing: monthly, price_per_seat_month: "24.72"}
customers:
  - key: acme
    tenant_id: 11111111-2222-4333-8444-555555555555
    name: Acme
    users:
      - {aad_object_id: 11111111-0000-4000-8000-000000000001, email: ann@acme.example, name: Ann, role: admin}
    subscriptions:
      - {id: S-1, product: bp, term: P1Y, billing: annual, quantity: 5, term_start: today-11M}
      - {id: S-2, product: bp, term: P1M, billing: monthly, quantity: 2, term_start: today-1M}
outages:
  - {key: now, kind: incident, title: Mail is slow, starts_at: now-90m, ends_at: today+1d 06:30}
"""


async def test_relative_dates_resolve_against_the_injected_clock(db):
    clock = FixedClock(datetime(2026, 3, 31, 15, 45, tzinfo=UTC))
    await import_data(db, yaml.safe_load(SMALL), clock=clock, source_name="small.yaml")

    async with db() as session:
        subs = {s.provider_id: s for s in await session.scalars(select(Subscription))}
        outage = await session.scalar(select(Outage))
    assert subs["S-1"].term_start == datetime(2025, 4, 30, tzinfo=UTC)  # 31 April does not exist
    assert subs["S-1"].commitment_end == date(2026, 4, 29)
    assert subs["S-2"].term_start == datetime(2026, 2, 28, tzinfo=UTC)
    assert outage.starts_at == datetime(2026, 3, 31, 14, 15, tzinfo=UTC)
    assert outage.ends_at == datetime(2026, 4, 1, 6, 30, tzinfo=UTC)
    assert subs["S-1"].offer.unit_price_monthly == Decimal("20.60")  # a YAML number, read exactly


async def test_a_later_day_moves_relative_dates_and_counts_as_an_update(db, tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    await import_file(db, path, clock=FixedClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC)))

    report = await import_file(db, path, clock=FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)))

    assert report.updated["subscriptions"] == 2 and report.created["subscriptions"] == 0
    async with db() as session:
        sub = await session.scalar(select(Subscription).where(Subscription.provider_id == "S-1"))
    assert sub.term_start == datetime(2025, 12, 23, tzinfo=UTC)
    assert sub.version == 2 and sub.updated_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def test_json_files_import_too(db, clock, tmp_path):
    data = yaml.safe_load(SMALL)
    path = tmp_path / "small.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")

    report = await import_file(db, path, clock=clock)

    assert report.created["subscriptions"] == 2


# --------------------------------------------------------------------------------------------
# Wrong files: the line, the field, and nothing written
# --------------------------------------------------------------------------------------------

# Three customers; each case below breaks something in the LAST one (marked `# <-`), so a
# non-atomic importer would already have written the catalog, products and first customers.
BASE = """\
catalogs:
  - key: global
    name: Everything
    global: true
    products: all
products:
  - key: bp
    name: Microsoft 365 Business Premium
    offers:
      - {term: P1Y, billing: annual, price_per_seat_month: "20.60"}
  - key: copilot
    name: Microsoft 365 Copilot
    addon_of: bp
    offers:
      - {term: P1Y, billing: annual, price_per_seat_month: "28.10"}
customers:
  - key: first
    tenant_id: 11111111-1111-4111-8111-111111111111
    name: First Ltd
    users:
      - {aad_object_id: 21111111-1111-4111-8111-111111111111, email: a@first.example, name: A, role: admin}
    subscriptions:
      - {id: F-1, product: bp, term: P1Y, billing: annual, quantity: 3, term_start: today-1M}
  - key: second
    tenant_id: 22222222-2222-4222-8222-222222222222
    name: Second Ltd
  - key: last
    tenant_id: 33333333-3333-4333-8333-333333333333
    name: Last Ltd
    users:
      - aad_object_id: 43333333-3333-4333-8333-333333333333
        email: boss@last.example
        name: Boss
        role: admin
    subscriptions:
      - id: L-1
        product: bp
        term: P1Y
        billing: annual
        quantity: 10
        term_start: today-2d
      - id: L-2
        product: copilot
        term: P1Y
        billing: annual
        quantity: 2
        term_start: today-2d
        parent: L-1
"""

BAD_FILES = {
    "schema violation (wrong type)": (
        ("        quantity: 10\n", "        quantity: ten  # <-\n"),
        "customers[2].subscriptions[0].quantity",
        "quantity should be a whole number (got 'ten')",
    ),
    "unknown field with a hint": (
        ("        quantity: 10\n", "        quantiy: 10  # <-\n"),
        "customers[2].subscriptions[0].quantiy",
        "unknown field 'quantiy'; did you mean 'quantity'?",
    ),
    "missing required field": (
        ("  - key: last\n    tenant_id: 33333333-3333-4333-8333-333333333333\n", "  - key: last  # <-\n"),
        "customers[2]",
        "'tenant_id' is required",
    ),
    "unknown product": (
        ("        product: bp\n", "        product: XYZ  # <-\n"),
        "customers[2].subscriptions[0].product",
        "product 'XYZ' is not defined",
    ),
    "bad role": (
        ("        role: admin\n", "        role: owner  # <-\n"),
        "customers[2].users[0].role",
        "role 'owner' is not one of view, modify, finance, admin",
    ),
    "impossible date": (
        ("        term_start: today-2d\n      - id: L-2", "        term_start: 2026-02-30  # <-\n      - id: L-2"),
        "customers[2].subscriptions[0].term_start",
        "'2026-02-30' is not a valid date and time",
    ),
    "commitment end before term start": (
        ("        quantity: 10\n", "        quantity: 10\n        commitment_end: today-5d  # <-\n"),
        "customers[2].subscriptions[0].commitment_end",
        "commitment_end 2026-11-17 before term_start 2026-11-20",
    ),
    "hours after today": (
        ("        term_start: today-2d\n      - id: L-2", "        term_start: today-2h  # <-\n      - id: L-2"),
        "customers[2].subscriptions[0].term_start",
        "only works after now",
    ),
    "duplicate YAML key": (
        ("        name: Boss\n", "        name: Boss\n        name: Chief  # <-\n"),
        "customers[2].users[0].name",
        "'name' is given twice",
    ),
    "duplicate customer key": (
        ("  - key: last\n", "  - key: first  # <-\n"),
        "customers[2].key",
        "customer 'first' is defined twice (first at customers[0])",
    ),
    "duplicate subscription id": (
        ("      - id: L-2\n", "      - id: L-1  # <-\n"),
        "customers[2].subscriptions[1].id",
        "subscription 'L-1' is listed twice",
    ),
    "bad GUID": (
        ("      - aad_object_id: 43333333-3333-4333-8333-333333333333\n", "      - aad_object_id: 4333-not-a-guid  # <-\n"),
        "customers[2].users[0].aad_object_id",
        "'4333-not-a-guid' is not a GUID",
    ),
    "bad Decimal": (
        ('price_per_seat_month: "28.10"}', 'price_per_seat_month: "28,10"}  # <-'),
        "products[1].offers[0].price_per_seat_month",
        "'28,10' is not an amount such as \"12.50\"",
    ),
    "parent not found": (
        ("        parent: L-1\n", "        parent: S-9  # <-\n"),
        "customers[2].subscriptions[1].parent",
        "parent subscription 'S-9' not found in customer 'last'",
    ),
    "parent on a base product": (
        ("        product: copilot\n", "        product: bp\n        nickname: not an add-on  # keeps lines\n"),
        "customers[2].subscriptions[1].parent",
        "product 'bp' is not an add-on",
    ),
    "scheduled change by a stranger": (
        ("        parent: L-1\n", "        parent: L-1\n        scheduled_changes:\n          - {timing: at_renewal, new_quantity: 3, created_by: x@y.example}  # <-\n"),
        "customers[2].subscriptions[1].scheduled_changes[0].created_by",
        "no user x@y.example in customer 'last'",
    ),
}


def _bad_file(case: str) -> tuple[str, int | None, str, str]:
    (old, new), path, message = BAD_FILES[case]
    assert old in BASE, case
    text = BASE.replace(old, new, 1)
    lines = [i for i, line in enumerate(text.splitlines(), 1) if "# <-" in line]
    return text, (lines[0] if lines else None), path, message


@pytest.mark.parametrize("case", sorted(BAD_FILES))
async def test_a_wrong_file_is_refused_with_line_and_field_and_nothing_is_written(db, clock, tmp_path, case):
    text, line, path, message = _bad_file(case)
    file = tmp_path / "customers.yaml"
    file.write_text(text, encoding="utf-8")

    with pytest.raises(ImportFileError) as caught:
        await import_file(db, file, clock=clock)

    error = caught.value
    assert message in error.message, str(error)
    assert error.path == path, str(error)
    if line is not None:
        assert error.line == line, str(error)
        assert str(error).startswith(f"customers.yaml line {line}, {path}: "), str(error)
    else:
        assert error.line is not None
    assert await database_is_empty(db)
    assert sum(counts(await table_rows(db)).values()) == 0


async def test_the_base_of_the_wrong_files_is_itself_fine(db, clock):
    report = await import_data(db, yaml.safe_load(BASE), clock=clock, source_name="base.yaml")
    assert report.created["customers"] == 3 and report.created["subscriptions"] == 3


async def test_a_failed_import_leaves_an_existing_database_exactly_as_it_was(db, clock, tmp_path):
    """Atomicity over updates too: earlier customers' changes are rolled back with the error."""
    await load_demo(db, clock=clock)
    before = await table_rows(db)
    text = DEMO_PATH.read_text(encoding="utf-8")
    text = text.replace("name: Fabrikam GmbH", "name: Fabrikam AG")  # an update to an earlier customer
    text = text.replace("quantity: 120", "quantity: 130")
    last = text.rindex("product: exo-p1")  # Northwind's last subscription
    text = text[:last] + "product: exo-p9" + text[last + len("product: exo-p1"):]
    file = tmp_path / "demo-edited.yaml"
    file.write_text(text, encoding="utf-8")

    with pytest.raises(ImportFileError) as caught:
        await import_file(db, file, clock=clock)

    bad_line = text[:last].count("\n") + 1
    assert caught.value.line == bad_line
    assert str(caught.value).startswith(f"demo-edited.yaml line {bad_line}, customers[2].subscriptions[7].product: product 'exo-p9'")
    assert await table_rows(db) == before


async def test_a_reference_owned_by_another_subscription_is_refused(db, clock):
    await load_demo(db, clock=clock)
    before = await table_rows(db)
    data = yaml.safe_load(BASE)
    data["customers"][2]["subscriptions"][0]["scheduled_changes"] = [
        {"timing": "at_renewal", "new_quantity": 12, "reference": "SC-FAB-0001"}
    ]
    data["catalogs"][0]["global"] = False  # the demo already has the global catalog
    data["catalogs"][0]["products"] = ["bp"]

    with pytest.raises(ImportFileError) as caught:
        await import_data(db, data, clock=clock, source_name="more.yaml")

    assert "reference 'SC-FAB-0001' already belongs to another subscription" in str(caught.value)
    assert caught.value.path == "customers[2].subscriptions[0].scheduled_changes[0].reference"
    assert await table_rows(db) == before


async def test_a_failure_after_writes_began_rolls_everything_back(db, clock, tmp_path, monkeypatch):
    """Patches one seam (the last writing step) to fail after catalogs, customers, users and
    subscriptions were already flushed: the transaction must take them all back."""
    from services import importer

    await load_demo(db, clock=clock)
    before = await table_rows(db)
    text = DEMO_PATH.read_text(encoding="utf-8").replace("name: Fabrikam GmbH", "name: Fabrikam AG")
    text = text.replace("quantity: 120", "quantity: 130").replace("id: NW-EXO-OLD", "id: NW-EXO-NEW")
    file = tmp_path / "demo-edited.yaml"
    file.write_text(text, encoding="utf-8")

    def fail(*_args, **_kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(importer._Writer, "_author", fail)
    with pytest.raises(RuntimeError):
        await import_file(db, file, clock=clock)

    assert await table_rows(db) == before


async def test_json_errors_carry_lines_too(db, clock, tmp_path):
    data = yaml.safe_load(BASE)
    data["customers"][2]["users"][0]["role"] = "owner"
    text = json.dumps(data, indent=2)
    path = tmp_path / "customers.json"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ImportFileError) as caught:
        await import_file(db, path, clock=clock)

    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"owner"' in row)
    assert (caught.value.line, caught.value.path) == (line, "customers[2].users[0].role")


async def test_broken_yaml_says_where(db, clock, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("customers:\n  - key: a\n    name: [unclosed\n", encoding="utf-8")

    with pytest.raises(ImportFileError) as caught:
        await import_file(db, path, clock=clock)

    assert caught.value.message.startswith("not valid YAML")
    assert caught.value.line is not None


async def test_a_missing_file_is_an_import_error(db, clock, tmp_path):
    with pytest.raises(ImportFileError, match="file not found"):
        await import_file(db, tmp_path / "nope.yaml", clock=clock)


def test_the_schema_is_valid_draft_2020_12():
    from jsonschema import Draft202012Validator

    from services.importer import SCHEMA_PATH

    schema = json.loads(Path(SCHEMA_PATH).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
