"""The Teams app package: what `python -m bot package` zips must be accepted by Teams.

The manifest is checked against Microsoft's own JSON schema (bundled in the npm package
@microsoft/app-manifest, so no network), the icons against Teams' size and color rules.
"""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from bot.config import Settings
from bot.package import PLACEHOLDER_APP_ID, build_package, render_manifest, uses_placeholder_app_id

REPO_ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = Path(__file__).with_name("validate_manifest.mjs")
APP_MANIFEST_PACKAGE = REPO_ROOT / "node_modules" / "@microsoft" / "app-manifest" / "package.json"

APP_ID = "6f1c9a52-3b7e-4d1a-9c2e-8a4b5d6e7f80"
DOMAIN = "seatdesk.contoso-msp.com"
SETTINGS = Settings(app_id=APP_ID, domain=DOMAIN)


def validate(manifest: dict, tmp_path: Path) -> list[str]:
    """Schema errors for `manifest`, as reported by the node validator."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the manifest check needs Node.js 18 or newer")
    if not APP_MANIFEST_PACKAGE.is_file():
        pytest.fail("node_modules/@microsoft/app-manifest is missing: run `make node-deps` first")
    path = tmp_path / "manifest-under-test.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    result = subprocess.run(
        [node, str(VALIDATOR), str(path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["errors"]


@pytest.fixture
def package(tmp_path: Path) -> zipfile.ZipFile:
    out = build_package(SETTINGS, tmp_path / "out" / "seatdesk.zip", version="1.4.2")
    with zipfile.ZipFile(out) as zf:
        yield zf


def read_manifest(zf: zipfile.ZipFile) -> dict:
    return json.loads(zf.read("manifest.json"))


def test_package_holds_exactly_the_manifest_and_two_icons_at_the_root(package):
    assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]


def test_manifest_passes_the_teams_schema(package, tmp_path):
    assert validate(read_manifest(package), tmp_path) == []


def test_validator_reports_a_missing_required_field(package, tmp_path):
    """Guards against a validator that silently accepts everything (e.g. a schema it failed to load)."""
    manifest = read_manifest(package)
    del manifest["developer"]
    errors = validate(manifest, tmp_path)
    assert any("developer" in error for error in errors), errors


def test_validator_reports_a_wrong_scope_name(package, tmp_path):
    manifest = read_manifest(package)
    manifest["bots"][0]["scopes"] = ["personal", "groupchat"]  # the schema spells it groupChat
    assert validate(manifest, tmp_path) != []


def test_app_id_domain_and_version_are_substituted_everywhere(package):
    raw = package.read("manifest.json").decode("utf-8")
    assert "{{" not in raw and "}}" not in raw
    manifest = json.loads(raw)
    assert manifest["id"] == APP_ID
    assert manifest["version"] == "1.4.2"
    assert manifest["bots"][0]["botId"] == APP_ID
    assert manifest["webApplicationInfo"] == {"id": APP_ID, "resource": f"api://{DOMAIN}/botid-{APP_ID}"}
    assert manifest["validDomains"] == [DOMAIN]
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert manifest["developer"][key].startswith(f"https://{DOMAIN}/")


def test_bot_is_conversational_in_every_scope_with_files(package):
    bot = read_manifest(package)["bots"][0]
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert bot["supportsFiles"] is True
    assert bot["isNotificationOnly"] is False
    assert set(read_manifest(package)["permissions"]) == {"identity", "messageTeamMembers"}


def test_command_lists_respect_the_limits_teams_enforces_beyond_the_schema(package):
    """Teams rejects titles over 32 and descriptions over 128 characters; the schema allows more."""
    lists = read_manifest(package)["bots"][0]["commandLists"]
    scopes = {scope for command_list in lists for scope in command_list["scopes"]}
    assert scopes == {"personal", "team", "groupChat"}
    personal = next(cl for cl in lists if cl["scopes"] == ["personal"])
    titles = {command["title"] for command in personal["commands"]}
    assert {"dashboard", "subscriptions", "help"} <= titles
    for command_list in lists:
        assert 1 <= len(command_list["commands"]) <= 10
        assert len({c["title"] for c in command_list["commands"]}) == len(command_list["commands"])
        for command in command_list["commands"]:
            assert 0 < len(command["title"]) <= 32, command
            assert 0 < len(command["description"]) <= 128, command


def test_color_icon_is_a_192_pixel_png(package):
    image = Image.open(io.BytesIO(package.read("color.png")))
    assert image.format == "PNG"
    assert image.size == (192, 192)
    assert image.mode in {"RGB", "RGBA"}
    assert len(image.convert("RGB").getcolors(maxcolors=192 * 192)) > 2, "the color icon should not be blank"


def test_outline_icon_is_white_on_transparent_at_32_pixels(package):
    image = Image.open(io.BytesIO(package.read("outline.png")))
    assert image.format == "PNG"
    assert image.size == (32, 32)
    assert image.mode == "RGBA"
    data = image.tobytes()
    pixels = [tuple(data[i : i + 4]) for i in range(0, len(data), 4)]
    offenders = [p for p in pixels if p[3] != 0 and p[:3] != (255, 255, 255)]
    assert offenders == [], f"{len(offenders)} visible pixels are not white"
    assert any(p[3] == 255 for p in pixels), "the outline icon has no glyph"
    assert any(p[3] == 0 for p in pixels), "the outline icon has no transparent background"


def test_package_is_reproducible(tmp_path):
    first = build_package(SETTINGS, tmp_path / "a.zip", version="1.0.0").read_bytes()
    second = build_package(SETTINGS, tmp_path / "b.zip", version="1.0.0").read_bytes()
    assert first == second


def test_committed_icons_match_the_drawing_script():
    """Someone who edits make_icons.py must regenerate the PNGs (run it from the repository root)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_icons", REPO_ROOT / "manifest" / "make_icons.py")
    make_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icons)
    for name, image in (("color.png", make_icons.make_color()), ("outline.png", make_icons.make_outline())):
        committed = Image.open(REPO_ROOT / "manifest" / name)
        assert committed.size == image.size and committed.mode == image.mode, name
        assert committed.tobytes() == image.tobytes(), f"manifest/{name} is stale: run manifest/make_icons.py"


