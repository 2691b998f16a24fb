"""The HTTP API over real HTTP: documented examples, bad input, and nothing half-written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.api.app import create_app, create_audio_app
from broadcaster.api.server import HttpServer
from broadcaster.db import Announcement, AuditEntry, Broadcast, Database, Programme, Role
from broadcaster.services import Services
from broadcaster.services.zones import add_village
from schedules.clock import SystemClock
from tests.broadcaster.conftest import make_services, make_token, make_user

DOC = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text(encoding="utf-8")
DOC_PASSWORD = "mật khẩu của cán bộ"  # the sign-in example of docs/api.md
PAIR = re.compile(
    r"<!-- request: (\w+) (\S+) -->\s*(?:```json\n(.*?)```)?\s*<!-- response: (\d+) -->\s*```json\n(.*?)```",
    re.S,
)


def documented_examples() -> list[tuple[str, str, Any, int, Any]]:
    return [
        (m, p, json.loads(req) if req else None, int(status), json.loads(resp))
        for m, p, req, status, resp in PAIR.findall(DOC)
    ]


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[tuple[httpx.Client, Services]]:
    """The API over real HTTP, and a client signed in with an admin's token (the documented examples
    include an emergency, which only admins and approvers may send)."""
    # real-clock tests must not depend on the hour they run at: no quiet hours here
    svc = make_services(
        tmp_path, database_url, SystemClock(), LOA_SCHEDULE_QUIET_START="00:00", LOA_SCHEDULE_QUIET_END="00:00"
    )
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
        add_village(s, "thon-2", "Thôn 2")
    make_user(svc, "can-bo", Role.OFFICER, DOC_PASSWORD)  # the documented sign-in
    server = HttpServer(create_app(svc, svc.audio.store), "127.0.0.1", 0)
    server.start()
    token = make_token(svc, "quan-tri", Role.ADMIN)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        yield client, svc
    server.stop()
    svc.db.dispose()


@pytest.fixture
def audio_url(api: tuple[httpx.Client, Services]) -> Iterator[str]:
    """The listener of the audio files devices fetch, on the same store."""
    server = HttpServer(create_audio_app(api[1].audio.store), "127.0.0.1", 0)
    server.start()
    yield server.url
    server.stop()


def _stored(db: Database) -> tuple[int, int, int]:
    """Announcements, broadcasts and audit entries (but those of the accounts a fixture made)."""
    with db.session() as s:
        made_by_requests = AuditEntry.action.notin_(("user.add", "token.add"))
        return (
            s.scalar(select(func.count()).select_from(Announcement)) or 0,
            s.scalar(select(func.count()).select_from(Broadcast)) or 0,
            s.scalar(select(func.count()).select_from(AuditEntry).where(made_by_requests)) or 0,
        )


def _same_shape(expected: Any, actual: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert set(expected) == set(actual), f"{path}: {set(expected) ^ set(actual)}"
        for k in expected:
            _same_shape(expected[k], actual[k], f"{path}.{k}")
    elif isinstance(expected, list) and expected:
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _same_shape(e, a, f"{path}[{i}]")


def test_the_documented_examples_hold(api: tuple[httpx.Client, Services]) -> None:
    client, _ = api
    examples = documented_examples()
    assert len(examples) >= 5
    for method, path, body, status, expected in examples:
        resp = client.request(method, path, json=body, timeout=60)
        assert resp.status_code == status, (path, body, resp.text)
        got = resp.json()
        if "error" in expected:
            if "confirmation" in expected["error"]["params"]:  # a fresh code every time it is asked
                fresh, documented = got["error"]["params"]["confirmation"], expected["error"]["params"]["confirmation"]
                assert fresh and fresh in got["error"]["message"]
                got["error"]["params"]["confirmation"] = documented
                got["error"]["message"] = got["error"]["message"].replace(fresh, documented)
            assert got == expected  # codes and Vietnamese messages are part of the contract
        else:
            _same_shape(expected, got)
            for key in ("title", "priority"):
                if key in expected:
                    assert got[key] == expected[key]


def test_an_announcement_is_stored_with_its_audio_and_audited(
    api: tuple[httpx.Client, Services], audio_url: str
) -> None:
    client, svc = api
    resp = client.post(
        "/api/v1/announcements",
        json={"text": "Kính thưa bà con, 17h chiều nay họp thôn.", "at": "+2h"},
        headers={"X-Loa-User": quote("cán bộ văn hóa")},  # a name claimed, not proven: not read
        timeout=60,
    )
    assert resp.status_code == 201, resp.text
    item = resp.json()
    assert item["created_by"] == "quan-tri"  # whose token it was
    # "all" is placed village by village, and the villages start together
    assert [b["zone"] for b in item["broadcasts"]] == ["thon-1", "thon-2"]
    assert len({b["start_at"] for b in item["broadcasts"]}) == 1
    audio = httpx.get(audio_url + item["audio"]["url"], timeout=10)  # where devices fetch it
    assert audio.status_code == 200
    assert audio.content[:3] == b"ID3" or audio.content[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
    assert client.get(f"/api/v1/announcements/{item['id']}", timeout=10).json()["id"] == item["id"]
    with svc.db.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "announce")).one()
        assert entry.actor == "quan-tri"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": ""}, 400, "empty_text"),
        ({"text": " \n\t "}, 400, "empty_text"),
        ({"text": "Họp", "at": "+0s"}, 201, None),
        ({"text": "Họp", "at": "2001-01-01T00:00:00Z"}, 400, "time_in_past"),
        ({"text": "Họp", "at": "sáng mai"}, 400, "bad_time"),
        ({"text": "Họp", "zones": []}, 400, "no_zone"),
        ({"text": "Họp", "zones": ["all", "thon-7"]}, 404, "unknown_zone"),
        ({"text": "Họp", "priority": "urgent"}, 400, "bad_priority"),
        ({"text": "Họp", "colour": "red"}, 422, "invalid_request"),
        ({"zones": ["all"]}, 422, "invalid_request"),
        ({"text": 5}, 422, "invalid_request"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    api: tuple[httpx.Client, Services], body: dict[str, Any], status: int, code: str | None
) -> None:
    client, svc = api
    resp = client.post("/api/v1/announcements", json=body, timeout=60)
    assert resp.status_code == status, resp.text
    if code is None:
        assert _stored(svc.db) == (1, 2, 1)  # one announcement, a broadcast per village, one audit entry
        return
    assert resp.json()["error"]["code"] == code
    assert resp.json()["error"]["message"]
    assert _stored(svc.db) == (0, 0, 0)


def test_malformed_json_and_unknown_paths(api: tuple[httpx.Client, Services]) -> None:
    client, svc = api
    resp = client.post("/api/v1/announcements", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_request"
    assert client.get("/api/v1/announcements/999").json()["error"]["code"] == "not_found"
    assert client.get("/audio/" + "0" * 64 + ".mp3").status_code == 404
    assert client.get("/audio/../../etc/passwd").status_code == 404
    assert _stored(svc.db) == (0, 0, 0)


def _tone(path: Path, seconds: float = 2.0) -> Path:
    import subprocess

    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=330:duration={seconds}",
            str(path),
        ],
        check=True,
    )
    return path


def test_an_officers_recording_airs_like_an_announcement(api: tuple[httpx.Client, Services], tmp_path: Path) -> None:
    client, svc = api
    phone = _tone(tmp_path / "ghi-am.m4a")
    with phone.open("rb") as f:
        resp = client.post(
            "/api/v1/recordings",
            files={"file": ("ghi-am.m4a", f, "audio/mp4")},
            data={"zones": "thon-1", "at": "+1h", "title": "Lời kêu gọi của chủ tịch xã"},
            timeout=60,
        )
    assert resp.status_code == 201, resp.text
    item = resp.json()
    assert item["audio"]["engine"] == "recording" and item["title"] == "Lời kêu gọi của chủ tịch xã"
    assert 1500 < item["audio"]["duration_ms"] < 6000  # the tone, plus our chimes
    assert [b["zone"] for b in item["broadcasts"]] == ["thon-1"]

    junk = tmp_path / "not-audio.mp3"
    junk.write_text("đây không phải âm thanh")
    with junk.open("rb") as f:
        bad = client.post("/api/v1/recordings", files={"file": ("x.mp3", f)}, data={"zones": "all"}, timeout=60)
    assert bad.status_code == 422 and bad.json()["error"]["code"].startswith("audio_")
    assert _stored(svc.db) == (1, 1, 1)  # only the good one


def test_a_long_text_renders_in_the_background_with_progress(api: tuple[httpx.Client, Services]) -> None:
    client, _ = api
    text = " ".join(f"Câu thông báo số {n} của Ủy ban nhân dân xã." for n in range(1, 13))
    started = client.post("/api/v1/renders", json={"text": text}, timeout=10)
    assert started.status_code == 202
    job = started.json()

    def finished() -> dict[str, Any] | None:
        j = client.get(f"/api/v1/renders/{job['id']}", timeout=10).json()
        return j if j["state"] != "running" else None

    from tests.broadcaster.harness import wait_for

    done = wait_for(finished, 60, "the render")
    assert done["state"] == "done" and done["total"] == 12 and done["done"] == 12
    item = client.post("/api/v1/announcements", json={"text": text, "at": "+1h"}, timeout=60).json()
    assert item["audio"]["sha256"] == done["audio"]["sha256"]  # announcing it reuses the render
    assert client.get("/api/v1/renders/nope", timeout=10).json()["error"]["code"] == "not_found"


def test_preview_programmes_and_bulletins_over_http(api: tuple[httpx.Client, Services]) -> None:
    client, svc = api
    preview = client.post(
        "/api/v1/announcements?preview=true", json={"text": "Họp thôn.", "at": "+1h"}, timeout=60
    )
    assert preview.status_code == 201 and preview.json()["preview"] is True
    assert _stored(svc.db) == (0, 0, 0)
    relay = client.post(
        "/api/v1/programmes",
        json={
            "kind": "relay",
            "title": "Thời sự",
            "recurrence": "06:00",
            "stream_url": "http://127.0.0.1:9/r.mp3",
            "duration_s": 600,
        },
        timeout=60,
    )
    assert relay.status_code == 201, relay.text
    bulletin = client.post(
        "/api/v1/programmes",
        json={"kind": "bulletin", "title": "Bản tin", "recurrence": "06:00 và 17:00", "duration_s": 1800},
        timeout=60,
    ).json()
    queued = client.post(
        "/api/v1/announcements", json={"text": "Thu quỹ.", "bulletin": bulletin["id"]}, timeout=60
    ).json()
    assert queued["placements"][0]["code"] == "bulletin_item"
    assert {p["kind"] for p in client.get("/api/v1/programmes", timeout=10).json()} == {"relay", "bulletin"}
    bad = client.post(
        "/api/v1/programmes",
        json={
            "kind": "relay",
            "title": "X",
            "recurrence": "06:00",
            "stream_url": "file:///etc/passwd",
            "duration_s": 5,
        },
        timeout=60,
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_relay_url"
    timeline = client.get("/api/v1/timeline", params={"zone": "thon-1"}, timeout=10).json()
    assert any(r["kind"] == "relay" for r in timeline)
    ics = client.get("/api/v1/zones/thon-1/calendar.ics", timeout=10)
    assert ics.headers["content-type"].startswith("text/calendar") and "BEGIN:VEVENT" in ics.text
    assert client.get("/api/v1/timeline", params={"from": "hôm qua"}, timeout=10).status_code == 400


def test_the_report_over_http(api: tuple[httpx.Client, Services]) -> None:
    client, _ = api
    r = client.get("/api/v1/report", params={"from": "2026-01-01T00:00", "to": "2026-04-01T00:00"}, timeout=10)
    assert r.status_code == 200 and r.json()["text"] == "0 mục, 0 lượt phát (01/01/2026–31/03/2026)"
    assert client.get("/api/v1/report", params={"from": "x", "to": "y"}, timeout=10).status_code == 400
    assert client.get("/api/v1/report", timeout=10).status_code == 422


# ---------------------------------------------------------------- the OpenAPI document is the contract

SIGNED_IN = {401, 403}  # not_signed_in; forbidden, bad_csrf, bad_origin: every route behind the sign-in
REFUSALS = {  # each route's documented 4xx answers (docs/api.md), all in the one error shape
    ("post", "/api/v1/live"): {400, 404, 409, 422, *SIGNED_IN},
    ("get", "/api/v1/live"): {422, *SIGNED_IN},
    ("get", "/api/v1/live/{session_id}"): {404, 422, *SIGNED_IN},
    ("post", "/api/v1/live/{session_id}/chunks"): {404, 409, 422, *SIGNED_IN},
    ("post", "/api/v1/live/{session_id}/end"): {404, 422, *SIGNED_IN},
    ("post", "/api/v1/announcements"): {400, 404, 409, 422, *SIGNED_IN},
    ("post", "/api/v1/recordings"): {400, 404, 409, 422, *SIGNED_IN},
    ("get", "/api/v1/announcements/{announcement_id}"): {404, 422, *SIGNED_IN},
    ("delete", "/api/v1/announcements/{announcement_id}"): {400, 404, 409, 422, *SIGNED_IN},
    # approval, the lexicon and readings, the LED slogans (tests/broadcaster/api/test_approvals.py)
    ("get", "/api/v1/announcements"): {400, 422, *SIGNED_IN},
    ("get", "/api/v1/approvals"): {422, *SIGNED_IN},
    ("patch", "/api/v1/announcements/{announcement_id}"): {400, 404, 409, 422, *SIGNED_IN},
    ("post", "/api/v1/announcements/{announcement_id}/submit"): {400, 404, 409, 422, *SIGNED_IN},
    ("post", "/api/v1/announcements/{announcement_id}/approve"): {404, 409, 422, *SIGNED_IN},
    ("post", "/api/v1/announcements/{announcement_id}/reject"): {400, 404, 409, 422, *SIGNED_IN},
    ("get", "/api/v1/approvals/programmes"): {422, *SIGNED_IN},
    ("post", "/api/v1/programmes/{programme_id}/approve"): {404, 409, 422, *SIGNED_IN},
    ("post", "/api/v1/programmes/{programme_id}/reject"): {400, 404, 409, 422, *SIGNED_IN},
    ("get", "/api/v1/announcements/{announcement_id}/audio"): {404, 422, *SIGNED_IN},
    ("get", "/api/v1/renders/{render_id}/audio"): {404, 422, *SIGNED_IN},
    ("get", "/api/v1/lexicon"): SIGNED_IN,
    ("post", "/api/v1/lexicon"): {400, 409, 422, *SIGNED_IN},
    ("patch", "/api/v1/lexicon/{entry_id}"): {400, 404, 409, 422, *SIGNED_IN},
    ("delete", "/api/v1/lexicon/{entry_id}"): {404, 422, *SIGNED_IN},
    ("post", "/api/v1/readings"): {400, 422, *SIGNED_IN},
    ("get", "/api/v1/slogans"): SIGNED_IN,
    ("post", "/api/v1/slogans"): {400, 404, 422, *SIGNED_IN},
    ("patch", "/api/v1/slogans/{slogan_id}"): {400, 404, 422, *SIGNED_IN},
    ("delete", "/api/v1/slogans/{slogan_id}"): {404, 422, *SIGNED_IN},
    ("post", "/api/v1/programmes"): {400, 404, 409, 422, *SIGNED_IN},
    ("get", "/api/v1/programmes"): SIGNED_IN,
    ("post", "/api/v1/renders"): {400, 422, *SIGNED_IN},
    ("get", "/api/v1/renders/{render_id}"): {404, 422, *SIGNED_IN},
    ("get", "/api/v1/voices"): {422, *SIGNED_IN},
    # official alerts (tests/broadcaster/api/test_alerts_api.py)
    ("post", "/api/v1/alerts/cap"): {400, 404, 409, 422, *SIGNED_IN},
    ("post", "/api/v1/bulletins/tt39"): {400, 404, 409, 422, *SIGNED_IN},
    ("get", "/api/v1/alerts"): {422, *SIGNED_IN},
    ("get", "/api/v1/alerts/sources"): {422, *SIGNED_IN},
    ("get", "/api/v1/broadcasts"): {422, *SIGNED_IN},
    ("get", "/api/v1/deliveries"): {422, *SIGNED_IN},
    ("get", "/api/v1/devices"): SIGNED_IN,
    ("get", "/api/v1/warnings"): SIGNED_IN,
    ("get", "/api/v1/warnings/clocks"): SIGNED_IN,
    ("get", "/api/v1/metrics"): SIGNED_IN,
    ("get", "/api/v1/zones"): SIGNED_IN,
    ("get", "/api/v1/timeline"): {400, 404, 422, *SIGNED_IN},
    ("get", "/api/v1/zones/{zone_id}/calendar.ics"): {404, 422, *SIGNED_IN},
    ("get", "/api/v1/report"): {400, 422, *SIGNED_IN},
    ("post", "/api/v1/session"): {401, 403, 422, 429},
    ("get", "/api/v1/session"): SIGNED_IN,
    ("delete", "/api/v1/session"): SIGNED_IN,
    ("post", "/api/v1/session/password"): {400, 422, 429, *SIGNED_IN},
    ("get", "/api/v1/tokens"): SIGNED_IN,
    ("post", "/api/v1/tokens"): {400, 404, 422, *SIGNED_IN},
    ("delete", "/api/v1/tokens/{token_id}"): {404, 422, *SIGNED_IN},
    ("get", "/api/v1/users"): SIGNED_IN,
    ("post", "/api/v1/users"): {400, 409, 422, *SIGNED_IN},
}  # 422: any route with parameters may be answered invalid_request, never FastAPI's own 422 shape
# the devices' listener, a document of its own: the audio files and the live streams
AUDIO_REFUSALS = {("get", "/audio/{name}"): {404, 422}, ("get", "/live/{name}"): {404, 422}}


@pytest.fixture
def openapi(tmp_path: Path, sqlite_url: str) -> Iterator[dict[str, Any]]:
    svc = make_services(tmp_path, sqlite_url, SystemClock())
    yield create_app(svc, svc.audio.store).openapi()
    svc.db.dispose()


@pytest.mark.parametrize("which", ["api", "audio"])
def test_the_openapi_document_declares_each_routes_refusals_in_the_error_shape(
    which: str, openapi: dict[str, Any], tmp_path: Path
) -> None:
    from audio import AudioStore

    document = openapi if which == "api" else create_audio_app(AudioStore(tmp_path / "audio")).openapi()
    expected = REFUSALS if which == "api" else AUDIO_REFUSALS
    declared = {
        (method, path): {int(s) for s in op["responses"] if s.startswith("4")}
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }
    assert {route: codes for route, codes in declared.items() if codes} == expected
    for (method, path), codes in expected.items():
        for code in codes:
            schema = document["paths"][path][method]["responses"][str(code)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, code)
    error = document["components"]["schemas"]["ErrorBody"]
    assert {"code", "message"} <= set(error["required"]) and "params" in error["properties"]
    assert "HTTPValidationError" not in json.dumps(document)  # FastAPI's own 422 shape is never answered


def test_priority_and_programme_kind_are_enums_in_the_openapi_document(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert schemas["Priority"]["enum"] == ["normal", "priority", "emergency"]
    assert schemas["ProgrammeKind"]["enum"] == ["relay", "notice", "bulletin"]
    assert schemas["AnnouncementIn"]["properties"]["priority"]["$ref"] == "#/components/schemas/Priority"
    assert schemas["ProgrammeIn"]["properties"]["kind"]["$ref"] == "#/components/schemas/ProgrammeKind"
    report = schemas["ReportOut"]["properties"]
    assert {"from", "to", "items", "plays", "relay_plays", "relay_seconds", "text"} == set(report)


def test_a_wrong_enum_value_is_refused_and_nothing_is_stored(api: tuple[httpx.Client, Services]) -> None:
    client, svc = api
    body = {"kind": "podcast", "title": "Thời sự", "recurrence": "06:00", "duration_s": 600}
    resp = client.post("/api/v1/programmes", json=body, timeout=60)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid_request" and resp.json()["error"]["params"] == {"fields": "kind"}
    # `priority` kept its documented code when it became an enum (docs/api.md: bad_priority, 400)
    resp = client.post("/api/v1/programmes", json={**body, "kind": "relay", "priority": "loud"}, timeout=60)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_priority"
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Programme)) == 0
    assert _stored(svc.db) == (0, 0, 0)


def test_refusals_and_reasons_in_the_language_asked_for(api: tuple[httpx.Client, Services]) -> None:
    client, svc = api
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    resp = client.post("/api/v1/announcements", json={"text": "Họp", "zones": ["thon-9"]}, headers=english)
    assert resp.status_code == 404
    assert resp.json() == {
        "error": {
            "code": "unknown_zone",
            "message": "There is no zone 'thon-9'. Existing zones: all, thon-1, thon-2.",
            "params": {"zone": "thon-9", "known": "all, thon-1, thon-2"},
        }
    }
    assert client.get("/api/v1/nowhere", headers=english).json()["error"]["message"] == "Not found."
    bad = client.post("/api/v1/announcements", json={"text": 5}, headers=english).json()["error"]
    assert bad["code"] == "invalid_request" and bad["message"] == "Invalid request, at: text."

    item = client.post("/api/v1/announcements", json={"text": "Họp thôn.", "at": "+1h"}, timeout=60).json()
    with svc.db.session() as s:
        first, second = s.scalars(select(Broadcast).order_by(Broadcast.id)).all()
        first.reason = "late: 12"  # as dispatch stores it
        second.reason = "Quá thời hạn phát khi hệ thống chưa gửi được lệnh"  # written before reasons were coded
    got = client.get(f"/api/v1/announcements/{item['id']}", headers=english).json()
    assert [b["reason"] for b in got["broadcasts"]] == ["Aired 12 s late", second.reason]
    listed = client.get("/api/v1/broadcasts").json()
    assert sorted(b["reason"] for b in listed) == sorted(["Phát trễ 12 giây", second.reason])
    assert {r["reason"] for r in client.get("/api/v1/timeline", headers=english).json()} == {
        "Aired 12 s late",
        second.reason,
    }


def test_no_pages_that_load_scripts_from_a_cdn(api: tuple[httpx.Client, Services]) -> None:
    client, _ = api
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "loa"


def test_every_read_route_answers_what_the_services_return(api: tuple[httpx.Client, Services]) -> None:
    """The response models carry every field: nothing a service returns is dropped on the way out."""
    from datetime import UTC, datetime

    from broadcaster.db import Delivery, DeliveryStatus, DeviceKind
    from broadcaster.services.announcements import get_announcement
    from broadcaster.services.devices import list_devices, offline_warnings
    from broadcaster.services.programmes import list_programmes
    from broadcaster.services.reports import report
    from broadcaster.services.views import list_broadcasts, recent_deliveries, timeline
    from broadcaster.services.zones import add_device, list_zones

    client, svc = api
    with svc.db.session() as s:
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1")  # offline: a warning for what airs soon
    item = client.post("/api/v1/announcements", json={"text": "Họp thôn.", "at": "+10m"}, timeout=60).json()
    with svc.db.session() as s:
        s.add(
            Delivery(
                broadcast_id=item["broadcasts"][0]["id"],
                device_id="thon-1-loa",
                status=DeliveryStatus.FAILED,
                reason="download_failed: HTTP 404",
                updated_at=datetime.now(UTC),
            )
        )
    period = {"from": "2026-01-01T00:00", "to": "2030-01-01T00:00"}
    first, last = datetime.fromisoformat("2026-01-01T00:00+07:00"), datetime.fromisoformat("2030-01-01T00:00+07:00")
    for path, expected in [
        ("/api/v1/devices", list_devices(svc)),
        ("/api/v1/deliveries", recent_deliveries(svc, 50)),
        ("/api/v1/broadcasts", list_broadcasts(svc, 50)),
        ("/api/v1/warnings", offline_warnings(svc)),
        ("/api/v1/zones", list_zones(svc)),
        ("/api/v1/programmes", list_programmes(svc)),
        ("/api/v1/timeline", timeline(svc)),
        ("/api/v1/report", report(svc, first, last)),
        (f"/api/v1/announcements/{item['id']}", get_announcement(svc, item["id"])),
        ("/api/v1/metrics", {}),
    ]:
        resp = client.get(path, params=period if path.endswith("report") else None, timeout=10)
        assert resp.status_code == 200, (path, resp.text)
        assert resp.json() == expected, path
    assert offline_warnings(svc) and recent_deliveries(svc, 50)  # the lists compared were not empty
    english = client.get("/api/v1/deliveries", headers={"Accept-Language": "en"}).json()
    assert english[0]["reason"] == "The audio download failed (HTTP 404)"


def _bearer(svc: Services, username: str, role: str) -> dict[str, str]:
    """An account of this role and a token of its own, as `loa user add` and `loa token add` make them."""
    from broadcaster.services.accounts import create_user, issue_token

    create_user(svc, username, role, "mật khẩu dài đủ", actor="test")
    return {"Authorization": "Bearer " + issue_token(svc, username, "test", actor="test")["secret"]}


def _send_emergency(url: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """An emergency as the API takes one: asked, then confirmed with the code and a reason."""
    asked = httpx.post(url + "/api/v1/announcements", json=body, headers=headers, timeout=60)
    assert asked.status_code == 409, asked.text
    code = asked.json()["error"]["params"]["confirmation"]
    confirmed = {**body, "confirmation": code, "reason": "Cháy thật, đã kiểm tra"}
    sent = httpx.post(url + "/api/v1/announcements", json=confirmed, headers=headers, timeout=60)
    assert sent.status_code == 201, sent.text
    result: dict[str, Any] = sent.json()
    return result


def test_a_recall_over_http_is_audited_under_the_person_and_wakes_the_daemon(tmp_path: Path, sqlite_url: str) -> None:
    svc = make_services(
        tmp_path, sqlite_url, SystemClock(), LOA_SCHEDULE_QUIET_START="00:00", LOA_SCHEDULE_QUIET_END="00:00"
    )
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
    chairman = _bearer(svc, "chutich", "admin")
    officer = _bearer(svc, "canbo", "officer")
    viewer = _bearer(svc, "xem", "viewer")
    pokes: list[None] = []
    server = HttpServer(create_app(svc, svc.audio.store, on_change=lambda: pokes.append(None)), "127.0.0.1", 0)
    server.start()
    try:
        url = server.url
        item = _send_emergency(url, chairman, {"text": "Khẩn cấp: cháy rừng.", "priority": "emergency"})
        path = f"{url}/api/v1/announcements/{item['id']}"

        def recalls() -> list[str]:
            q = select(AuditEntry.actor).where(AuditEntry.action == "announcement.recall").order_by(AuditEntry.id)
            with svc.db.session() as s:
                return list(s.scalars(q))

        def live() -> set[str]:
            return {b["status"] for b in httpx.get(path, headers=viewer, timeout=10).json()["broadcasts"]}

        pokes.clear()
        for headers, status, code in (
            ({}, 401, "not_signed_in"),  # anyone who reaches the API
            (viewer, 403, "forbidden"),  # signed in, but may only read
        ):
            refused = httpx.delete(path, headers=headers, timeout=10)
            assert (refused.status_code, refused.json()["error"]["code"]) == (status, code)
        refused = httpx.request("DELETE", path, json={"why": "báo nhầm"}, headers=officer, timeout=10)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_request"
        assert (live(), recalls(), pokes) == ({"planned"}, [], [])  # nothing recalled, audited, or poked
        assert httpx.get(path, headers=viewer, timeout=10).json()["recall"] is None

        resp = httpx.delete(path, params={"reason": "Báo nhầm"}, headers={**officer, "Accept-Language": "en"})
        assert resp.status_code == 200, resp.text
        result = resp.json()
        assert (result["cancelled_before_dispatch"], result["already_recalled"]) == (3, False)
        assert result["recall"]["by"] == "canbo" and result["recall"]["reason"] == "Báo nhầm"
        assert result["summary"].startswith(f"Recalled announcement {item['id']}: 3 airings cancelled")
        assert pokes == [None]  # the daemon sends the stops now, not at its next reconcile
        again = httpx.delete(path, headers=chairman, timeout=10).json()
        assert again["already_recalled"] is True and again["recall"]["by"] == "canbo"
        got = httpx.get(path, headers=viewer, timeout=10).json()
        assert got["recall"] == result["recall"] and live() == {"cancelled"}
        assert recalls() == ["canbo", "chutich"]  # who acted, as authenticated; X-Loa-User is not read
        missing = httpx.delete(f"{url}/api/v1/announcements/{2**70}", headers=officer, timeout=10)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    finally:
        server.stop()
        svc.db.dispose()
