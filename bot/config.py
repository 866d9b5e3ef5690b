"""Seatdesk's settings: read once at start-up into one typed object and passed in."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path


class SettingsError(ValueError):
    """A setting has a value Seatdesk cannot use; the message names the setting."""


def _default_database_url() -> str:
    return f"sqlite+aiosqlite:///{Path('var/seatdesk.db').resolve()}"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be 1 or 0 (got {raw!r})")


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number (got {raw!r})") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high} (got {value})")
    return value


@dataclass(frozen=True)
class Settings:
    """Every setting Seatdesk reads. `docs/configuration.md` lists them with the same names."""

    app_id: str = field(default="", metadata={"env": "MicrosoftAppId"})
    app_password: str = field(default="", repr=False, metadata={"env": "MicrosoftAppPassword", "secret": True})
    app_type: str = field(default="MultiTenant", metadata={"env": "MicrosoftAppType"})
    app_tenant_id: str = field(default="", metadata={"env": "MicrosoftAppTenantId"})
    database_url: str = field(default_factory=_default_database_url, metadata={"env": "SEATDESK_DATABASE_URL"})
    host: str = field(default="127.0.0.1", metadata={"env": "SEATDESK_HOST"})
    port: int = field(default=3978, metadata={"env": "SEATDESK_PORT", "range": (1, 65535)})
    allow_anonymous: bool = field(default=False, metadata={"env": "SEATDESK_ALLOW_ANONYMOUS"})
    log_level: str = field(default="INFO", metadata={"env": "SEATDESK_LOG_LEVEL"})
    domain: str = field(default="seatdesk.example.com", metadata={"env": "SEATDESK_DOMAIN"})
    support_contact: str = field(default="your IT administrator", metadata={"env": "SEATDESK_SUPPORT_CONTACT"})
    page_size: int = field(default=10, metadata={"env": "SEATDESK_PAGE_SIZE", "range": (1, 25)})
    load_demo: bool = field(default=True, metadata={"env": "SEATDESK_LOAD_DEMO"})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")) -> "Settings":
        """Build settings from the environment; an optional `.env` fills what the environment lacks."""
        env = dict(os.environ if environ is None else environ)
        if dotenv is not None and dotenv.is_file():
            from dotenv import dotenv_values

            for key, value in dotenv_values(dotenv).items():
                if value is not None:
                    env.setdefault(key, value)
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name not in env:
                continue
            raw = env[name]
            if f.type in ("bool", bool):
                values[f.name] = _flag(name, raw)
            elif f.type in ("int", int):
                values[f.name] = _int(name, raw, *f.metadata["range"])
            else:
                values[f.name] = raw.strip()
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(f"SEATDESK_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR (got {self.log_level!r})")
        if self.app_type not in {"MultiTenant", "SingleTenant", "UserAssignedMSI"}:
            raise SettingsError(f"MicrosoftAppType must be MultiTenant, SingleTenant or UserAssignedMSI (got {self.app_type!r})")
        if self.app_type == "SingleTenant" and self.app_id and not self.app_tenant_id:
            raise SettingsError("MicrosoftAppTenantId is required when MicrosoftAppType is SingleTenant")

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)

    def check_can_serve(self) -> None:
        """Refuse to serve without credentials unless anonymous development mode is asked for explicitly."""
        if self.auth_enabled:
            if not self.app_password and self.app_type != "UserAssignedMSI":
                raise SettingsError("MicrosoftAppPassword is required when MicrosoftAppId is set")
            return
        if not self.allow_anonymous:
            raise SettingsError(
                "MicrosoftAppId is not set. Set the bot's credentials, or for local development "
                "set SEATDESK_ALLOW_ANONYMOUS=1 (accepted only on a loopback host)."
            )
        if self.host not in {"127.0.0.1", "localhost", "::1"}:
            raise SettingsError(f"SEATDESK_ALLOW_ANONYMOUS=1 is refused on a non-loopback host ({self.host})")


