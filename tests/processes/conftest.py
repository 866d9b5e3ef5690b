"""Fixtures for the tests that run real server processes: the stand-ins, and a database prepared
once per module (the demo data, mirrored into the Partner Center stand-in and synchronised, so the
servers' own start-up sync finds nothing to change). SQLite by default; with
SEATDESK_TEST_DATABASE_URL set (tests/postgres.py), a fresh PostgreSQL database per module."""
from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services import db as database
from services.clock import SystemClock
from services.models import Customer, Subscription, User
from tests.processes.harness import CLIENT_ID, PARTNER_TENANT, Background, Person, StandIns


class _Tokens:
    """The test process's own calls need no msal: the stand-in reads the tenant from the token."""

    async def token(self, tenant: str, scope: str) -> str:
        return f"token|{tenant}|{scope}"


class Database:
    """The servers' database as the test reads it (an engine on the stand-ins' loop)."""

    def __init__(self, background: Background, url: str) -> None:
        self.url = url
        self._background = background
        self.engine = database.create_engine(url)
        self.db = database.session_factory(self.engine)

    def run(self, work: Callable[[Any], Any]) -> Any:
        """`await work(session)` in a transaction of its own; returns its result."""

        async def go():
            async with self.db() as session, session.begin():
                return await work(session)

        return self._background.run(go())

    def call(self, coroutine_function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._background.run(coroutine_function(*args, **kwargs))

    def person(self, customer_key: str, name: str) -> Person:
        async def find(session):
            user, customer = (
                await session.execute(select(User, Customer).join(Customer, User.customer_id == Customer.id).where(Customer.key == customer_key, User.name == name))
            ).one()
            return Person(user.id, user.name, customer.tenant_id, user.aad_object_id)

        return self.run(find)

    def close(self) -> None:
        self._background.run(self.engine.dispose())


async def _mirror_into_partner_center(db, stand_ins: StandIns) -> None:
    """Every subscription of every customer, as Partner Center would list it; then one sync each way."""
    from services.partnercenter import Credentials, PartnerCenter, PartnerCenterConfig, catalog_sync, subscription_sync

    async with db() as session:
        rows = (
            await session.execute(select(Subscription, Customer).join(Customer, Subscription.customer_id == Customer.id).where(Customer.is_partner.is_(False)))
        ).all()
        for sub, customer in rows:
            product = sub.offer.product
            stand_ins.microsoft.add_subscription(
                customer.tenant_id, sub.provider_id, offerId=f"{product.provider_product_id}:{product.provider_sku_id}:AVAIL",
                friendlyName=sub.display_name, quantity=sub.quantity, autoRenewEnabled=sub.auto_renew, status=sub.status.value,
                isTrial=sub.is_trial, termDuration=sub.offer.term.value, billingCycle=sub.offer.billing.value,
                commitmentEndDate=f"{sub.commitment_end}T00:00:00Z",
                cancellationAllowedUntilDate=sub.cancellation_allowed_until.isoformat() if sub.cancellation_allowed_until else None,
            )
    config = PartnerCenterConfig(
        credentials=Credentials(tenant_id=PARTNER_TENANT, client_id=CLIENT_ID, client_secret="test-secret"),
        partner_center_url=stand_ins.microsoft.base, graph_url=stand_ins.microsoft.base, authority_url=stand_ins.microsoft.base,
    )
    pc = PartnerCenter.connect(config, _Tokens(), ssl_context=ssl.create_default_context(cafile=str(stand_ins.ca_bundle)))
    try:
        now = SystemClock().now()
        await catalog_sync(db, pc, now)
        report = await subscription_sync(db, pc, now)
        assert not report.failed and not report.created and not report.missing, report
    finally:
        await pc.close()


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    running = StandIns.start(tmp_path_factory.mktemp("stand-ins"))
    yield running
    running.close()


@pytest.fixture(scope="module")
def database_url(tmp_path_factory, postgres_template):
    """A new, migrated database for this module: PostgreSQL when the suite runs on it, else SQLite."""
    if postgres_template is not None:
        from sqlalchemy.engine import make_url

        from tests import postgres

        url = postgres.create_from_template(*postgres_template)
        yield url
        postgres.drop(postgres_template[0], make_url(url).database)
        return
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'seatdesk.db'}"
    database.migrate(url)
    yield url


@pytest.fixture(scope="module")
def demo(stand_ins, database_url) -> Database:
    """The demo data in the module's database and in the Partner Center stand-in, in step."""
    from services.importer import load_demo

    prepared = Database(stand_ins.background, database_url)
    prepared.call(load_demo, prepared.db, clock=SystemClock())
    prepared.call(_mirror_into_partner_center, prepared.db, stand_ins)
    yield prepared
    prepared.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test gets the logs of the servers it ran."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            servers = value if isinstance(value, (list, tuple)) else [value]
            for server in servers:
                if hasattr(server, "log_tail") and hasattr(server, "log_path"):
                    report.sections.append((f"{server.name} log ({server.log_path})", server.log_tail(20_000)))
    return report
