"""Check Adaptive Cards with Microsoft's own renderer, as Teams would draw them.

The npm package `adaptivecards` (the official JavaScript renderer) runs in headless
Debian Chromium driven by Playwright. Each card is parsed against a target schema
version, validated, rendered into a Teams-sized bubble and optionally screenshotted.
What the renderer reports (unknown elements, bad enum values, duplicate ids, features
newer than the target version) comes back as one readable line per problem.

Nothing here touches the network: every request the page makes is aborted.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, Playwright, Route, async_playwright

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = REPO_ROOT / "node_modules"
CHROMIUM = Path("/usr/bin/chromium")
SETUP_HINT = "run `make system-deps node-deps`"

CARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# Teams draws a card bubble about this wide in a desktop chat.
CARD_WIDTH_PX = 460

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Generic stack: Segoe UI where it exists, Debian's metric-compatible fonts elsewhere.
FONT_STACK = "'Segoe UI', 'Liberation Sans', 'DejaVu Sans', Arial, sans-serif"
MONOSPACE_STACK = "Consolas, 'Liberation Mono', 'DejaVu Sans Mono', monospace"


def _colors(default: str, subtle: str) -> dict[str, str]:
    return {"default": default, "subtle": subtle}


def _foreground() -> dict[str, dict[str, str]]:
    return {
        "default": _colors("#242424", "#616161"),
        "dark": _colors("#242424", "#616161"),
        "light": _colors("#FFFFFF", "#F5F5F5"),
        "accent": _colors("#5B5FC7", "#4F52B2"),
        "good": _colors("#237B4B", "#1B5C38"),
        "warning": _colors("#8A3707", "#6B2B05"),
        "attention": _colors("#C4314B", "#A72037"),
    }


# A light host config modelled on Teams' (Fluent light theme colours, 14px body text).
TEAMS_LIGHT_HOST_CONFIG: dict[str, Any] = {
    "supportsInteractivity": True,
    "fontFamily": FONT_STACK,
    "fontTypes": {
        "default": {
            "fontFamily": FONT_STACK,
            "fontSizes": {"small": 12, "default": 14, "medium": 14, "large": 18, "extraLarge": 24},
            "fontWeights": {"lighter": 300, "default": 400, "bolder": 600},
        },
        "monospace": {
            "fontFamily": MONOSPACE_STACK,
            "fontSizes": {"small": 12, "default": 14, "medium": 14, "large": 18, "extraLarge": 24},
            "fontWeights": {"lighter": 200, "default": 400, "bolder": 600},
        },
    },
    "spacing": {"small": 4, "default": 8, "medium": 16, "large": 20, "extraLarge": 24, "padding": 16},
    "separator": {"lineThickness": 1, "lineColor": "#E0E0E0"},
    "imageSizes": {"small": 32, "medium": 52, "large": 100},
    "containerStyles": {
        "default": {"backgroundColor": "#FFFFFF", "foregroundColors": _foreground()},
        "emphasis": {"backgroundColor": "#F5F5F5", "foregroundColors": _foreground()},
        "accent": {"backgroundColor": "#E8EBFA", "foregroundColors": _foreground()},
        "good": {"backgroundColor": "#E7F2DA", "foregroundColors": _foreground()},
        "attention": {"backgroundColor": "#FCF4F6", "foregroundColors": _foreground()},
        "warning": {"backgroundColor": "#FBF6D9", "foregroundColors": _foreground()},
    },
    "actions": {
        "maxActions": 6,
        "spacing": "default",
        "buttonSpacing": 8,
        "showCard": {"actionMode": "inline", "inlineTopMargin": 16, "style": "emphasis"},
        "actionsOrientation": "horizontal",
        "actionAlignment": "left",
        "iconPlacement": "leftOfTitle",
        "iconSize": 16,
    },
    "adaptiveCard": {"allowCustomStyle": True},
    "factSet": {
        "title": {"weight": "bolder", "size": "default", "color": "default", "wrap": True, "maxWidth": 150},
        "value": {"weight": "default", "size": "default", "color": "default", "wrap": True},
        "spacing": 12,
    },
    "inputs": {
        "label": {
            "requiredInputs": {"weight": "bolder", "suffix": " *", "suffixColor": "attention"},
            "optionalInputs": {"weight": "bolder"},
        },
        "errorMessage": {"size": "small", "color": "attention"},
    },
}

# A Teams chat in miniature: grey canvas, white bubble.
PAGE_HTML = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Seatdesk card check</title>
<style>
  html, body {{ margin: 0; background: #F5F5F5; font-family: {FONT_STACK}; }}
  #stage {{ padding: 16px; }}
  #bubble {{ width: {CARD_WIDTH_PX}px; box-sizing: border-box; background: #FFFFFF;
            border: 1px solid #E0E0E0; border-radius: 6px; overflow: hidden;
            box-shadow: 0 1px 2px rgba(0,0,0,0.12); }}
</style></head>
<body><div id="stage"><div id="bubble"></div></div></body></html>"""

