"""ServiceUrlPolicy: replies go only to Microsoft's Bot Connector hosts (or the configured list);
loopback only in anonymous development mode."""
from __future__ import annotations

import pytest

from bot.auth import DisallowedServiceUrl, ServiceUrlPolicy


@pytest.mark.parametrize(
    "url",
    [
        "https://smba.trafficmanager.net/emea/",
        "https://smba.trafficmanager.net/teams/",
        "https://europe.webchat.botframework.com/",
        "https://smba.infra.gcc.teams.microsoft.com/",
        "https://SMBA.TrafficManager.NET/amer/",
    ],
)
def test_microsofts_hosts_are_allowed_by_default(url):
    assert ServiceUrlPolicy().allows(url)


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "http://smba.trafficmanager.net/emea/",  # not https
        "https://smba.trafficmanager.net.evil.example/",
        "https://evilsmba.trafficmanager.net/",
        "https://botframework.com.evil.example/",
        "https://evilbotframework.com/",
        "https://user:pass@smba.trafficmanager.net/",
        "https://smba.trafficmanager.net:notaport/",
        "http://127.0.0.1:3978/",
        "http://localhost/",
        "http://[::1]/",
        "ftp://smba.trafficmanager.net/",
    ],
)
def test_other_hosts_are_refused(url):
    policy = ServiceUrlPolicy()
    assert not policy.allows(url)
    with pytest.raises(DisallowedServiceUrl):
        policy.check(url)


def test_loopback_only_in_development_mode():
    assert ServiceUrlPolicy(allow_loopback=True).allows("http://127.0.0.1:56150/_connector")
    assert ServiceUrlPolicy(allow_loopback=True).allows("http://[::1]:9/")
    assert not ServiceUrlPolicy(allow_loopback=True).allows("http://10.0.0.1/")


def test_the_setting_replaces_the_defaults():
    policy = ServiceUrlPolicy.parse("smba.infra.gov.teams.microsoft.us, *.contoso.example")
    assert policy.allows("https://smba.infra.gov.teams.microsoft.us/")
    assert policy.allows("https://bots.contoso.example/")
    assert not policy.allows("https://contoso.example/")  # *.x means subdomains of x
    assert not policy.allows("https://smba.trafficmanager.net/emea/")
    assert ServiceUrlPolicy.parse("").allows("https://smba.trafficmanager.net/emea/")
