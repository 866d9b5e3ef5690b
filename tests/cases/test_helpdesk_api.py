"""The reseller's helpdesk API: key checks, listing, status changes and comments that reach the
case's owner in Teams as a proactive notice, internal comments that never do, and outages."""
from __future__ import annotations

import re

import yaml

from tests.cases.conftest import cards_of, teams_for
from tests.conftest import buttons, card_text

CARD = "application/vnd.microsoft.card.adaptive"


async def _open_case(teams, title: str = "Teams keeps signing me out") -> str:
    form = cards_of(await teams.say("open a case"))[0]
    submit = next(b for b in form["actions"] if b["verb"] == "case.submit")
    _, body = await teams.click("case.submit", {**submit["data"], "title": title, "q_affected_users": "Just me", "q_cost_centre": "7"})
    teams.connector.take()
    return re.search(r"CS-2026-\d{6}", card_text(body["value"])).group(0)


async def test_every_route_needs_a_valid_key(bot_client, api_key, demo_db, clock):
    routes = [
        ("GET", "/api/helpdesk/cases"),
        ("GET", "/api/helpdesk/cases/CS-2026-000001"),
        ("POST", "/api/helpdesk/cases/CS-2026-000001/status"),
        ("POST", "/api/helpdesk/cases/CS-2026-000001/comments"),
        ("GET", "/api/helpdesk/cases/CS-2026-000001/attachments/1"),
        ("GET", "/api/helpdesk/outages"),
        ("POST", "/api/helpdesk/outages"),
        ("PATCH", "/api/helpdesk/outages/x"),
    ]
    for headers in ({}, {"X-Api-Key": "sdk_wrong"}, {"X-Api-Key": ""}):
        for method, path in routes:
            response = await bot_client.request(method, path, headers=headers, json={})
            assert response.status == 401, (method, path)
            assert (await response.json()) == {"error": "a valid X-Api-Key header is required"}
    assert (await bot_client.get("/api/helpdesk/cases", headers=api_key)).status == 200
    # A revoked key stops working.
    from sqlalchemy import update

    from services.cases import HelpdeskKey

    async with demo_db() as session, session.begin():
        await session.execute(update(HelpdeskKey).values(revoked_at=clock.now()))
    assert (await bot_client.get("/api/helpdesk/cases", headers=api_key)).status == 401


async def test_status_change_and_public_comment_notify_the_owner_who_can_reply(bot_client, connector, demo_db, api_key):
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)

    listed = await (await bot_client.get("/api/helpdesk/cases?customer=fabrikam", headers=api_key)).json()
    assert [c["number"] for c in listed["cases"]] == [number] and listed["cases"][0]["customer"] == "Fabrikam GmbH"
    assert (await bot_client.get("/api/helpdesk/cases?customer=nope", headers=api_key)).status == 404
    assert (await bot_client.get("/api/helpdesk/cases?status=bogus", headers=api_key)).status == 400

    response = await bot_client.post(f"/api/helpdesk/cases/{number}/status", headers=api_key, json={"status": "in_progress", "author": "Priya Raman"})
    assert response.status == 200
    result = await response.json()
    assert result["notified"] is True and result["case"]["status"] == "in_progress"
    [notice] = cards_of(connector.take())
    text = card_text(notice)
    assert f"Update on case {number}" in text and "The status changed from New to **In progress**." in text
    reply = next(b for b in buttons(notice) if b["verb"] == "case.comment")
    assert reply["title"] == "Send reply" and reply["data"]["number"] == number

    response = await bot_client.post(
        f"/api/helpdesk/cases/{number}/comments", headers=api_key, json={"body": "Please try signing out of all devices. **Then** <i>restart</i>.", "author": "Priya Raman"}
    )
    assert response.status == 201 and (await response.json())["notified"] is True
    [notice] = cards_of(connector.take())
    text = card_text(notice)
    assert "Priya Raman (Helpdesk) wrote:" in text and "Please try signing out of all devices. \\*\\*Then\\*\\* \\<i\\>restart\\</i\\>." in text

    # The owner answers from the notice: the reply lands on the case.
    status, body = await teams.click("case.comment", {**reply["data"], "comment": "Done, still happens."})
    assert body["type"] == CARD and "Done, still happens." in card_text(body["value"])
    case = await (await bot_client.get(f"/api/helpdesk/cases/{number}", headers=api_key)).json()
    assert [c["body"] for c in case["comments"]][-1] == "Done, still happens." and case["comments"][-1]["from_customer"] is True

    # Resolving tells the owner too, with a button to reopen.
    await bot_client.post(f"/api/helpdesk/cases/{number}/status", headers=api_key, json={"status": "resolved"})
    [notice] = cards_of(connector.take())
    assert "to **Resolved**" in card_text(notice) and any(b["verb"] == "case.reopen" for b in buttons(notice))


