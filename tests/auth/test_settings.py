"""Settings.check_can_serve: outside development Seatdesk does not start without credentials, and
anonymous mode needs the explicit flag on a loopback host."""
from __future__ import annotations

import pytest

from bot.config import Settings, SettingsError


@pytest.mark.parametrize(
    "settings, refused_because",
    [
        (Settings(), "MicrosoftAppId is not set"),
        (Settings(allow_anonymous=True, host="0.0.0.0"), "non-loopback"),
        (Settings(allow_anonymous=True, host="10.0.0.5"), "non-loopback"),
        (Settings(app_id="app"), "MicrosoftAppPassword is required"),
    ],
)
def test_serving_is_refused(settings, refused_because):
    with pytest.raises(SettingsError, match=refused_because):
        settings.check_can_serve()


@pytest.mark.parametrize(
    "settings",
    [
        Settings(allow_anonymous=True, host="127.0.0.1"),
        Settings(allow_anonymous=True, host="::1"),
        Settings(app_id="app", app_password="secret"),
        Settings(app_id="app", app_type="UserAssignedMSI", app_tenant_id="t"),
    ],
)
def test_serving_is_allowed(settings):
    settings.check_can_serve()


@pytest.mark.parametrize(
    "env",
    [
        {"SEATDESK_SERVICE_URL_ALLOWLIST": "*"},
        {"SEATDESK_SERVICE_URL_ALLOWLIST": "https://smba.trafficmanager.net/emea/"},
        {"SEATDESK_FILE_HOSTS": "*"},
        {"SEATDESK_FILE_HOSTS": "*.skype.com,https://us-api.asm.skype.com/v1/objects/"},
        {"SEATDESK_SHUTDOWN_GRACE_SECONDS": "-1"},
        {"SEATDESK_OPENID_METADATA_URL": "http://login.botframework.com/v1/.well-known/openidconfiguration"},
        {"SEATDESK_OPENID_METADATA_URL": "not a url"},
    ],
)
def test_unusable_auth_settings_stop_the_start(env):
    with pytest.raises(SettingsError, match=next(iter(env))):
        Settings.from_env(env, dotenv=None)


def test_a_bad_file_host_pattern_is_named_in_a_sentence():
    """The operator learns which setting and which part of it is wrong, not a traceback."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"SEATDESK_FILE_HOSTS": "*.asm.skype.com, *.com"}, dotenv=None)
    assert str(refused.value) == "SEATDESK_FILE_HOSTS must list host names or *.domain patterns, separated by commas (got '*.com')"


def test_file_hosts_and_shutdown_grace_have_their_defaults():
    settings = Settings.from_env({}, dotenv=None)
    assert settings.file_hosts.split(",")[0] == "*.asm.skype.com" and settings.shutdown_grace_seconds == 10
