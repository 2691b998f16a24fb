"""People, tried the way an attacker would: over real HTTP, judged by what is stored, audited and aired.

Each test names the attack of docs/security.md ("People: accounts, sessions and the browser") that its
measure stops: with the measure removed, the attack's request would store an announcement, audit a
name the caller made up, or reach the audio from the API's listener, and the test fails.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.api.app import create_app, create_audio_app
from broadcaster.api.auth import OPEN, SESSION_COOKIE
from broadcaster.api.server import HttpServer
from broadcaster.db import Announcement, ApiToken, AuditEntry, Broadcast, Command, Programme, Role, UserSession
from broadcaster.services import Services
from broadcaster.services.accounts import create_user, disable_user, revoke_token
from broadcaster.services.zones import add_village
from schedules.clock import FakeClock
from tests.broadcaster.conftest import PASSWORD, make_services, make_token, make_user

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 09:00 in the commune
TLS = ssl.create_default_context()  # loaded once: each client would read the CA bundle again (~0.1 s)
ANNOUNCEMENT = {"text": "Kính thưa bà con, 17h chiều nay họp thôn.", "at": "+1h"}
ALARM = {"text": "Khẩn cấp: nước lũ đang lên, bà con di chuyển lên vùng cao.", "priority": "emergency"}


@dataclass
class Api:
    url: str
    svc: Services
    clock: FakeClock

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, verify=TLS, **kwargs)

    def bearer(self, username: str, role: Role) -> httpx.Client:
        return self.client(headers={"Authorization": f"Bearer {make_token(self.svc, username, role)}"})

    def signed_in(self, username: str, role: Role) -> tuple[httpx.Client, str]:
        """A browser signed in as a person of this role: its cookie jar, and the session's CSRF token."""
        make_user(self.svc, username, role)
        browser = self.client()
        resp = browser.post("/api/v1/session", json={"username": username, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        return browser, resp.json()["csrf_token"]

    def stored(self) -> tuple[int, int, int, int]:
        """Announcements, broadcasts, programmes and commands: what a request could leave or air."""
        with self.svc.db.session() as s:
            return tuple(  # type: ignore[return-value]
                s.scalar(select(func.count()).select_from(model)) or 0
                for model in (Announcement, Broadcast, Programme, Command)
            )

    def audit(self, action: str | None = None) -> list[tuple[str, str]]:
        with self.svc.db.session() as s:
            q = select(AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.id)
            if action:
                q = q.where(AuditEntry.action.like(action))
            return [(actor, act) for actor, act in s.execute(q)]


def _api(tmp_path: Path, database_url: str, **env: str) -> Iterator[Api]:
    clock = FakeClock(T0)
    svc = make_services(
        tmp_path, database_url, clock, LOA_SCHEDULE_QUIET_START="00:00", LOA_SCHEDULE_QUIET_END="00:00", **env
    )
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
        add_village(s, "thon-2", "Thôn 2")
    server = HttpServer(create_app(svc, svc.audio.store), "127.0.0.1", 0)
    server.start()
    yield Api(server.url, svc, clock)
    server.stop()
    svc.db.dispose()


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    yield from _api(tmp_path, database_url)


@pytest.fixture
def lite(tmp_path: Path, sqlite_url: str) -> Iterator[Api]:
    """The same on SQLite alone, for what does not depend on the database."""
    yield from _api(tmp_path, sqlite_url)


# ---------------------------------------------------------------- nobody signed in


def test_an_anonymous_announcement_is_stored_nowhere_and_airs_nowhere(api: Api) -> None:
    anonymous = api.client()
    resp = anonymous.post("/api/v1/announcements", json={**ALARM, "zones": ["all"]})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "not_signed_in"
    assert resp.headers["www-authenticate"] == "Bearer"
    with (Path(__file__).parent / "test_auth.py").open("rb") as f:  # any file: it is refused on its headers
        upload = anonymous.post("/api/v1/recordings", files={"file": ("x.mp3", f)}, data={"priority": "emergency"})
    assert upload.status_code == 401
    assert api.stored() == (0, 0, 0, 0) and api.audit() == []


def test_an_anonymous_upload_is_refused_on_its_headers_before_its_body(lite: Api) -> None:
    """A 20 MB upload (within the size limit, api/test_limits.py refuses larger ones) announced and
    never sent: the answer comes at once, so the server neither waited for the body nor spooled it."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(lite.url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/recordings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 20000000\r\n\r\n--x\r\n"
        )
        answer = sock.recv(4096)  # a timeout here would mean the server sat waiting for 20 MB
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]


def test_every_route_but_health_and_sign_in_refuses_the_anonymous(lite: Api) -> None:
    """By delivery, not by reading the code: every path and method of the OpenAPI document, asked with
    nothing (and with a made-up token, and an X-Loa-User naming the admin), answers 401."""
    admin = lite.bearer("quan-tri", Role.ADMIN)
    document = admin.get("/api/v1/openapi.json").json()
    asked = 0
    anonymous = lite.client()
    for path, ops in document["paths"].items():
        for method in ops:
            if (method.upper(), path) in OPEN:
                continue
            concrete = path.replace("{announcement_id}", "1").replace("{render_id}", "x")
            concrete = concrete.replace("{zone_id}", "thon-1").replace("{token_id}", "1")
            for headers in ({}, {"Authorization": "Bearer loa_made-up"}, {"X-Loa-User": "quan-tri"}):
                resp = anonymous.request(method, concrete, headers=headers, json={})
                assert resp.status_code == 401, (method, concrete, headers, resp.text)
            asked += 1
    assert asked >= 20
    assert lite.client().get("/api/v1/openapi.json").status_code == 401  # the document itself too
    assert lite.client().get("/api/v1/health").status_code == 200
    assert lite.stored() == (0, 0, 0, 0)


# ---------------------------------------------------------------- the person in the audit log


def test_a_forged_x_loa_user_changes_nothing_in_the_audit_log(api: Api) -> None:
    officer = api.bearer("can-bo", Role.OFFICER)
    forged = {"X-Loa-User": "chu-tich"}
    made = officer.post("/api/v1/announcements", json=ANNOUNCEMENT, headers=forged)
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "can-bo"
    relay = {"kind": "relay", "title": "Thời sự", "recurrence": "06:00", "stream_url": "http://127.0.0.1:9/r",
             "duration_s": 600}  # fmt: skip
    assert officer.post("/api/v1/programmes", json=relay, headers=forged).status_code == 201
    actors = {actor for actor, action in api.audit() if action in ("announce", "programme.add")}
    assert actors == {"can-bo"}
    assert all(actor != "chu-tich" for actor, _ in api.audit())
    with api.svc.db.session() as s:
        assert s.scalars(select(Programme.created_by)).one() == "can-bo"


# ---------------------------------------------------------------- roles


def test_a_viewer_cannot_announce_compose_or_manage(api: Api) -> None:
    viewer = api.bearer("xem", Role.VIEWER)
    assert viewer.get("/api/v1/zones").status_code == 200  # reading is what a viewer does
    for method, path, body in (
        ("POST", "/api/v1/announcements", ANNOUNCEMENT),
        ("POST", "/api/v1/announcements", ALARM),
        ("POST", "/api/v1/renders", {"text": "Một bài rất dài cần nhiều phút CPU."}),
        ("POST", "/api/v1/programmes", {"kind": "bulletin", "title": "B", "recurrence": "06:00", "duration_s": 600}),
        ("POST", "/api/v1/users", {"username": "ke-gian", "role": "admin"}),
        ("GET", "/api/v1/users", None),
    ):
        resp = viewer.request(method, path, json=body)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden", (path, resp.text)
    assert api.stored() == (0, 0, 0, 0)
    assert [u for u, _ in api.audit("user.add")] == ["test"]  # only the viewer, made by the test


def test_an_officer_cannot_send_an_emergency(api: Api) -> None:
    officer = api.bearer("can-bo", Role.OFFICER)
    for body in (ALARM, {**ALARM, "confirmation": "9999999999.forged", "reason": "thử"}):
        resp = officer.post("/api/v1/announcements", json=body)
        assert resp.status_code == 403, resp.text
        error = resp.json()["error"]
        assert error["code"] == "forbidden" and error["params"] == {"roles": "admin, approver", "role": "officer"}
    assert api.stored() == (0, 0, 0, 0)
    assert api.audit("emergency.%") == [("can-bo", "emergency.refused")] * 2
    assert officer.post("/api/v1/announcements", json=ANNOUNCEMENT).status_code == 201  # an officer composes


def test_emergency_roles_are_configurable(tmp_path: Path, sqlite_url: str) -> None:
    for api in _api(tmp_path, sqlite_url, LOA_SECURITY_EMERGENCY_ROLES="admin"):
        approver = api.bearer("chu-tich", Role.APPROVER)
        assert approver.post("/api/v1/announcements", json=ALARM).status_code == 403
        admin = api.bearer("quan-tri", Role.ADMIN)
        assert admin.post("/api/v1/announcements", json=ALARM).status_code == 409  # asked to confirm


def test_a_token_never_does_more_than_its_role_nor_its_owner(api: Api) -> None:
    admin = api.bearer("quan-tri", Role.ADMIN)
    capped = admin.post("/api/v1/tokens", json={"name": "kịch bản", "role": "officer"})
    assert capped.status_code == 201, capped.text
    script = api.client(headers={"Authorization": f"Bearer {capped.json()['secret']}"})
    assert script.post("/api/v1/announcements", json=ALARM).status_code == 403  # an officer's token
    assert script.post("/api/v1/users", json={"username": "moi", "role": "admin"}).status_code == 403
    escalate = script.post("/api/v1/tokens", json={"name": "leo thang", "role": "admin"})
    assert escalate.status_code == 403 and escalate.json()["error"]["code"] == "forbidden"
    officer = api.bearer("can-bo", Role.OFFICER)
    above = officer.post("/api/v1/tokens", json={"name": "x", "role": "admin"})
    assert above.status_code == 403
    others = officer.post("/api/v1/tokens", json={"name": "x", "user": "quan-tri"})
    assert others.status_code == 403
    with api.svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.role == Role.ADMIN)) == 1


# ---------------------------------------------------------------- emergencies need a second look


def test_an_emergency_airs_only_on_the_confirmed_second_request(api: Api) -> None:
    approver = api.bearer("chu-tich", Role.APPROVER)
    asked = approver.post("/api/v1/announcements", json=ALARM)
    assert asked.status_code == 409, asked.text
    error = asked.json()["error"]
    assert error["code"] == "confirm_emergency"
    assert (error["params"]["villages"], error["params"]["repeats"]) == ("Thôn 1, Thôn 2", 3)
    assert "Thôn 1, Thôn 2" in error["message"] and "3 lần" in error["message"]
    code = error["params"]["confirmation"]
    assert api.stored() == (0, 0, 0, 0)

    no_reason = approver.post("/api/v1/announcements", json={**ALARM, "confirmation": code})
    assert no_reason.status_code == 400 and no_reason.json()["error"]["code"] == "reason_required"
    changed = approver.post(
        "/api/v1/announcements", json={**ALARM, "zones": ["thon-1"], "confirmation": code, "reason": "lũ"}
    )
    assert changed.status_code == 409  # a code confirms the request it was given for, not another
    someone_else = api.bearer("pho-chu-tich", Role.APPROVER)
    theirs = someone_else.post("/api/v1/announcements", json={**ALARM, "confirmation": code, "reason": "lũ"})
    assert theirs.status_code == 409  # nor another person's
    assert api.stored() == (0, 0, 0, 0)

    sent = approver.post(
        "/api/v1/announcements", json={**ALARM, "confirmation": code, "reason": "Trạm thủy văn báo lũ"}
    )
    assert sent.status_code == 201, sent.text
    assert len(sent.json()["broadcasts"]) == 6  # three repeats in two villages
    replay = approver.post("/api/v1/announcements", json={**ALARM, "confirmation": code, "reason": "lại"})
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "confirm_emergency"  # used once
    assert api.stored()[:2] == (1, 6)

    log = api.audit("emergency.%")
    assert log == [
        ("chu-tich", "emergency.asked"),
        ("chu-tich", "emergency.refused"),  # the changed request
        ("pho-chu-tich", "emergency.refused"),  # another person's code
        ("chu-tich", "emergency.confirmed"),
        ("chu-tich", "emergency.refused"),  # the replay
    ]
    with api.svc.db.session() as s:
        confirmed = s.scalars(select(AuditEntry).where(AuditEntry.action == "emergency.confirmed")).one()
        assert '"reason": "Trạm thủy văn báo lũ"' in confirmed.detail


def test_a_confirmation_expires(api: Api) -> None:
    admin = api.bearer("quan-tri", Role.ADMIN)
    code = admin.post("/api/v1/announcements", json=ALARM).json()["error"]["params"]["confirmation"]
    api.clock.advance(timedelta(seconds=api.svc.config.security.emergency_confirm_s + 1))
    late = admin.post("/api/v1/announcements", json={**ALARM, "confirmation": code, "reason": "lũ"})
    assert late.status_code == 409 and late.json()["error"]["params"]["confirmation"] != code
    assert api.stored() == (0, 0, 0, 0)


def test_an_emergency_recording_needs_the_second_look_too(api: Api, tmp_path: Path) -> None:
    import subprocess

    tone = tmp_path / "bao-dong.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=500:duration=1", str(tone)], check=True
    )
    approver = api.bearer("chu-tich", Role.APPROVER)
    form = {"zones": "thon-1", "priority": "emergency", "title": "Báo động"}
    asked = approver.post("/api/v1/recordings", files={"file": ("a.wav", tone.read_bytes())}, data=form)
    assert asked.status_code == 409, asked.text
    code = asked.json()["error"]["params"]["confirmation"]
    assert asked.json()["error"]["params"]["villages"] == "Thôn 1"
    other = tmp_path / "khac.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=700:duration=1", str(other)], check=True
    )
    swapped = approver.post(
        "/api/v1/recordings",
        files={"file": ("a.wav", other.read_bytes())},
        data={**form, "confirmation": code, "reason": "lũ"},
    )
    assert swapped.status_code == 409  # the code is for the recording that was heard, not another
    assert api.stored() == (0, 0, 0, 0)


# ---------------------------------------------------------------- the browser is not a way in


def test_a_cross_site_upload_with_the_victims_cookie_stores_nothing(api: Api) -> None:
    browser, csrf = api.signed_in("can-bo", Role.OFFICER)
    assert browser.cookies.get(SESSION_COOKIE)
    recording = (Path(__file__).parent / "test_auth.py").read_bytes()  # refused before it is ever read as audio
    form = {"zones": "all", "title": "Tin giả"}
    # What another site's page makes the browser send: the cookie comes along, the CSRF token cannot.
    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/page"}, {}):
        resp = browser.post("/api/v1/recordings", files={"file": ("x.mp3", recording)}, data=form, headers=headers)
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"]["code"] == ("bad_csrf" if not headers else "bad_origin")
    wrong = browser.post(
        "/api/v1/recordings", files={"file": ("x.mp3", recording)}, data={**form, "csrf_token": csrf[:-2] + "xx"}
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "bad_csrf"
    json_forged = browser.post("/api/v1/announcements", json=ANNOUNCEMENT, headers={"Origin": api.url})
    assert json_forged.status_code == 403 and json_forged.json()["error"]["code"] == "bad_csrf"
    assert api.stored() == (0, 0, 0, 0)
    # The desk's own page has the token: in the form field for an upload, in the header otherwise.
    ok = browser.post("/api/v1/announcements", json=ANNOUNCEMENT, headers={"X-CSRF-Token": csrf, "Origin": api.url})
    assert ok.status_code == 201, ok.text
    assert ok.json()["created_by"] == "can-bo"
    assert api.stored()[:2] == (1, 2)


def test_the_session_cookie_is_out_of_scripts_and_other_sites_reach(tmp_path: Path, sqlite_url: str) -> None:
    for api in _api(tmp_path, sqlite_url, LOA_HTTP_PUBLIC_URL="https://loa.xa-mau.gov.vn"):
        make_user(api.svc, "can-bo", Role.OFFICER)
        resp = api.client().post("/api/v1/session", json={"username": "can-bo", "password": PASSWORD})
        cookie = resp.headers["set-cookie"]
        attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
        assert {"httponly", "secure", "path", "samesite"} <= set(attributes), cookie
        assert attributes["samesite"].lower() == "samesite=strict" and attributes["path"] == "Path=/"
        with api.svc.db.session() as s:  # the server keeps a hash, never the cookie's secret
            row = s.scalars(select(UserSession)).one()
        secret = cookie.split(";")[0].split("=", 1)[1]
        assert secret not in (row.secret_sha256, row.csrf_token) and len(row.secret_sha256) == 64
        # proxied as https://loa.xa-mau.gov.vn: its name is allowed, and its origin is the same site
        signed = api.client(headers={"Host": "loa.xa-mau.gov.vn", "Cookie": f"{SESSION_COOKIE}={secret}"})
        csrf = resp.json()["csrf_token"]
        ok = signed.post(
            "/api/v1/renders",
            json={"text": "Thử."},
            headers={"Origin": "https://loa.xa-mau.gov.vn", "X-CSRF-Token": csrf},
        )
        assert ok.status_code == 202, ok.text
    for api in _api(tmp_path / "plain", sqlite_url.replace("loa.sqlite3", "plain.sqlite3")):
        make_user(api.svc, "can-bo", Role.OFFICER)
        resp = api.client().post("/api/v1/session", json={"username": "can-bo", "password": PASSWORD})
        # plain http on 127.0.0.1: a Secure cookie would never come back
        assert "secure" not in resp.headers["set-cookie"].lower()


def test_a_foreign_host_is_refused_dns_rebinding(api: Api) -> None:
    """evil.example resolves to this server: the page of evil.example then talks to the API as its
    own origin, with no cookie needed for anything but what the browser holds. The Host gives it away."""
    admin = api.bearer("quan-tri", Role.ADMIN)
    for method, path, body in (
        ("GET", "/api/v1/zones", None),
        ("GET", "/api/v1/health", None),
        ("POST", "/api/v1/announcements", ANNOUNCEMENT),
        ("POST", "/api/v1/session", {"username": "quan-tri", "password": PASSWORD}),
    ):
        headers = {"Host": "evil.example:8080", "Origin": "http://evil.example:8080"}
        resp = admin.request(method, path, json=body, headers=headers)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_host", (path, resp.text)
    for odd in ("[::1", "", "127.0.0.1.evil.example", "localhost.", "127.0.0.1@evil.example"):
        resp = admin.get("/api/v1/zones", headers={"Host": odd})
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_host", (odd, resp.text)
    assert api.stored() == (0, 0, 0, 0)
    assert api.audit("login%") == []
    assert admin.get("/api/v1/zones", headers={"Host": "localhost"}).status_code == 200


def test_a_sign_in_from_another_site_is_refused(api: Api) -> None:
    """Login CSRF: another site signs the victim's browser in as the attacker, and what the victim then
    records (a recording, a text) is the attacker's to read."""
    make_user(api.svc, "ke-gian", Role.OFFICER)
    resp = api.client().post(
        "/api/v1/session", json={"username": "ke-gian", "password": PASSWORD}, headers={"Origin": "http://evil.example"}
    )
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "bad_origin"
    assert "set-cookie" not in resp.headers and api.audit("login") == []


def test_the_api_serves_no_audio_and_the_audio_listener_serves_no_api(api: Api) -> None:
    officer = api.bearer("can-bo", Role.OFFICER)
    item = officer.post("/api/v1/announcements", json=ANNOUNCEMENT).json()
    path = item["audio"]["url"]
    assert officer.get(path).status_code == 404  # not on the API's listener, signed in or not
    audio = HttpServer(create_audio_app(api.svc.audio.store), "127.0.0.1", 0)
    audio.start()
    try:
        got = httpx.get(audio.url + path, timeout=10)
        assert got.status_code == 200
        assert got.content[:3] == b"ID3" or got.content[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
        token = {"Authorization": officer.headers["Authorization"]}
        for method, api_path in (("GET", "/api/v1/health"), ("GET", "/api/v1/zones"), ("POST", "/api/v1/announcements"),
                                 ("GET", "/api/v1/openapi.json"), ("POST", "/api/v1/session")):  # fmt: skip
            resp = httpx.request(method, audio.url + api_path, headers=token, json=ANNOUNCEMENT, timeout=10)
            assert resp.status_code in (404, 405), (api_path, resp.status_code)
        assert httpx.post(audio.url + path, timeout=10).status_code == 405  # read-only
        assert httpx.get(audio.url + "/audio/../../etc/passwd", timeout=10).status_code == 404
    finally:
        audio.stop()
    assert api.stored()[0] == 1


# ---------------------------------------------------------------- sessions and tokens end


def test_a_stolen_then_revoked_token_fails(api: Api) -> None:
    admin = api.bearer("quan-tri", Role.ADMIN)
    issued = admin.post("/api/v1/tokens", json={"name": "máy tính bảng", "role": "officer"}).json()
    thief = api.client(headers={"Authorization": f"Bearer {issued['secret']}"})
    assert thief.get("/api/v1/zones").status_code == 200
    listed = admin.get("/api/v1/tokens").json()
    assert all("secret" not in t for t in listed) and issued["id"] in [t["id"] for t in listed]
    assert admin.delete(f"/api/v1/tokens/{issued['id']}").json()["revoked_at"]
    for method, path, body in (("GET", "/api/v1/zones", None), ("POST", "/api/v1/announcements", ANNOUNCEMENT)):
        resp = thief.request(method, path, json=body)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "not_signed_in"
    assert api.stored() == (0, 0, 0, 0)
    with api.svc.db.session() as s:  # only the hash was ever stored
        assert issued["secret"] not in {t.secret_sha256 for t in s.scalars(select(ApiToken))}
    assert [a for a in api.audit("token.%")][-1] == ("quan-tri", "token.revoke")


def test_a_disabled_person_is_shut_out_of_sessions_and_tokens(api: Api) -> None:
    browser, _ = api.signed_in("can-bo", Role.OFFICER)
    token = api.client(headers={"Authorization": f"Bearer {make_token(api.svc, 'can-bo')}"})
    disable_user(api.svc, "can-bo", actor="chu-tich")
    assert browser.get("/api/v1/session").status_code == 401
    assert token.post("/api/v1/announcements", json=ANNOUNCEMENT).status_code == 401
    again = api.client().post("/api/v1/session", json={"username": "can-bo", "password": PASSWORD})
    assert again.status_code == 401 and again.json()["error"]["code"] == "bad_credentials"
    assert api.stored() == (0, 0, 0, 0)


def test_a_session_ends_at_sign_out_when_idle_and_at_its_end(api: Api) -> None:
    browser, csrf = api.signed_in("can-bo", Role.OFFICER)
    stolen = dict(browser.cookies)
    assert browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    replay = api.client(cookies=stolen)
    assert replay.get("/api/v1/session").status_code == 401  # the cookie copied before sign-out is dead
    sec = api.svc.config.security

    browser, _ = api.signed_in("can-bo", Role.OFFICER)
    api.clock.advance(timedelta(minutes=sec.session_idle_minutes - 1))
    assert browser.get("/api/v1/session").status_code == 200  # in use: the idle clock starts again
    api.clock.advance(timedelta(minutes=sec.session_idle_minutes - 1))
    assert browser.get("/api/v1/session").status_code == 200
    api.clock.advance(timedelta(minutes=sec.session_idle_minutes + 1))
    assert browser.get("/api/v1/session").status_code == 401  # left idle

    browser, _ = api.signed_in("can-bo", Role.OFFICER)
    signed_in_at, step = api.clock.now(), timedelta(minutes=sec.session_idle_minutes / 2)
    while api.clock.now() + step < signed_in_at + timedelta(hours=sec.session_hours):
        api.clock.advance(step)
        assert browser.get("/api/v1/session").status_code == 200  # busy all day...
    api.clock.advance(step)
    assert browser.get("/api/v1/session").status_code == 401  # ...it still ends


def test_a_one_time_password_only_lets_its_holder_choose_a_new_one(api: Api) -> None:
    admin = api.bearer("quan-tri", Role.ADMIN)
    made = admin.post("/api/v1/users", json={"username": "can-bo-2", "role": "officer"}).json()
    assert made["must_change_password"] and made["password"]
    browser = api.client()
    first = browser.post("/api/v1/session", json={"username": "can-bo-2", "password": made["password"]}).json()
    csrf = first["csrf_token"]
    assert first["user"]["must_change_password"] is True
    blocked = browser.post("/api/v1/announcements", json=ANNOUNCEMENT, headers={"X-CSRF-Token": csrf})
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "password_change_required"
    assert browser.get("/api/v1/zones").status_code == 403
    wrong = browser.post(
        "/api/v1/session/password",
        json={"old_password": "đoán bừa", "new_password": "mật khẩu mới của tôi"},
        headers={"X-CSRF-Token": csrf},
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "bad_credentials"
    changed = browser.post(
        "/api/v1/session/password",
        json={"old_password": made["password"], "new_password": "mật khẩu mới của tôi"},
        headers={"X-CSRF-Token": csrf},
    )
    assert changed.status_code == 204, changed.text
    assert browser.post("/api/v1/announcements", json=ANNOUNCEMENT, headers={"X-CSRF-Token": csrf}).status_code == 201
    old = api.client().post("/api/v1/session", json={"username": "can-bo-2", "password": made["password"]})
    assert old.status_code == 401  # the one-time password worked once


# ---------------------------------------------------------------- guessing passwords


def test_the_sign_in_rate_limit_holds_per_name_and_per_address(api: Api) -> None:
    make_user(api.svc, "chu-tich", Role.APPROVER)
    guesser = api.client()
    sec = api.svc.config.security
    for n in range(sec.login_failures):
        resp = guesser.post("/api/v1/session", json={"username": "chu-tich", "password": f"đoán {n}"})
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "bad_credentials"
    # the right password, now: refused without being checked, so a guess that happens to be right
    # tells the attacker nothing either
    right = guesser.post("/api/v1/session", json={"username": "chu-tich", "password": PASSWORD})
    assert right.status_code == 429, right.text
    assert right.json()["error"]["code"] == "too_many_attempts"
    assert int(right.headers["retry-after"]) == right.json()["error"]["params"]["retry_after_s"] > 0
    assert "set-cookie" not in right.headers
    # another name from the same address is paused too: the address has used its guesses
    make_user(api.svc, "can-bo", Role.OFFICER)
    other = guesser.post("/api/v1/session", json={"username": "can-bo", "password": PASSWORD})
    assert other.status_code == 429
    failed = api.audit("login.failed")
    assert len(failed) == sec.login_failures and {actor for actor, _ in failed} == {"anonymous"}
    with api.svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(UserSession)) == 0
    api.clock.advance(timedelta(seconds=sec.login_window_s + 1))
    assert guesser.post("/api/v1/session", json={"username": "chu-tich", "password": PASSWORD}).status_code == 200


def test_a_stolen_session_cannot_guess_its_owners_password(lite: Api) -> None:
    """Changing the password needs the old one; guessing it counts like guessing at the sign-in."""
    browser, csrf = lite.signed_in("can-bo", Role.OFFICER)
    change = {"new_password": "mật khẩu của kẻ gian", "old_password": ""}
    for n in range(lite.svc.config.security.login_failures):
        resp = browser.post(
            "/api/v1/session/password", json={**change, "old_password": f"đoán {n}"}, headers={"X-CSRF-Token": csrf}
        )
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "bad_credentials"
    right = browser.post(
        "/api/v1/session/password", json={**change, "old_password": PASSWORD}, headers={"X-CSRF-Token": csrf}
    )
    assert right.status_code == 429
    assert lite.client().post("/api/v1/session", json={"username": "can-bo", "password": PASSWORD}).status_code == 429
    lite.clock.advance(timedelta(seconds=lite.svc.config.security.login_window_s + 1))
    again = lite.client().post("/api/v1/session", json={"username": "can-bo", "password": PASSWORD})
    assert again.status_code == 200  # the password is still the owner's


def test_accounts_made_over_the_api_are_the_admins_business(api: Api) -> None:
    admin = api.bearer("quan-tri", Role.ADMIN)
    for body, status, code in (
        ({"username": "Cán Bộ", "role": "officer"}, 400, "bad_username"),
        ({"username": "can-bo", "role": "officer", "password": "ngắn"}, 400, "password_too_short"),
        ({"username": "can-bo", "role": "boss"}, 422, "invalid_request"),
    ):
        resp = admin.post("/api/v1/users", json=body)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    assert admin.post("/api/v1/users", json={"username": "can-bo", "role": "officer"}).status_code == 201
    dup = admin.post("/api/v1/users", json={"username": "can-bo", "role": "viewer"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "user_exists"
    assert [u["username"] for u in admin.get("/api/v1/users").json()] == ["can-bo", "quan-tri"]
    assert [a for a in api.audit("user.add") if a[0] == "quan-tri"] == [("quan-tri", "user.add")]


def test_services_refuse_what_the_api_refuses(api: Api) -> None:
    """The command line and the web desk come through the same services: the checks are there."""
    from broadcaster.errors import LoaError

    with pytest.raises(LoaError, match="bad_username"):
        create_user(api.svc, "../admin", Role.ADMIN, PASSWORD, actor="t")
    with pytest.raises(LoaError) as refused:
        revoke_token(api.svc, 2**70, actor="t")
    assert refused.value.code == "not_found"