async def test_internal_comments_never_reach_the_customer(bot_client, connector, demo_db, api_key):
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    secret = "Customer is on the old tenant; check licence before answering."
    response = await bot_client.post(f"/api/helpdesk/cases/{number}/comments", headers=api_key, json={"body": secret, "internal": True})
    assert response.status == 201 and (await response.json())["notified"] is False
    assert connector.take() == []
    _, body = await teams.click("case.details", {"number": number})
    assert secret not in str(body) and "No comments yet." in card_text(body["value"])
    # A later status notice doesn't carry it either, and the staff view does.
    await bot_client.post(f"/api/helpdesk/cases/{number}/status", headers=api_key, json={"status": "waiting_for_customer"})
    assert secret not in str(connector.take())
    staff = await (await bot_client.get(f"/api/helpdesk/cases/{number}", headers=api_key)).json()
    assert staff["comments"] == [{**staff["comments"][0], "body": secret, "internal": True}]
    # Answering a case that waits for the customer moves it back to the helpdesk.
    _, body = await teams.click("case.comment", {"number": number, "comment": "Here is the info."})
    assert "In progress" in card_text(body["value"]) and secret not in str(body)


async def test_status_rules_and_bad_input_get_clear_answers(bot_client, connector, demo_db, api_key):
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    post = lambda path, body: bot_client.post(path, headers=api_key, json=body)  # noqa: E731
    assert (await post(f"/api/helpdesk/cases/{number}/status", {"status": "exploded"})).status == 422
    assert (await post(f"/api/helpdesk/cases/{number}/status", {"status": "new"})).status == 409
    assert (await post(f"/api/helpdesk/cases/{number}/status", {"status": "closed"})).status == 200
    response = await post(f"/api/helpdesk/cases/{number}/status", {"status": "in_progress"})
    assert response.status == 409 and "cannot go from closed to in_progress" in (await response.json())["error"]
    assert (await post("/api/helpdesk/cases/CS-2026-999999/status", {"status": "closed"})).status == 404
    assert (await post(f"/api/helpdesk/cases/{number}/comments", {"body": ""})).status == 422
    assert (await post(f"/api/helpdesk/cases/{number}/comments", {"body": "x" * 4001})).status == 422
    assert (await post(f"/api/helpdesk/cases/{number}/comments", {"body": "ok", "internal": "yes"})).status == 422
    response = await bot_client.post(f"/api/helpdesk/cases/{number}/comments", headers=api_key, data=b"{nope", )
    assert response.status == 415
    response = await bot_client.post(f"/api/helpdesk/cases/{number}/comments", headers={**api_key, "Content-Type": "application/json"}, data=b"{nope")
    assert response.status == 400
    # The customer can no longer reopen a closed case.
    _, body = await teams.click("case.reopen", {"number": number})
    assert "can no longer be reopened" in body["value"]