# Loaded after the renderer's own stylesheet so Teams' look wins: purple primary buttons,
# red-text destructive ones, outlined inputs.
TEAMS_THEME_CSS = f"""
  .ac-pushButton {{ font-family: {FONT_STACK}; font-size: 14px; font-weight: 600;
                    border-radius: 4px; padding: 5px 12px; min-height: 32px;
                    background-color: #FFFFFF; color: #242424; border: 1px solid #D1D1D1; }}
  .ac-pushButton:hover {{ background-color: #F5F5F5; }}
  .ac-pushButton.style-positive, .ac-pushButton.primary {{
      background-color: #5B5FC7; color: #FFFFFF; border-color: #5B5FC7; }}
  .ac-pushButton.style-destructive {{
      background-color: #FFFFFF; color: #C4314B; border-color: #C4314B; }}
  .ac-input {{ font-family: {FONT_STACK}; font-size: 14px; color: #242424; }}
  .ac-input.ac-textInput, .ac-input.ac-numberInput, .ac-input.ac-dateInput,
  .ac-input.ac-timeInput, select.ac-input {{
      box-sizing: border-box; min-height: 32px; padding: 4px 8px; background-color: #FFFFFF;
      border: 1px solid #D1D1D1; border-bottom-color: #616161; border-radius: 4px; }}
"""

# Stands in for every remote image (avatars, icons) so layouts keep their shape offline.
PLACEHOLDER_IMAGE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
    '<rect width="64" height="64" fill="#E0E0E0"/></svg>'
)

# Runs in the page. Returns the problems of one card and whether it rendered.
RENDER_JS = """
({card, targetVersion, hostConfig}) => {
  const AC = window.AdaptiveCards;
  const problems = [];
  const bubble = document.getElementById("bubble");
  bubble.replaceChildren();

  const version = AC.Versions.getAllDeclaredVersions()
    .find((v) => v.toString() === targetVersion);
  if (!version) {
    return {problems: [`unknown target version ${targetVersion}`], rendered: false};
  }

  const describe = (e) => {
    const phase = AC.ValidationPhase[e.phase] || e.phase;
    const kind = AC.ValidationEvent[e.event] || e.event;
    let where = "";
    if (e.source && typeof e.source.getJsonTypeName === "function") {
      where = ` [${e.source.getJsonTypeName()}${e.source.id ? "#" + e.source.id : ""}]`;
    }
    return `${phase} ${kind}${where}: ${e.message}`;
  };

  const adaptiveCard = new AC.AdaptiveCard();
  adaptiveCard.hostConfig = new AC.HostConfig(hostConfig);
  // Teams renders up to the target version; a card declaring a newer one falls back.
  adaptiveCard.maxVersion = version;
  const context = new AC.SerializationContext(version);
  try {
    adaptiveCard.parse(card, context);
  } catch (err) {
    return {problems: [`parse threw: ${err && err.message ? err.message : err}`], rendered: false};
  }
  for (let i = 0; i < context.eventCount; i++) {
    problems.push(describe(context.getEventAt(i)));
  }

  try {
    const results = adaptiveCard.validateProperties();
    for (const e of results.validationEvents) problems.push(describe(e));
  } catch (err) {
    problems.push(`validation threw: ${err && err.message ? err.message : err}`);
  }

  let rendered = false;
  try {
    const element = adaptiveCard.render();
    if (!element) {
      problems.push("render produced nothing");
    } else {
      bubble.appendChild(element);
      rendered = true;
      const box = element.getBoundingClientRect();
      if (box.height < 1) problems.push("rendered card is empty (zero height)");
      if (element.scrollWidth > element.clientWidth + 1) {
        problems.push(`content is ${element.scrollWidth}px wide, wider than the ${element.clientWidth}px card`);
      }
    }
  } catch (err) {
    problems.push(`render threw: ${err && err.message ? err.message : err}`);
  }
  return {problems, rendered};
}
"""


class RendererUnavailable(RuntimeError):
    """Chromium or the renderer's npm packages are not installed."""


def renderer_scripts(node_modules: Path = NODE_MODULES) -> list[Path]:
    """The files the page loads, in order; raises if any is missing."""
    files = [
        node_modules / "markdown-it" / "dist" / "markdown-it.min.js",
        node_modules / "adaptivecards" / "dist" / "adaptivecards.min.js",
    ]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise RendererUnavailable(f"missing {', '.join(missing)}: {SETUP_HINT}")
    return files


