"""The Teams app package: manifest.json rendered from `manifest/` plus the two icons, zipped.

`python -m bot package` calls `build_package`; everything here is pure except the final write.
"""
from __future__ import annotations

import json
import logging
import re
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from bot.config import Settings

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST_DIR = REPO_ROOT / "manifest"
TEMPLATE_NAME = "manifest.template.json"
ICON_NAMES = ("color.png", "outline.png")

# Schema-valid but obviously not a real app: lets a developer build and inspect a package
# before the bot is registered. Teams will refuse to upload it, which is what we want.
PLACEHOLDER_APP_ID = "00000000-0000-0000-0000-000000000000"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SEMVER = re.compile(r"^(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Z_]+)\s*\}\}")

# A fixed timestamp for every zip entry, so the same inputs give a byte-identical package.
_ZIP_DATE_TIME = (2024, 1, 1, 0, 0, 0)


def uses_placeholder_app_id(settings: Settings) -> bool:
    """True when MicrosoftAppId is not set and the package carries `PLACEHOLDER_APP_ID`."""
    return not settings.app_id.strip()


def _app_id(settings: Settings) -> str:
    app_id = settings.app_id.strip() or PLACEHOLDER_APP_ID
    if not _GUID.match(app_id):
        raise ValueError(
            f"MicrosoftAppId must be the bot's Microsoft Entra application id, a GUID such as "
            f"1b2c3d4e-1234-4abc-9def-0123456789ab (got {settings.app_id!r})."
        )
    return app_id


def _domain(settings: Settings) -> str:
    domain = settings.domain.strip()
    labels = domain.split(".")
    if not domain or len(domain) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(
            "SEATDESK_DOMAIN must be the bare host name the bot is served on, such as "
            f"seatdesk.contoso.com, without scheme, port or path (got {settings.domain!r})."
        )
    return domain


def project_version() -> str:
    """Seatdesk's version: from the installed distribution, else from pyproject.toml."""
    try:
        return metadata.version("seatdesk")
    except metadata.PackageNotFoundError:
        with (REPO_ROOT / "pyproject.toml").open("rb") as f:
            return tomllib.load(f)["project"]["version"]


def _substitute(node: Any, values: dict[str, str]) -> Any:
    """Replace `{{NAME}}` in every string of the parsed template; values never touch JSON syntax."""
    if isinstance(node, dict):
        return {key: _substitute(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(item, values) for item in node]
    if isinstance(node, str):
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise ValueError(f"{TEMPLATE_NAME} uses the unknown placeholder {{{{{name}}}}}.")
            return values[name]

        return _PLACEHOLDER.sub(replace, node)
    return node


def render_manifest(settings: Settings, version: str, manifest_dir: Path = MANIFEST_DIR) -> dict[str, Any]:
    """The manifest as a dict, with the app id, domain and version filled in."""
    if not _SEMVER.match(version):
        raise ValueError(f"The app version must look like 1.2.3, as Teams requires (got {version!r}).")
    values = {"APP_ID": _app_id(settings), "DOMAIN": _domain(settings), "VERSION": version}
    template = json.loads((manifest_dir / TEMPLATE_NAME).read_text(encoding="utf-8"))
    return _substitute(template, values)


def build_package(
    settings: Settings,
    out: Path = Path("build/seatdesk.zip"),
    *,
    version: str | None = None,
    manifest_dir: Path = MANIFEST_DIR,
) -> Path:
    """Write the Teams app package (manifest.json, color.png, outline.png at the root) and return its path.

    With MicrosoftAppId unset the package uses `PLACEHOLDER_APP_ID`; check
    `uses_placeholder_app_id(settings)` to warn the user that Teams will not accept it.
    """
    manifest = render_manifest(settings, version or project_version(), manifest_dir)
    if uses_placeholder_app_id(settings):
        log.warning("MicrosoftAppId is not set: the package uses the placeholder app id %s", PLACEHOLDER_APP_ID)
    icons = {name: (manifest_dir / name).read_bytes() for name in ICON_NAMES}

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        entries = {"manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")}
        entries.update(icons)
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    # Replace in one step so an interrupted build never leaves a half-written package behind.
    partial.replace(out)
    log.info("Teams app package written to %s (app id %s, domain %s)", out, manifest["id"], manifest["validDomains"][0])
    return out
