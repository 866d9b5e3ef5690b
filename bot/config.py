"""Seatdesk's settings: read once at start-up into one typed object and passed in."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING

from services.llm import LLMConfig

if TYPE_CHECKING:
    from services.partnercenter import PartnerCenterConfig


class SettingsError(ValueError):
    """A setting has a value Seatdesk cannot use; the message names the setting."""


def _default_database_url() -> str:
    return f"sqlite+aiosqlite:///{Path('var/seatdesk.db').resolve()}"


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_HOST_PATTERN = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be 1 or 0 (got {raw!r})")


def _float(name: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds (got {raw!r})") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g} (got {value:g})")
    return value


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
    # Extra knowledge-base folders (os.pathsep-separated), searched after the shipped articles.
    knowledge_dir: str = field(default="", metadata={"env": "SEATDESK_KNOWLEDGE_DIR"})
    # A model writes knowledge answers only when a key is set; otherwise answers are offline.
    openai_api_key: str = field(
        default="", repr=False, metadata={"env": "SEATDESK_OPENAI_API_KEY", "also": "OPENAI_API_KEY", "secret": True}
    )
    openai_base_url: str = field(default="", metadata={"env": "SEATDESK_OPENAI_BASE_URL"})
    openai_model: str = field(default="gpt-4o-mini", metadata={"env": "SEATDESK_OPENAI_MODEL"})
    azure_openai_endpoint: str = field(default="", metadata={"env": "SEATDESK_AZURE_OPENAI_ENDPOINT"})
    azure_openai_deployment: str = field(default="", metadata={"env": "SEATDESK_AZURE_OPENAI_DEPLOYMENT"})
    azure_openai_api_version: str = field(default="2024-10-21", metadata={"env": "SEATDESK_AZURE_OPENAI_API_VERSION"})
    # Teams waits 15 s for the whole turn; the model call must end well before that.
    llm_timeout_seconds: float = field(default=6.0, metadata={"env": "SEATDESK_LLM_TIMEOUT_SECONDS", "range": (0.5, 12.0)})
    # Teams retries a turn it has no answer for after 15 s: slow work (a provider, Graph, downloads, a model)
    # is waited for this long at most, then finishes in the background and is reported afterwards.
    turn_deadline_seconds: float = field(default=5.0, metadata={"env": "SEATDESK_TURN_DEADLINE_SECONDS", "range": (0.5, 10.0)})
    # Where the Bot Framework publishes the keys that sign the tokens of requests from Teams.
    openid_metadata_url: str = field(
        default="https://login.botframework.com/v1/.well-known/openidconfiguration", metadata={"env": "SEATDESK_OPENID_METADATA_URL"}
    )
    # The only hosts replies and notices may go to (comma-separated; "*.example.com" = any subdomain).
    service_url_allowlist: str = field(
        default="smba.trafficmanager.net,*.botframework.com,*.teams.microsoft.com", metadata={"env": "SEATDESK_SERVICE_URL_ALLOWLIST"}
    )
    # The only hosts that may receive the bot's own token with a file download (a pasted image). Separate
    # from the list above: Teams serves images from its media hosts, which never get a reply.
    file_hosts: str = field(
        default="*.asm.skype.com,smba.trafficmanager.net,*.botframework.com,*.teams.microsoft.com", metadata={"env": "SEATDESK_FILE_HOSTS"}
    )
    # On SIGTERM, work still running after turns (notices, late results) gets this long before the connections close.
    shutdown_grace_seconds: float = field(default=10.0, metadata={"env": "SEATDESK_SHUTDOWN_GRACE_SECONDS", "range": (0.0, 120.0)})
    # Typed messages routed by the model (tool calling), the offline parser as fallback; off: offline only.
    language_model: bool = field(default=False, metadata={"env": "SEATDESK_LANGUAGE_MODEL"})
    # Where subscriptions live: Seatdesk's own ledger, or Microsoft Partner Center (docs/partner-center.md).
    provider: str = field(default="ledger", metadata={"env": "SEATDESK_PROVIDER"})
    # Endpoints are settings so that sovereign clouds (and tests) can point elsewhere.
    partner_center_url: str = field(default="https://api.partnercenter.microsoft.com", metadata={"env": "SEATDESK_PARTNER_CENTER_URL"})
    graph_url: str = field(default="https://graph.microsoft.com", metadata={"env": "SEATDESK_GRAPH_URL"})
    authority_url: str = field(default="https://login.microsoftonline.com", metadata={"env": "SEATDESK_AUTHORITY_URL"})
    pc_tenant_id: str = field(default="", metadata={"env": "SEATDESK_PC_TENANT_ID"})
    pc_client_id: str = field(default="", metadata={"env": "SEATDESK_PC_CLIENT_ID"})
    pc_client_secret: str = field(default="", repr=False, metadata={"env": "SEATDESK_PC_CLIENT_SECRET", "secret": True})
    pc_certificate_path: str = field(default="", metadata={"env": "SEATDESK_PC_CERTIFICATE_PATH"})
    pc_certificate_thumbprint: str = field(default="", metadata={"env": "SEATDESK_PC_CERTIFICATE_THUMBPRINT"})
    pc_country: str = field(default="DE", metadata={"env": "SEATDESK_PC_COUNTRY"})
    sync_interval_seconds: int = field(default=900, metadata={"env": "SEATDESK_SYNC_INTERVAL_SECONDS", "range": (60, 86400)})
    # How often the worker looks for due scheduled changes, approved orders, reminders and expiries.
    worker_interval_seconds: int = field(default=60, metadata={"env": "SEATDESK_WORKER_INTERVAL_SECONDS", "range": (5, 3600)})

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
            if name not in env and f.metadata.get("also") in env:
                name = f.metadata["also"]  # the standard name, e.g. OPENAI_API_KEY
            if name not in env:
                continue
            raw = env[name]
            if f.type in ("bool", bool):
                values[f.name] = _flag(name, raw)
            elif f.type in ("int", int):
                values[f.name] = _int(name, raw, *f.metadata["range"])
            elif f.type in ("float", float):
                values[f.name] = _float(name, raw, *f.metadata["range"])
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
        for name, url in (("SEATDESK_OPENAI_BASE_URL", self.openai_base_url), ("SEATDESK_AZURE_OPENAI_ENDPOINT", self.azure_openai_endpoint)):
            if url and not url.startswith(("https://", "http://")):
                raise SettingsError(f"{name} must be an http(s) URL (got {url!r})")
        self._validate_partner_center()
        metadata = urlsplit(self.openid_metadata_url)
        if not (metadata.scheme == "https" or (metadata.scheme == "http" and metadata.hostname in _LOOPBACK)) or not metadata.hostname:
            raise SettingsError(f"SEATDESK_OPENID_METADATA_URL must be an https URL (got {self.openid_metadata_url!r})")
        for name, hosts in (("SEATDESK_SERVICE_URL_ALLOWLIST", self.service_url_allowlist), ("SEATDESK_FILE_HOSTS", self.file_hosts)):
            for host in (part.strip() for part in hosts.split(",")):
                if host and not _HOST_PATTERN.fullmatch(host):
                    raise SettingsError(f"{name} must list host names or *.domain patterns, separated by commas (got {host!r})")
        if self.azure_openai_endpoint:
            if not self.azure_openai_deployment:
                raise SettingsError("SEATDESK_AZURE_OPENAI_DEPLOYMENT is required when SEATDESK_AZURE_OPENAI_ENDPOINT is set")
            if self.openai_base_url:
                raise SettingsError("set either SEATDESK_OPENAI_BASE_URL (OpenAI) or SEATDESK_AZURE_OPENAI_ENDPOINT (Azure OpenAI), not both")

    def _validate_partner_center(self) -> None:
        if self.provider not in {"ledger", "partnercenter"}:
            raise SettingsError(f"SEATDESK_PROVIDER must be ledger or partnercenter (got {self.provider!r})")
        for name, url in (
            ("SEATDESK_PARTNER_CENTER_URL", self.partner_center_url),
            ("SEATDESK_GRAPH_URL", self.graph_url),
            ("SEATDESK_AUTHORITY_URL", self.authority_url),
        ):
            # msal refuses an http authority; Partner Center and Graph carry bearer tokens.
            if not url.startswith("https://"):
                raise SettingsError(f"{name} must be an https URL (got {url!r})")
        if len(self.pc_country) != 2 or not self.pc_country.isalpha():
            raise SettingsError(f"SEATDESK_PC_COUNTRY must be a two-letter country code (got {self.pc_country!r})")
        if self.provider != "partnercenter":
            return
        if not self.pc_tenant_id or not self.pc_client_id:
            raise SettingsError("SEATDESK_PC_TENANT_ID and SEATDESK_PC_CLIENT_ID are required when SEATDESK_PROVIDER is partnercenter")
        if not self.pc_client_secret and not self.pc_certificate_path:
            raise SettingsError("set SEATDESK_PC_CLIENT_SECRET or SEATDESK_PC_CERTIFICATE_PATH (with SEATDESK_PC_CERTIFICATE_THUMBPRINT) for Partner Center")
        if self.pc_certificate_path and not self.pc_certificate_thumbprint:
            raise SettingsError("SEATDESK_PC_CERTIFICATE_THUMBPRINT is required with SEATDESK_PC_CERTIFICATE_PATH")

    def partner_center_config(self) -> "PartnerCenterConfig | None":
        """The Partner Center connection, or None when the built-in ledger is the provider."""
        if self.provider != "partnercenter":
            return None
        from services.partnercenter import Credentials, PartnerCenterConfig

        return PartnerCenterConfig(
            credentials=Credentials(
                tenant_id=self.pc_tenant_id,
                client_id=self.pc_client_id,
                client_secret=self.pc_client_secret,
                certificate_path=self.pc_certificate_path,
                certificate_thumbprint=self.pc_certificate_thumbprint,
            ),
            partner_center_url=self.partner_center_url.rstrip("/"),
            graph_url=self.graph_url.rstrip("/"),
            authority_url=self.authority_url.rstrip("/"),
            country=self.pc_country.upper(),
            sync_interval_seconds=self.sync_interval_seconds,
        )

    def llm_config(self) -> LLMConfig | None:
        """The model that writes knowledge answers, or None: answers stay offline (no key set)."""
        if not self.openai_api_key:
            return None
        return LLMConfig(
            api_key=self.openai_api_key,
            model=self.azure_openai_deployment if self.azure_openai_endpoint else self.openai_model,
            timeout_seconds=self.llm_timeout_seconds,
            base_url=self.openai_base_url or None,
            azure_endpoint=self.azure_openai_endpoint or None,
            azure_api_version=self.azure_openai_api_version,
        )

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


