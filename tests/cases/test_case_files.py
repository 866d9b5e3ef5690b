"""Files sent into the personal chat for a case: stored with limits, refused with a clear sentence,
and a failed download leaves the case as it was."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from services import attachments
from services.models import CaseAttachment, SupportCase
from tests.cases.conftest import cards_of, teams_for
from tests.conftest import card_text

DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"


async def _open_case(teams) -> str:
    form = cards_of(await teams.say("open a case"))[0]
    submit = next(b for b in form["actions"] if b["verb"] == "case.submit")
    _, body = await teams.click("case.submit", {**submit["data"], "title": "Excel freezes", "q_affected_users": "Just me", "q_cost_centre": "12"})
    teams.connector.take()
    return re.search(r"CS-2026-\d{6}", card_text(body["value"])).group(0)


def _file(server, name: str, file_type: str) -> dict:
    return {
        "contentType": DOWNLOAD_INFO,
        "name": name,
        "content": {"downloadUrl": str(server.make_url(f"/files/{name}")), "uniqueId": "1", "fileType": file_type},
    }


async def _send_files(teams, *files: dict) -> list[str]:
    response = await teams.post(teams.activity("message", attachments=list(files)))
    assert response.status in (200, 201), await response.text()
    return [a.get("text") or "" for a in teams.connector.take()]


async def _stored(db, number: str) -> list[CaseAttachment]:
    async with db() as session:
        return list(
            (
                await session.execute(
                    select(CaseAttachment).join(SupportCase, SupportCase.id == CaseAttachment.case_id).where(SupportCase.number == number)
                )
            ).scalars()
        )


async def test_a_file_sent_after_opening_a_case_is_stored_with_it(bot_client, connector, demo_db, file_server):
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    pdf = b"%PDF-1.7 error report"
    file_server.files["report.pdf"] = (pdf, 200)
    file_server.files["image"] = (b"\x89PNG\r\n\x1a\nfake", 200)
    pasted = {"contentType": "image/png", "name": "image", "contentUrl": str(file_server.make_url("/files/image"))}
    texts = await _send_files(teams, _file(file_server, "report.pdf", "pdf"), pasted)
    assert texts == [f"I added report.pdf (21 B) to case {number}.", f"I added image.png (12 B) to case {number}."]
    stored = await _stored(demo_db, number)
    assert [(a.filename, a.content_type, a.data) for a in stored] == [("report.pdf", "application/pdf", pdf), ("image.png", "image/png", b"\x89PNG\r\n\x1a\nfake")]
    _, body = await teams.click("case.details", {"number": number})
    assert "report.pdf (21 B)" in card_text(body["value"])


async def test_refused_files_say_why_and_leave_the_case_unchanged(bot_client, connector, demo_db, file_server, monkeypatch):
    monkeypatch.setattr(attachments, "MAX_BYTES", 1024)  # the limit as the dialog reads it
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    file_server.files["big.zip"] = (b"0" * 2048, 200)
    file_server.files["tool.exe"] = (b"MZ", 200)
    texts = await _send_files(
        teams,
        _file(file_server, "big.zip", "zip"),
        _file(file_server, "tool.exe", "exe"),
        _file(file_server, "gone.log", "log"),  # the server answers 404
    )
    assert texts[0] == f"big.zip is larger than 1 KB, so I didn't add it. Case {number} is unchanged; please send a smaller file or a zip."
    assert texts[1].startswith("I can't take tool.exe: only images, PDF") and number in texts[1]
    assert texts[2].startswith("I couldn't download gone.log from Teams") and "The case itself is fine" in texts[2]
    assert await _stored(demo_db, number) == []
    _, body = await teams.click("case.details", {"number": number})
    assert "Excel freezes" in card_text(body["value"])


async def test_a_file_without_a_case_waiting_asks_which_case_and_add_a_file_opens_the_window(bot_client, connector, demo_db, file_server, clock):
    from datetime import timedelta

    teams = await teams_for(bot_client, connector, demo_db)
    file_server.files["a.txt"] = (b"hello", 200)
    texts = await _send_files(teams, _file(file_server, "a.txt", "txt"))
    assert texts == ['Which case is this file for? Open the case and click "Add a file", then send it again.']
    number = await _open_case(teams)
    clock.advance(timedelta(minutes=31))  # the offer to add a file has lapsed
    assert (await _send_files(teams, _file(file_server, "a.txt", "txt")))[0].startswith("Which case is this file for?")
    status, body = await teams.click("case.file", {"number": number})
    assert body["type"] == "application/vnd.microsoft.activity.message" and "send it here in this chat" in body["value"]
    assert await _send_files(teams, _file(file_server, "a.txt", "txt")) == [f"I added a.txt (5 B) to case {number}."]


@pytest.mark.parametrize(
    "name,declared,expected",
    [
        ("screen.PNG", "", "image/png"),
        ("report.pdf", "pdf", "application/pdf"),
        ("trace.log", "log", "text/plain"),
        ("budget.xlsx", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("logs.zip", "zip", "application/zip"),
        ("image", "image/jpeg", "image/jpeg"),
        ("run.exe", "exe", None),
        ("invoice.pdf.exe", "exe", None),
        ("page.html", "html", None),
        ("image", "text/html", None),
    ],
)
def test_allowed_types(name, declared, expected):
    assert attachments.accepted_type(name, declared) == expected


def test_file_names_are_made_safe():
    assert attachments.safe_filename("../../etc/passwd") == "passwd"
    assert attachments.safe_filename("C:\\Users\\a\\shot.png") == "shot.png"
    assert attachments.safe_filename('a<b>"c".txt') == "abc.txt"
    long = attachments.safe_filename("x" * 400 + ".pdf")
    assert len(long) == 255 and long.endswith(".pdf")
    assert attachments.safe_filename("") == "file"


async def test_only_https_or_loopback_urls_are_fetched():
    refused = await attachments.download("http://10.0.0.1/secret", "a.txt")
    assert isinstance(refused, attachments.Refused) and refused.why == attachments.Refusal.URL
    refused = await attachments.download("file:///etc/passwd", "a.txt")
    assert refused.why == attachments.Refusal.URL


async def test_the_real_limit_is_10_mb_even_without_a_content_length(file_server):
    file_server.files["big.log"] = (b"0" * (attachments.MAX_BYTES + 1), 200)
    for url in ("/files/big.log", "/files/big.log?chunked"):
        refused = await attachments.download(str(file_server.make_url(url)), "big.log")
        assert isinstance(refused, attachments.Refused) and refused.why == attachments.Refusal.TOO_BIG, url
    file_server.files["ok.log"] = (b"1" * attachments.MAX_BYTES, 200)
    got = await attachments.download(str(file_server.make_url("/files/ok.log?chunked")), "ok.log")
    assert isinstance(got, attachments.Downloaded) and len(got.data) == attachments.MAX_BYTES


async def test_teams_retrying_the_same_file_message_stores_the_file_once(bot_client, connector, demo_db, file_server):
    teams = await teams_for(bot_client, connector, demo_db)
    number = await _open_case(teams)
    file_server.files["trace.log"] = (b"trace", 200)
    activity = teams.activity("message", attachments=[_file(file_server, "trace.log", "log")])
    for _ in range(2):
        assert (await teams.post(activity)).status in (200, 201)
    assert [a.get("text") for a in connector.take()] == [f"I added trace.log (5 B) to case {number}."]
    assert len(await _stored(demo_db, number)) == 1