def test_missing_app_id_builds_with_the_placeholder_and_says_so(tmp_path, caplog):
    settings = Settings(app_id="", domain=DOMAIN)
    assert uses_placeholder_app_id(settings)
    with zipfile.ZipFile(build_package(settings, tmp_path / "seatdesk.zip", version="0.1.0")) as zf:
        manifest = read_manifest(zf)
    assert manifest["bots"][0]["botId"] == PLACEHOLDER_APP_ID
    assert manifest["id"] == PLACEHOLDER_APP_ID
    assert PLACEHOLDER_APP_ID in caplog.text
    assert validate(manifest, tmp_path) == []


def test_version_defaults_to_the_project_version(tmp_path):
    with zipfile.ZipFile(build_package(SETTINGS, tmp_path / "seatdesk.zip")) as zf:
        assert read_manifest(zf)["version"].count(".") == 2


@pytest.mark.parametrize(
    "app_id",
    ["not-a-guid", "6f1c9a52-3b7e-4d1a-9c2e-8a4b5d6e7f8", "{6f1c9a52-3b7e-4d1a-9c2e-8a4b5d6e7f80}", "6f1c9a523b7e4d1a9c2e8a4b5d6e7f80"],
)
def test_an_app_id_that_is_not_a_guid_is_refused(app_id, tmp_path):
    with pytest.raises(ValueError, match="MicrosoftAppId"):
        build_package(Settings(app_id=app_id, domain=DOMAIN), tmp_path / "x.zip", version="1.0.0")
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize(
    "domain",
    ["https://seatdesk.contoso.com", "seatdesk.contoso.com/bot", "seatdesk.contoso.com:443", "", "sea tdesk.com", "-bad.example.com", "a..b"],
)
def test_a_domain_that_is_not_a_bare_host_name_is_refused(domain):
    with pytest.raises(ValueError, match="SEATDESK_DOMAIN"):
        render_manifest(Settings(app_id=APP_ID, domain=domain), "1.0.0")


def test_a_version_that_is_not_semver_is_refused():
    with pytest.raises(ValueError, match="version"):
        render_manifest(SETTINGS, "1.0")