async def test_helpdesk_creates_an_outage_customers_see_in_chat(bot_client, connector, demo_db, api_key, clock):
    outage = {
        "key": "exo-fabrikam-mailflow",
        "customer": "fabrikam",
        "kind": "incident",
        "title": "Mail to external recipients is delayed <b>now</b>",
        "description": "We are on it.",
        "services": ["Exchange Online"],
        "starts_at": "2026-11-22T08:30:00Z",
    }
    response = await bot_client.post("/api/helpdesk/outages", headers=api_key, json=outage)
    assert response.status == 201, await response.text()
    assert (await bot_client.post("/api/helpdesk/outages", headers=api_key, json=outage)).status == 422  # the key exists
    bad = {**outage, "key": "x2", "starts_at": "2026-11-22T08:30:00"}
    assert "time zone" in (await (await bot_client.post("/api/helpdesk/outages", headers=api_key, json=bad)).json())["error"]
    bad = {**outage, "key": "x3", "ends_at": "2026-11-22T07:00:00Z"}
    assert (await bot_client.post("/api/helpdesk/outages", headers=api_key, json=bad)).status == 422

    fabrikam = await teams_for(bot_client, connector, demo_db, "fabrikam")
    text = card_text(cards_of(await fabrikam.say("outages"))[0])
    assert "Mail to external recipients is delayed \\<b\\>now\\</b\\>" in text
    assert "Planned maintenance of the Microsoft 365 backup service" in text  # global, upcoming
    assert "Outlook cannot open shared mailboxes" not in text  # Northwind's own incident
    northwind = await teams_for(bot_client, connector, demo_db, "northwind")
    text = card_text(cards_of(await northwind.say("is there an outage"))[0])
    assert "Outlook cannot open shared mailboxes" in text and "Mail to external" not in text

    # Ending it moves it to the past.
    response = await bot_client.patch("/api/helpdesk/outages/exo-fabrikam-mailflow", headers=api_key, json={"ends_at": "2026-11-22T08:55:00Z"})
    assert response.status == 200 and (await response.json())["ends_at"] == "2026-11-22T08:55:00Z"
    assert (await bot_client.patch("/api/helpdesk/outages/nope", headers=api_key, json={})).status == 404
    assert "Mail to external" not in card_text(cards_of(await fabrikam.say("outages"))[0])
    card = cards_of(await fabrikam.say("past outages"))[0]
    text = card_text(card)
    assert "Mail to external" in text and "Teams calls dropped after a few minutes" in text
    listed = await (await bot_client.get("/api/helpdesk/outages?include_past=true", headers=api_key)).json()
    assert {"exo-fabrikam-mailflow", "incident-teams-calls-past"} <= {o["key"] for o in listed["outages"]}


async def test_staff_can_download_a_stored_attachment(bot_client, connector, demo_db, api_key, clock):
    from services.cases import DatabaseHelpdesk, Viewer
    from services.models import SupportCase
    from sqlalchemy import select

    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    async with demo_db() as session:
        case = (await session.execute(select(SupportCase).where(SupportCase.number == number))).scalar_one()
    stored = await DatabaseHelpdesk(demo_db, clock).attach(Viewer(case.customer_id, case.owner_id, "x"), number, 'log "1".txt', "text/plain", b"trace")
    response = await bot_client.get(f"/api/helpdesk/cases/{number}/attachments/{stored.id}", headers=api_key)
    assert response.status == 200 and await response.read() == b"trace"
    assert response.headers["Content-Type"] == "application/octet-stream" and 'filename="log 1.txt"' in response.headers["Content-Disposition"]
    assert (await bot_client.get(f"/api/helpdesk/cases/CS-2026-999999/attachments/{stored.id}", headers=api_key)).status == 404


async def test_the_openapi_document_describes_every_route(bot_client):
    response = await bot_client.get("/api/helpdesk/openapi.yaml")
    assert response.status == 200
    spec = yaml.safe_load(await response.text())
    assert spec["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in ("get", "post", "patch")}
    mounted = {
        (route.method, route.resource.canonical)
        for route in bot_client.server.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/helpdesk/") and route.method != "HEAD"
    }
    assert mounted == documented
