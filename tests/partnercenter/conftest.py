"""The local Microsoft (Partner Center, Graph, token endpoint over HTTPS with a test CA) and
Seatdesk's real clients pointed at it. Retry sleeps are recorded, never slept."""
from __future__ import annotations

import pytest

from services.graph import GraphClient
from services.partnercenter import Credentials, PartnerCenter, PartnerCenterConfig, RetryPolicy, TokenSource
from tests.partnercenter.fake import FakeMicrosoft, make_ca, serve

PARTNER_TENANT = "a0b610e8-484d-4e4e-aacc-ee4504d6786d"
FABRIKAM = "9fe978bc-dc60-420e-967f-0ed28608938b"
NORTHWIND = "57a06524-0fb7-4367-b463-bce8496f98be"


class Sleeps:
    """An injected sleep: remembers what it was asked to wait, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def fake(tmp_path, monkeypatch):
    bundle, context = make_ca(tmp_path)
    # msal uses requests, which takes REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE over its own verify=.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, str(bundle))
    microsoft = FakeMicrosoft()
    runner = await serve(microsoft, context)
    yield microsoft
    await runner.cleanup()


@pytest.fixture
def pc_config(fake) -> PartnerCenterConfig:
    return PartnerCenterConfig(
        credentials=Credentials(tenant_id=PARTNER_TENANT, client_id="11111111-2222-3333-4444-555555555555", client_secret="test-secret"),
        partner_center_url=fake.base,
        graph_url=fake.base,
        authority_url=fake.base,
        country="DE",
        timeout_seconds=0.5,
        retry=RetryPolicy(attempts=5, base_delay=0.5, max_delay=8, budget_seconds=30),
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def tokens(pc_config) -> TokenSource:
    return TokenSource(pc_config.credentials, pc_config.authority_url)


@pytest.fixture
async def pc(pc_config, tokens, sleeps):
    client = PartnerCenter.connect(pc_config, tokens, sleep=sleeps, jitter=lambda: 1.0)
    yield client
    await client.close()


@pytest.fixture
async def graph(pc_config, tokens, sleeps):
    client = GraphClient.connect(pc_config, tokens, sleep=sleeps, jitter=lambda: 1.0)
    yield client
    await client.close()
