"""Issue 5 in the Agents Playground's web UI, in headless Chromium: two people, two Teams clients.

Stefan Hoffmann (admin) has the module's `playground`, Anna Müller (Modify) her own
`requester_playground`, each open in its own browser context against the same bot. Stefan opens
Seatdesk and says hello (so Seatdesk can reach him); Anna types "catalog", opens Power BI Pro's
offers, adds 3 seats of the 1-month, billed-monthly offer, orders a separate subscription (her
company already has a Power BI Pro trial), checks out and places the order: her card says it waits
for approval. The approval card appears in Stefan's chat on its own; he presses Approve and his
card shows the decision; Anna's chat shows that the order was approved and then that it is ready;
the database has the completed order and the new subscription.

Screenshots under build/e2e/: 13-order-checkout.png and 14-order-waiting.png (Anna's client),
15-approval-card.png and 16-approved.png (Stefan's), 17-order-ready.png (Anna's);
failure-orders-anna.png / failure-orders-stefan.png when a step fails. Helpers follow
test_playground_ui.py (same Chromium, same loopback-only routing, inputs by their labels).
"""
from __future__ import annotations

import asyncio
import re
import time

from playwright.async_api import BrowserContext, Locator, Page, async_playwright, expect

from bot.cardcheck import CHROMIUM, CHROMIUM_FLAGS
from tests.e2e.browser import keep_log_panel, labelled, only_loopback, say, shoot, titled
from tests.e2e.playground import REPLY_TIMEOUT, SCREENSHOTS, card_inputs, order_record, product_subscriptions

STEP_TIMEOUT_MS = 15_000
PRODUCT = "Power BI Pro"
SEATS = 3
OFFER = "1 month, billed monthly"  # a monthly term: no acceptance of a commitment needed
SHOTS = ("13-order-checkout.png", "14-order-waiting.png", "15-approval-card.png", "16-approved.png", "17-order-ready.png")
# The welcome's language is the person's (German at Fabrikam) or the Playground's (en-US), depending on
# which of the two install activities it answers.
WELCOME = re.compile(r"^(Welcome to Seatdesk|Willkommen bei Seatdesk)$")


def _said(page: Page, text: str | re.Pattern[str]) -> Locator:
    """A plain text message in the chat (the requester's order card may say the same: take the first)."""
    return page.get_by_role("paragraph").filter(has_text=text).first


async def _answered(playground, text: str, timeout: float = REPLY_TIMEOUT) -> dict:
    """The log panel's record of the bot answering the typed message `text` (its turn is over)."""
    deadline = time.monotonic() + timeout
    while True:
        for entry in playground.transcript():
            body = (entry.get("request") or {}).get("body") or {}
            if entry.get("to") == "User Application" and entry.get("activityName") == "message" and body.get("text") == text:
                return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"the log panel shows no answered message {text!r} within {timeout:.0f} s")
        await asyncio.sleep(0.05)  # a poll interval: the transcript is a file written by the page's log feed


async def _open(context: BrowserContext, playground) -> Page:
    page = await context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.on("websocket", lambda socket: keep_log_panel(socket, playground))
    await page.goto(playground.url + "/")
    # Opening the personal chat installs the bot: the welcome card.
    await expect(titled(page, WELCOME).first).to_be_visible()
    return page


async def test_an_order_is_approved_across_two_teams_clients(require_browser, seatdesk, identity, requester, playground, requester_playground):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for stale in [*(SCREENSHOTS / n for n in SHOTS), SCREENSHOTS / "failure-orders-anna.png", SCREENSHOTS / "failure-orders-stefan.png"]:
        stale.unlink(missing_ok=True)
    owned_before = await product_subscriptions(seatdesk.database_url, identity.customer, PRODUCT)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        pages: dict[str, Page] = {}
        try:
            contexts = []
            for who in ("stefan", "anna"):
                context = await browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
                await context.route("**/*", only_loopback)
                contexts.append(context)
            # Stefan opens Seatdesk in his Teams and says hello: from now on Seatdesk can reach him.
            pages["stefan"] = stefan = await _open(contexts[0], playground)
            await say(stefan, "hello")
            hello = await _answered(playground, "hello")
            assert hello["request"]["body"]["from"]["aadObjectId"] == identity.user["aad_object_id"]
            assert hello["response"]["statusCode"] < 300, hello
            pages["anna"] = anna = await _open(contexts[1], requester_playground)
            number = await _order(anna, requester_playground, identity.customer, identity.user["name"])
            await _approve(stefan, number, requester.user["name"], identity.user["name"])
            await _hear_back(anna, number, identity.user["name"])
        except BaseException:
            for who, page in pages.items():
                await page.screenshot(path=str(SCREENSHOTS / f"failure-orders-{who}.png"))
            raise
        finally:
            await browser.close()

    # The database: the order is completed, approved by Stefan; a new Power BI Pro subscription exists.
    done = await order_record(seatdesk.database_url, number)
    assert done["status"] == "completed" and done["approval"] == "approved" and done["decided_by"] == identity.user["name"], done
    assert done["requester"] == requester.user["name"], done
    [line] = done["lines"]
    assert (line["product"], line["quantity"], line["term"], line["billing"]) == (PRODUCT, SEATS, "P1M", "monthly"), line
    assert line["subscription"] and line["subscription"]["quantity"] == SEATS and line["subscription"]["status"] == "active", line
    owned_after = await product_subscriptions(seatdesk.database_url, identity.customer, PRODUCT)
    assert [s["id"] for s in owned_after if s["id"] not in {o["id"] for o in owned_before}] == [line["subscription"]["id"]]


