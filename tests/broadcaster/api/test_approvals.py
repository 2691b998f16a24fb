"""The officer's desk over real HTTP: approval (the examples of docs/api.md, *Approval*, sent by the
officer and the approver they name), an emergency that skips it, the lexicon heard in the next render,
the reading of a text, the LED slogans, and bad input that changes nothing."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.api.app import create_app
from broadcaster.api.server import HttpServer
from broadcaster.db import Announcement, AuditEntry, Broadcast, LexiconEntry, Role, Slogan
from broadcaster.services import Services
from broadcaster.services.zones import add_village
from schedules.clock import SystemClock
from tests.broadcaster.api.test_api import _same_shape
from tests.broadcaster.conftest import PASSWORD, make_services, make_token, make_user

DOC = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text(encoding="utf-8")
EXAMPLE = re.compile(
    r"<!-- approval: (\w+) (\S+) as (\S+) -->\s*(?:```json\n(.*?)```)?\s*<!-- approval response: (\d+) -->\s*"
    r"```json\n(.*?)```",
    re.S,
)
ROLES = {"can-bo": Role.OFFICER, "chu-tich": Role.APPROVER, "quan-tri": Role.ADMIN}
NOTICE = {"text": "Thông báo: tối nay 19h họp thôn tại KVC.", "zones": ["thon-1"], "at": "+1h"}


@dataclass
class Desk:
    url: str
    svc: Services

    def as_(self, username: str) -> httpx.Client:
        token = make_token(self.svc, username, ROLES[username])
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def stored(self) -> tuple[int, ...]:
        """Everything a refused request must leave as it was."""
        with self.svc.db.session() as s:
            states = tuple(sorted((a.id, a.state.value) for a in s.scalars(select(Announcement))))
            return (
                hash(states),
                *(s.scalar(select(func.count()).select_from(m)) or 0 for m in (Broadcast, LexiconEntry, Slogan)),
                s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.notin_(("token.add",)))),
            )  # type: ignore[return-value]


@pytest.fixture
def desk(tmp_path: Path, database_url: str) -> Iterator[Desk]:
    svc = make_services(
        tmp_path, database_url, SystemClock(), LOA_SCHEDULE_QUIET_START="00:00", LOA_SCHEDULE_QUIET_END="00:00",
        LOA_SECURITY_REQUIRE_APPROVAL="true",
    )  # fmt: skip
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
        add_village(s, "thon-2", "Thôn 2")
    for username, role in ROLES.items():
        make_user(svc, username, role)
    server = HttpServer(create_app(svc, svc.audio.store), "127.0.0.1", 0)
    server.start()
    yield Desk(server.url, svc)
    server.stop()
    svc.db.dispose()


def test_the_documented_approval_examples_hold(desk: Desk) -> None:
    examples = EXAMPLE.findall(DOC)
    assert len(examples) >= 8
    clients = {name: desk.as_(name) for name in ROLES}
    for method, path, who, body, status, expected_text in examples:
        resp = clients[who].request(method, path, json=json.loads(body) if body else None)
        assert resp.status_code == int(status), (method, path, who, resp.text)
        expected, got = json.loads(expected_text), resp.json()
        if isinstance(expected, dict) and "error" in expected:
            assert got == expected  # codes and Vietnamese messages are part of the contract
            continue
        _same_shape(expected, got)
        for key in ("state", "title", "text", "created_by"):
            if isinstance(expected, dict) and key in expected:
                assert got[key] == expected[key], (path, key)
        if isinstance(expected, dict) and "approval" in expected:
            for key in ("submitted_by", "decision", "decided_by", "reason", "via"):
                assert got["approval"][key] == expected["approval"][key], (path, key)


def test_an_approved_item_is_what_was_heard_and_the_approver_can_hear_it_first(desk: Desk) -> None:
    officer, approver = desk.as_("can-bo"), desk.as_("chu-tich")
    item = officer.post("/api/v1/announcements", json=NOTICE).json()
    assert item["state"] == "awaiting_approval"
    heard = approver.get(f"/api/v1/announcements/{item['id']}/audio")
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/mpeg" and len(heard.content) > 1000
    done = approver.post(f"/api/v1/announcements/{item['id']}/approve").json()
    assert done["state"] == "scheduled" and done["audio"]["sha256"] == item["audio"]["sha256"]
    mine = officer.get("/api/v1/announcements", params={"mine": "true"}).json()
    assert [(m["id"], m["state"], m["approval"]["decided_by"]) for m in mine] == [(item["id"], "scheduled", "chu-tich")]
    assert officer.get("/api/v1/announcements", params={"state": "awaiting_approval"}).json() == []
    draft = officer.post("/api/v1/announcements", json={**NOTICE, "draft": True}).json()
    assert officer.get(f"/api/v1/announcements/{draft['id']}/audio").status_code == 404  # not rendered yet


def test_an_emergency_skips_approval_after_its_second_confirmation_and_it_is_logged(desk: Desk) -> None:
    approver = desk.as_("chu-tich")
    alarm = {"text": "Khẩn cấp: nước lũ đang lên, bà con di chuyển lên vùng cao.", "priority": "emergency"}
    asked = approver.post("/api/v1/announcements", json=alarm)
    assert asked.status_code == 409
    error = asked.json()["error"]
    assert error["code"] == "confirm_emergency"
    assert "Thôn 1, Thôn 2" in error["message"] and "3 lần" in error["message"]  # the villages and the repeats
    code = error["params"]["confirmation"]
    sent = approver.post("/api/v1/announcements", json={**alarm, "confirmation": code, "reason": "Trạm báo lũ"})
    assert sent.status_code == 201, sent.text
    assert (sent.json()["state"], sent.json()["approval"]["via"]) == ("scheduled", "emergency")
    assert approver.get("/api/v1/approvals").json() == []
    draft = approver.post("/api/v1/announcements", json={**alarm, "draft": True})
    assert draft.status_code == 400 and draft.json()["error"]["code"] == "bad_priority"
    with desk.svc.db.session() as s:
        log = {(a.actor, a.action): json.loads(a.detail) for a in s.scalars(select(AuditEntry))}
    assert log[("chu-tich", "emergency.confirmed")]["reason"] == "Trạm báo lũ"
    assert log[("chu-tich", "announce")]["approval"] == "emergency"


def test_a_cookie_without_its_csrf_token_approves_nothing(desk: Desk) -> None:
    item = desk.as_("can-bo").post("/api/v1/announcements", json=NOTICE).json()
    browser = httpx.Client(base_url=desk.url, timeout=60)
    signed = browser.post("/api/v1/session", json={"username": "chu-tich", "password": PASSWORD})
    assert signed.status_code == 200
    before = desk.stored()
    forged = browser.post(f"/api/v1/announcements/{item['id']}/approve")
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "bad_csrf"
    assert desk.stored() == before
    csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
    assert browser.post(f"/api/v1/announcements/{item['id']}/approve", headers=csrf).json()["state"] == "scheduled"


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status", "code"),
    [
        ("can-bo", "POST", "/api/v1/announcements/{id}/approve", None, 403, "forbidden"),
        ("quan-tri", "POST", "/api/v1/announcements/{id}/approve", None, 403, "forbidden"),  # the admin's own
        ("chu-tich", "POST", "/api/v1/announcements/{id}/reject", {}, 422, "invalid_request"),
        ("chu-tich", "POST", "/api/v1/announcements/{id}/reject", {"reason": ""}, 400, "reason_required"),
        ("chu-tich", "POST", "/api/v1/announcements/999/approve", None, 404, "not_found"),
        ("chu-tich", "POST", "/api/v1/announcements/99999999999999999999/approve", None, 404, "not_found"),
        ("can-bo", "PATCH", "/api/v1/announcements/{id}", {"text": "Khác"}, 409, "bad_state"),  # it waits
        ("can-bo", "POST", "/api/v1/announcements/{id}/submit", None, 409, "bad_state"),
        ("can-bo", "DELETE", "/api/v1/announcements/{id}", {"reason": "nhầm"}, 409, "bad_state"),
        ("can-bo", "PATCH", "/api/v1/announcements/{id}", {"colour": "red"}, 422, "invalid_request"),
        ("can-bo", "GET", "/api/v1/announcements?state=lost", None, 422, "invalid_request"),
        ("can-bo", "POST", "/api/v1/announcements", {**NOTICE, "bulletin": 2**40}, 404, "no_bulletin"),
        ("can-bo", "POST", "/api/v1/lexicon", {"written": "KVC", "spoken": "khu 3"}, 400, "lexicon_digits"),
        ("chu-tich", "POST", "/api/v1/lexicon", {"written": "KVC", "spoken": "khu vui chơi"}, 403, "forbidden"),
        ("can-bo", "POST", "/api/v1/slogans", {"text": "x" * 201}, 400, "slogan_too_long"),
        ("can-bo", "POST", "/api/v1/slogans", {"text": "Đúng", "zones": ["thon-9"]}, 404, "unknown_zone"),
        ("can-bo", "DELETE", "/api/v1/slogans/5", None, 404, "not_found"),
        ("can-bo", "POST", "/api/v1/readings", {"text": " "}, 400, "empty_text"),
    ],
)
def test_bad_requests_are_refused_in_vietnamese_and_change_nothing(
    desk: Desk, who: str, method: str, path: str, body: dict[str, Any] | None, status: int, code: str
) -> None:
    item = desk.as_("quan-tri").post("/api/v1/announcements", json=NOTICE).json()
    before = desk.stored()
    resp = desk.as_(who).request(method, path.replace("{id}", str(item["id"])), json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]
    assert desk.stored() == before


def _rendered(client: httpx.Client, text: str) -> dict[str, Any]:
    job = client.post("/api/v1/renders", json={"text": text}).json()
    deadline = time.monotonic() + 60
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/api/v1/renders/{job['id']}").json()
    assert job["state"] == "done", job
    return job


def test_fix_a_reading_then_hear_it_again(desk: Desk) -> None:
    """The compose page's loop: hear a text, see a name misread, add its reading, hear it again. The
    second render is a new one, with the new words in it, without a restart."""
    officer = desk.as_("can-bo")
    text = "Mời bà con đến KVC thôn 1."
    before = officer.post("/api/v1/readings", json={"text": text}).json()
    assert "ca vê xê" in before["spoken"]
    first = _rendered(officer, text)
    heard = officer.get(f"/api/v1/renders/{first['id']}/audio")
    assert heard.status_code == 200 and len(heard.content) > 1000

    added = officer.post("/api/v1/lexicon", json={"written": "KVC", "spoken": "khu vui chơi"})
    assert added.status_code == 201, added.text
    after = officer.post("/api/v1/readings", json={"text": text}).json()
    assert after["spoken"] == "Mời bà con đến khu vui chơi thôn một."
    kvc = after["expansions"][0]
    assert (kvc["written"], kvc["spoken"], kvc["source"]) == ("KVC", "khu vui chơi", "lexicon")
    assert text[kvc["start"] : kvc["end"]] == "KVC"
    assert after["spoken"][kvc["spoken_start"] : kvc["spoken_end"]] == "khu vui chơi"
    second = _rendered(officer, text)
    assert second["audio"]["sha256"] != first["audio"]["sha256"]  # not the cached render of the old reading
    assert officer.get(f"/api/v1/renders/{second['id']}/audio").content != heard.content
    assert [e["written"] for e in officer.get("/api/v1/lexicon").json()] == ["KVC"]


def test_slogans_are_kept_over_http(desk: Desk) -> None:
    officer = desk.as_("can-bo")
    one = officer.post("/api/v1/slogans", json={"text": "Toàn dân đoàn kết"}).json()
    two = officer.post("/api/v1/slogans", json={"text": "Nói không với rác thải nhựa", "zones": ["thon-2"]}).json()
    assert (one["order"], two["order"], two["zones"]) == (1, 2, ["thon-2"])
    changed = officer.patch(f"/api/v1/slogans/{two['id']}", json={"order": 0, "active": False}).json()
    assert (changed["order"], changed["active"], changed["text"]) == (0, False, "Nói không với rác thải nhựa")
    assert [s["id"] for s in desk.as_("chu-tich").get("/api/v1/slogans").json()] == [two["id"], one["id"]]
    assert officer.delete(f"/api/v1/slogans/{one['id']}").status_code == 200
    assert [s["id"] for s in officer.get("/api/v1/slogans").json()] == [two["id"]]


def test_a_recording_waits_for_approval_like_a_text(desk: Desk, tmp_path: Path) -> None:
    import subprocess

    tone = tmp_path / "loi-keu-goi.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=330:duration=2",
                    str(tone)], check=True)  # fmt: skip
    officer, approver = desk.as_("can-bo"), desk.as_("chu-tich")
    form = {"zones": "thon-1", "title": "Lời kêu gọi", "at": "+1h"}
    upload = {"file": ("a.wav", tone.read_bytes())}
    sent = officer.post("/api/v1/recordings", data=form, files=upload)
    assert sent.status_code == 201, sent.text
    assert (sent.json()["state"], sent.json()["audio"]["engine"]) == ("awaiting_approval", "recording")
    kept = officer.post("/api/v1/recordings", data={**form, "draft": "true"}, files=upload)
    assert (kept.json()["state"], kept.json()["audio"]["engine"]) == ("draft", "recording")  # the upload is kept
    resent = officer.post(f"/api/v1/announcements/{kept.json()['id']}/submit").json()
    assert resent["state"] == "awaiting_approval" and resent["audio"]["sha256"] == kept.json()["audio"]["sha256"]
    done = approver.post(f"/api/v1/announcements/{sent.json()['id']}/approve").json()
    assert done["state"] == "scheduled" and done["audio"]["sha256"] == sent.json()["audio"]["sha256"]


def test_a_programme_waits_for_another_person_over_http(desk: Desk) -> None:
    """POST /programmes by an officer waits (nothing planned); GET /approvals/programmes shows it; its
    author cannot approve it, a rejection needs a reason; an approver's approval places it."""
    officer, approver, admin = desk.as_("can-bo"), desk.as_("chu-tich"), desk.as_("quan-tri")
    relay = {"kind": "relay", "title": "Thời sự VOV1", "zones": ["thon-1"], "recurrence": "18:00",
             "stream_url": "http://radio.example/vov1", "duration_s": 600}  # fmt: skip
    made = officer.post("/api/v1/programmes", json=relay)
    assert made.status_code == 201, made.text
    assert made.json()["state"] == "awaiting_approval" and made.json()["placements"]
    pid = made.json()["id"]
    assert desk.stored()[1] == 0  # no broadcast
    queue = approver.get("/api/v1/approvals/programmes").json()
    assert [(p["id"], p["created_by"], p["may_approve"]) for p in queue] == [(pid, "can-bo", True)]
    assert [p["may_approve"] for p in officer.get("/api/v1/approvals/programmes").json()] == [False]

    before = desk.stored()
    assert officer.post(f"/api/v1/programmes/{pid}/approve").status_code == 403  # an officer's role
    own = admin.post("/api/v1/programmes", json={**relay, "title": "Thời sự VOV2"}).json()
    refused = admin.post(f"/api/v1/programmes/{own['id']}/approve")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    assert "chương trình số" in refused.json()["error"]["message"]
    no_reason = approver.post(f"/api/v1/programmes/{pid}/reject", json={"reason": " "})
    assert (no_reason.status_code, no_reason.json()["error"]["code"]) == (400, "reason_required")
    assert desk.stored()[1:3] == before[1:3]

    approved = approver.post(f"/api/v1/programmes/{pid}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved" and desk.stored()[1] == len(approved.json()["placements"]) > 0
    rejected = approver.post(f"/api/v1/programmes/{own['id']}/reject", json={"reason": "Trùng giờ"})
    assert (rejected.json()["state"], rejected.json()["decision_reason"]) == ("rejected", "Trùng giờ")
    assert approver.get("/api/v1/approvals/programmes").json() == []
    states = {p["id"]: p["state"] for p in approver.get("/api/v1/programmes").json()}
    assert states == {pid: "approved", own["id"]: "rejected"}
