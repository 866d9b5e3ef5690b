"""Seatdesk in the Agents Playground's web UI, in headless Chromium, as a person would use it.

Open the Playground, see the welcome card, type "dashboard", type "subscriptions", press a
"Details" button and see the details card take the list card's place. Each step is saved as a
screenshot under build/e2e/ (01-welcome.png … 04-details.png; failure.png when a step fails);
look at them after a change.
Chromium is Debian's /usr/bin/chromium, never a downloaded one; the page may reach 127.0.0.1 only.
"""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from playwright.async_api import Locator, Page, Route, WebSocket, async_playwright, expect

from bot.cardcheck import CHROMIUM, CHROMIUM_FLAGS
from tests.e2e.playground import HOST, SCREENSHOTS, expected_overview

STEP_TIMEOUT_MS = 15_000


async def _only_loopback(route: Route) -> None:
    if urlsplit(route.request.url).hostname == HOST:
        await route.continue_()
    else:  # the UI asks an Office CDN for Segoe UI; the system font does instead
        await route.abort("blockedbyclient")


def _keep_log_panel(socket: WebSocket, playground) -> None:
    """Copy the page's log-panel feed (every activity and answer) to the Playground's transcript."""
    if socket.url.endswith("/_ws/log/stream"):
        socket.on("framereceived", lambda payload: playground.record(json.loads(payload)) if isinstance(payload, str) else None)


def _card(page: Page, heading: str) -> Locator:
    """The rendered Adaptive Card whose text includes `heading`."""
    return page.locator(".ac-adaptiveCard").filter(has_text=heading)


def _figure(card: Locator, label: str) -> Locator:
    """The column of a big figure: the innermost container holding its label."""
    return card.locator(".ac-container").filter(has=card.page.get_by_text(label, exact=True)).last


def _value_over(label: str, value: object) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(str(value))}\s*{re.escape(label)}\s*$")


async def _say(page: Page, text: str) -> None:
    compose = page.get_by_role("textbox")
    await compose.click()
    await compose.fill(text)
    await page.get_by_role("button", name="Send Message").click()


async def _shoot(page: Page, card: Locator, name: str) -> None:
    await card.scroll_into_view_if_needed()
    await page.screenshot(path=str(SCREENSHOTS / name))


async def test_a_person_walks_through_seatdesk(require_browser, playground, seatdesk, identity):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "failure.png").unlink(missing_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
            await context.route("**/*", _only_loopback)
            page = await context.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.on("websocket", lambda socket: _keep_log_panel(socket, playground))
            try:
                await _walk_through(page, playground, seatdesk, identity)
            except BaseException:
                await page.screenshot(path=str(SCREENSHOTS / "failure.png"))
                raise
        finally:
            await browser.close()


async def _walk_through(page: Page, playground, seatdesk, identity) -> None:
    # 1. Opening the personal chat installs the bot: the welcome card.
    await page.goto(playground.url + "/")
    welcome = _card(page, "Welcome to Seatdesk").first
    await expect(welcome).to_be_visible()
    await expect(welcome).to_contain_text(identity.customer)
    await expect(welcome).to_contain_text("Admin")
    await _shoot(page, welcome, "01-welcome.png")

    # 2. "dashboard": the overview card with the demo figures.
    await _say(page, "dashboard")
    overview = _card(page, f"{identity.customer}: Microsoft 365 at a glance")
    await expect(overview).to_be_visible()
    expected = await expected_overview(seatdesk.database_url, identity.customer)
    await expect(_figure(overview, "Active subscriptions")).to_have_text(_value_over("Active subscriptions", expected.active_subscriptions))
    await expect(_figure(overview, "Active licences")).to_have_text(_value_over("Active licences", f"{expected.active_licenses:,}"))
    await _shoot(page, overview, "02-dashboard.png")

    # 3. "subscriptions": the list card, one Details button per subscription.
    await _say(page, "subscriptions")
    listing = _card(page, f"{identity.customer}: subscriptions")
    await expect(listing).to_be_visible()
    details_buttons = listing.get_by_role("button", name="Details")
    await expect(details_buttons.first).to_be_visible()
    await _shoot(page, listing, "03-subscriptions.png")

    # 4. Details: the invoke response replaces the list card with the subscription's card.
    # The button's row is a ColumnSet: the renderer draws it as the second ac-container around the button.
    row = details_buttons.first.locator("xpath=ancestor::div[contains(@class,'ac-container')][2]")
    name = (await row.locator(".ac-textBlock").first.inner_text()).strip().removeprefix("↳").strip()
    assert name, "the Details button's row shows no subscription name"
    await details_buttons.first.click()
    details = _card(page, "Cancellation window").filter(has_text=name)
    await expect(details).to_be_visible()
    await expect(details).to_contain_text("Status")
    await expect(details).to_contain_text("Seats")
    await expect(listing).to_have_count(0)  # replaced in place, not posted below
    await _shoot(page, details, "04-details.png")