async def _order(page: Page, playground, customer: str, approver: str) -> str:
    """Anna: catalog → Power BI Pro's offers → 3 seats → separate subscription → check out → place order."""
    sent_before = len(playground.cards_sent())
    await say(page, "catalog")
    catalog = titled(page, f"Catalog of {customer}")
    try:
        await expect(catalog).to_be_visible()
    except AssertionError:
        said = [c.get("body", [{}])[0].get("text") for c in playground.cards_sent()[sent_before:]]
        raise AssertionError(f'MISROUTE: typing "catalog" as a Modify user did not bring the catalog card; the bot sent {said}') from None

    # The catalog row named Power BI Pro (its first line), and its Offers button.
    # The button's row is a ColumnSet: the renderer draws it as the second ac-container around the button.
    buttons = catalog.get_by_role("button", name="Offers", exact=True)
    await expect(buttons.first).to_be_visible()
    names = [
        (await b.locator("xpath=ancestor::div[contains(@class,'ac-container')][2]").locator(".ac-textBlock").first.inner_text()).strip()
        for b in await buttons.all()
    ]
    assert names.count(PRODUCT) == 1, f"catalog rows: {names}"
    sent_before = len(playground.cards_sent())
    await buttons.nth(names.index(PRODUCT)).click()

    offers = titled(page, PRODUCT)
    await expect(offers).to_be_visible()
    await expect(catalog).to_have_count(0)  # answered in place
    sent = await playground.card_sent(PRODUCT, after=sent_before)
    choice = next(c["title"] for c in card_inputs(sent)["offer"]["choices"] if c["title"].startswith(OFFER))
    await offers.get_by_role("combobox", name=labelled("Offer")).click()
    await page.get_by_role("option", name=choice, exact=True).click()
    await expect(offers.get_by_role("combobox", name=labelled("Offer"))).to_have_value(choice)
    await offers.get_by_role("spinbutton", name=labelled("Seats")).fill(str(SEATS))
    await offers.get_by_role("button", name="Add to cart", exact=True).click()

    # Fabrikam already has Power BI Pro (a trial): order a separate subscription.
    duplicate, cart = titled(page, f"You already have {PRODUCT}"), titled(page, "Your cart")
    await expect(duplicate.or_(cart)).to_be_visible()
    if await duplicate.count():
        await duplicate.get_by_role("button", name="Order a separate subscription", exact=True).click()
    await expect(cart).to_be_visible()
    await expect(cart).to_contain_text(f"Added {SEATS} × {PRODUCT} to your cart.")
    await cart.get_by_role("button", name="Check out", exact=True).click()

    checkout = titled(page, "Check out")
    await expect(checkout).to_be_visible()
    await expect(checkout).to_contain_text(f"{SEATS} × {PRODUCT}")
    await expect(checkout).to_contain_text("1 month")
    await expect(checkout).to_contain_text("This order needs approval by")
    await expect(checkout.get_by_role("checkbox")).to_have_count(0)  # a monthly term: nothing to accept
    await shoot(page, checkout, "13-order-checkout.png")

    await checkout.get_by_role("button", name="Place order", exact=True).click()
    placed = titled(page, re.compile(r"^Order ORD-[\w-]+$"))
    await expect(placed).to_be_visible()
    await expect(placed).to_contain_text("Your order is waiting for approval.")
    await expect(placed).to_contain_text(approver)
    await expect(placed).to_contain_text("Waiting for approval")
    await expect(checkout).to_have_count(0)
    await shoot(page, placed, "14-order-waiting.png")
    heading = await placed.get_by_role("heading").first.inner_text()
    return re.search(r"ORD-[\w-]+", heading).group(0)


async def _approve(page: Page, number: str, requester: str, approver: str) -> None:
    """Stefan: the approval card arrives in his chat on its own; he presses Approve."""
    approval = titled(page, f"Approval needed: order {number}")
    await expect(approval).to_be_visible()
    await expect(approval).to_contain_text(f"{requester} wants to order:")
    await expect(approval).to_contain_text(f"{SEATS} × {PRODUCT}")
    await expect(approval.get_by_role("button", name="Reject", exact=True)).to_be_visible()
    await shoot(page, approval, "15-approval-card.png")

    await approval.get_by_role("button", name="Approve", exact=True).click()
    await expect(approval).to_contain_text(f"✔ Approved by {approver} on ")
    await expect(approval.get_by_role("button")).to_have_count(0)
    await expect(approval).to_have_count(1)  # in place, not posted again
    await expect(_said(page, f"The order {number} you approved is ready.")).to_be_visible()
    await shoot(page, approval, "16-approved.png")


async def _hear_back(page: Page, number: str, approver: str) -> None:
    """Anna: told that the order was approved, then that it is ready."""
    approved = _said(page, f"Your order {number} was approved by {approver}.")
    ready = _said(page, f"Your order {number} is ready")
    await expect(approved).to_be_visible()
    await expect(ready).to_be_visible()
    await shoot(page, ready, "17-order-ready.png")