class CardRenderer:
    """One headless Chromium page with the official renderer loaded, reused for every card."""

    def __init__(
        self,
        *,
        target_version: str = "1.5",
        host_config: dict[str, Any] | None = None,
        node_modules: Path = NODE_MODULES,
        chromium: Path = CHROMIUM,
    ) -> None:
        self.target_version = target_version
        self.host_config = TEAMS_LIGHT_HOST_CONFIG if host_config is None else host_config
        self.node_modules = node_modules
        self.chromium = chromium
        self.launch_seconds: float | None = None
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._page: Page | None = None

    async def __aenter__(self) -> CardRenderer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        scripts = renderer_scripts(self.node_modules)
        if not self.chromium.is_file():
            raise RendererUnavailable(f"{self.chromium} not found: {SETUP_HINT}")
        started = time.perf_counter()
        self._playwright = await async_playwright().start()
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=str(self.chromium), headless=True, args=CHROMIUM_FLAGS
            )
            context = await self._browser.new_context(
                viewport={"width": CARD_WIDTH_PX + 64, "height": 800},
                device_scale_factor=1,
                service_workers="block",
            )
            # Cards point at images on the internet; this check never fetches them.
            await context.route("**/*", _only_local)
            self._page = await context.new_page()
            await self._page.set_content(PAGE_HTML)
            await self._page.add_style_tag(
                path=str(self.node_modules / "adaptivecards" / "dist" / "adaptivecards.css")
            )
            await self._page.add_style_tag(content=TEAMS_THEME_CSS)
            for script in scripts:
                await self._page.add_script_tag(path=str(script))
            await self._page.evaluate(
                """() => {
                  // Teams' Markdown subset: no headings, tables, images, quotes or code blocks,
                  // and a single newline is no line break (Teams needs a blank line).
                  const md = window.markdownit({html: false, linkify: true, breaks: false})
                    .disable(["heading", "lheading", "table", "image", "blockquote", "code", "fence"]);
                  window.AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {
                    result.outputHtml = md.render(text);
                    result.didProcess = true;
                  };
                }"""
            )
        except BaseException:
            await self.close()
            raise
        self.launch_seconds = time.perf_counter() - started

    async def close(self) -> None:
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None
        self._page = None

    async def check(self, name: str, card: dict[str, Any], png: Path | None = None) -> list[str]:
        """Problems the renderer finds in one card; screenshots it to `png` if given."""
        if self._page is None:
            raise RuntimeError("CardRenderer.start() was not called")
        if not CARD_NAME.fullmatch(name):
            raise ValueError(f"card name {name!r} is not a file-safe slug")
        try:
            # A JSON round trip turns tuples into lists and fails on what a bot could not send.
            payload = json.loads(json.dumps(card))
        except (TypeError, ValueError) as error:
            return [f"card is not JSON: {error}"]
        # The renderer forgives a missing type or version; Teams shows nothing for such a card.
        if not isinstance(payload, dict):
            return [f"card is a {type(payload).__name__}, not a JSON object"]
        envelope = []
        if payload.get("type") != "AdaptiveCard":
            envelope.append(f'card "type" is {payload.get("type")!r}, not "AdaptiveCard"')
        if not payload.get("version"):
            envelope.append('card has no "version"')
        try:
            outcome = await self._page.evaluate(
                RENDER_JS,
                {"card": payload, "targetVersion": self.target_version, "hostConfig": self.host_config},
            )
        except Exception as error:  # a page-level failure is this card's problem, not a crash
            return [f"renderer failed: {error}"]
        problems = envelope + list(outcome["problems"])
        if png is not None and outcome["rendered"]:
            await self._page.evaluate("() => document.fonts.ready.then(() => true)")
            await self._page.locator("#bubble").screenshot(path=str(png), animations="disabled")
        return problems


async def _only_local(route: Route) -> None:
    """Lets local URLs through, answers remote images with a placeholder, aborts the rest."""
    request = route.request
    if request.url.startswith(("file:", "about:", "data:")):
        await route.continue_()
    elif request.resource_type == "image":
        await route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER_IMAGE_SVG)
    else:
        await route.abort("blockedbyclient")


async def check_cards(
    cards: dict[str, dict],
    out_dir: Path | None = None,
    *,
    target_version: str = "1.5",
    host_config: dict[str, Any] | None = None,
    node_modules: Path = NODE_MODULES,
    chromium: Path = CHROMIUM,
) -> dict[str, list[str]]:
    """Problems per card name (empty list = clean); with `out_dir`, also `<name>.png` per card.

    Card names must be file-safe slugs. Raises RendererUnavailable when Chromium or the
    npm packages are missing.
    """
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
    async with CardRenderer(
        target_version=target_version,
        host_config=host_config,
        node_modules=node_modules,
        chromium=chromium,
    ) as renderer:
        problems: dict[str, list[str]] = {}
        for name, card in cards.items():
            png = None if out_dir is None else out_dir / f"{name}.png"
            problems[name] = await renderer.check(name, card, png)
        return problems


def check_cards_sync(
    cards: dict[str, dict],
    out_dir: Path | None = None,
    **options: Any,
) -> dict[str, list[str]]:
    """`check_cards` for callers without an event loop (CLI, sync fixtures)."""
    return asyncio.run(check_cards(cards, out_dir, **options))
