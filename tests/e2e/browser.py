"""What the Playground UI tests share: loopback-only routing, the log panel, finding cards and
inputs, typing into the compose box, and screenshots."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from playwright.async_api import Locator, Page, Route, WebSocket

from tests.e2e.playground import HOST, SCREENSHOTS

CHROME_PX = 260  # the Playground's header and compose box around the chat
MAX_SHOT_HEIGHT = 2_400


async def only_loopback(route: Route) -> None:
    if urlsplit(route.request.url).hostname == HOST:
        await route.continue_()
    else:  # the UI asks an Office CDN for Segoe UI; the system font does instead
        await route.abort("blockedbyclient")


def keep_log_panel(socket: WebSocket, playground) -> None:
    """Copy the page's log-panel feed (every activity and answer) to the Playground's transcript."""
    if socket.url.endswith("/_ws/log/stream"):
        socket.on("framereceived", lambda payload: playground.record(json.loads(payload)) if isinstance(payload, str) else None)


def titled(page: Page, heading: str | re.Pattern[str]) -> Locator:
    """The rendered Adaptive Card whose heading is `heading` (not a card that merely mentions it)."""
    return page.locator(".ac-adaptiveCard").filter(has=page.get_by_role("heading", name=heading, exact=True))


def labelled(label: str) -> re.Pattern[str]:
    # An input's accessible name is its label, then " *" when required (and any error message).
    return re.compile(rf"^{re.escape(label)}")


async def say(page: Page, text: str) -> None:
    # The compose box; cards' Input.Text are textboxes too.
    compose = page.locator("[data-lexical-editor='true'][role='textbox']")
    await compose.click()
    await compose.fill(text)
    await page.get_by_role("button", name="Send Message").click()


async def shoot(page: Page, card: Locator, name: str) -> None:
    """Screenshot the page with `card` in view; a card taller than the chat is shot in a taller window."""
    await card.scroll_into_view_if_needed()
    viewport = page.viewport_size
    box = await card.bounding_box()
    if box and box["height"] > viewport["height"] - CHROME_PX:
        await page.set_viewport_size({"width": viewport["width"], "height": min(int(box["height"]) + CHROME_PX, MAX_SHOT_HEIGHT)})
        await card.evaluate("card => card.scrollIntoView({block: 'center'})")
        try:
            await page.screenshot(path=str(SCREENSHOTS / name))
        finally:
            await page.set_viewport_size(viewport)
        return
    await page.screenshot(path=str(SCREENSHOTS / name))
