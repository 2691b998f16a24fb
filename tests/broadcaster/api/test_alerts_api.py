"""Official alerts over real HTTP: the documented examples of docs/api.md (*Official alerts*), and the
attacker's way in — no token, a token without the scope, unsigned where a signature is required, a
replay, an expired alert — each judged by what was planned, not by the status code alone."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.api.app import create_app
from broadcaster.api.server import HttpServer
from broadcaster.db import Announcement, Broadcast, Command, Role
from broadcaster.services import Services
from broadcaster.services.accounts import issue_token
from schedules.clock import SystemClock
from tests.broadcaster.capdocs import cap, commune, sign, signing_pair
from tests.broadcaster.conftest import make_token, make_user

DOC = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text(encoding="utf-8")
EXAMPLE = re.compile(
    r"<!-- alerts: (\w+) (\S+) -->\s*```(xml|json)\n(.*?)```\s*<!-- alerts response: (\d+) -->\s*```json\n(.*?)```",
    re.S,
)
DOC_NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
STAMP = re.compile(r"2026-11-25T\d\d:\d\d:\d\d\+07:00")
OPEN = "…"  # a documented object holding this key shows only some of its keys


@pytest.fixture
def api(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[str, Services]]:
    svc = commune(tmp_path, sqlite_url, SystemClock())
    server = HttpServer(create_app(svc, svc.audio.store), "127.0.0.1", 0)
    server.start()
    yield server.url, svc
    server.stop()
    svc.db.dispose()


def ingest_token(svc: Services) -> str:
    """What the province's system holds: a viewer's token with the `alerts:ingest` scope."""
    make_user(svc, "quan-tri", Role.ADMIN)
    secret: str = issue_token(svc, "quan-tri", "tỉnh", "viewer", actor="test", scopes=["alerts:ingest"])["secret"]
    return secret


def shifted(text: str, delta: dt.timedelta) -> str:
    """The documented times moved by `delta`, keeping their intervals."""
    return STAMP.sub(lambda m: (dt.datetime.fromisoformat(m.group(0)) + delta).isoformat(), text)


def same_shape(expected: Any, actual: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        keys = set(expected) - {OPEN}
        assert keys <= set(actual) if OPEN in expected else keys == set(actual), f"{path}: {keys ^ set(actual)}"
        for k in keys:
            same_shape(expected[k], actual[k], f"{path}.{k}")
    elif isinstance(expected, list) and expected:
        assert isinstance(actual, list) and len(actual) == len(expected), path


def test_the_documented_examples_hold(api: tuple[str, Services]) -> None:
    url, svc = api
    examples = EXAMPLE.findall(DOC)
    assert len(examples) >= 5
    headers = {"Authorization": f"Bearer {ingest_token(svc)}"}
    delta = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1) - DOC_NOW  # the first alert: sent a minute ago
    delta = dt.timedelta(seconds=round(delta.total_seconds()))
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for method, path, kind, body, status, expected_text in examples:
            content = shifted(body, delta).encode()
            kind_header = {"Content-Type": "application/xml" if kind == "xml" else "application/json"}
            resp = client.request(method, path, content=content, headers=kind_header)
            assert resp.status_code == int(status), (path, resp.text)
            expected, got = json.loads(expected_text), resp.json()
            if "error" in expected:
                assert got == expected  # codes and Vietnamese messages are the contract
                continue
            same_shape(expected, got)
            for key in ("status", "msg_type", "priority", "zones", "withdrawn", "headline", "references"):
                want = shifted(expected[key], delta) if key == "references" else expected[key]
                assert got[key] == want, key
            for key, value in (expected.get("item") or {}).items():
                if key != OPEN and key != "id":
                    assert got["item"][key] == value, key


def counts(svc: Services) -> tuple[int, int, int]:
    with svc.db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Announcement)) or 0,
            s.scalar(select(func.count()).select_from(Broadcast)) or 0,
            s.scalar(select(func.count()).select_from(Command)) or 0,
        )


def test_an_attacker_airs_nothing(api: tuple[str, Services], tmp_path: Path) -> None:
    url, svc = api
    xml = {"Content-Type": "application/xml"}
    doc = cap(identifier="that-1")
    # No token, a made-up one, a person's token without the scope (an admin's!), a session: nothing read.
    assert httpx.post(f"{url}/api/v1/alerts/cap?source=tinh", content=doc, headers=xml).status_code == 401
    fake = {**xml, "Authorization": "Bearer loa_made-up"}
    assert httpx.post(f"{url}/api/v1/alerts/cap?source=tinh", content=doc, headers=fake).status_code == 401
    admin = {**xml, "Authorization": f"Bearer {make_token(svc, 'chu-tich', Role.ADMIN)}"}
    resp = httpx.post(f"{url}/api/v1/alerts/cap?source=tinh", content=doc, headers=admin)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    tt39 = {"source": "tt39", "id": "x", "level": "emergency", "title": "Giả", "text": "Giả mạo.", "areas": ["Thôn 1"],
            "sent": dt.datetime.now(dt.UTC).isoformat()}  # fmt: skip
    resp = httpx.post(f"{url}/api/v1/bulletins/tt39", json=tt39, headers={"Authorization": admin["Authorization"]})
    assert resp.status_code == 403
    assert httpx.post(f"{url}/api/v1/bulletins/tt39", content=b"{", headers=admin).status_code == 403  # unread
    assert counts(svc) == (0, 0, 0)

    token = {**xml, "Authorization": f"Bearer {ingest_token(svc)}"}
    # Unsigned, or signed by another key, to a source that must sign.
    resp = httpx.post(f"{url}/api/v1/alerts/cap?source=ky", content=cap(identifier="ky-1"), headers=token)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "alert_unsigned"
    key, _ = signing_pair(tmp_path, "ke-gian")
    forged = sign(cap(identifier="ky-2"), key, tmp_path / "ky.pem")
    assert httpx.post(f"{url}/api/v1/alerts/cap?source=ky", content=forged, headers=token).status_code == 422
    # Expired, and a schema failure.
    now = dt.datetime.now(dt.UTC)
    old = cap(identifier="cu", sent=now - dt.timedelta(hours=5), expires=now - dt.timedelta(hours=2))
    resp = httpx.post(f"{url}/api/v1/alerts/cap?source=tinh", content=old, headers=token)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "alert_expired"
    assert httpx.post(f"{url}/api/v1/alerts/cap?source=tinh", content=b"<alert/>", headers=token).status_code == 422
    assert counts(svc) == (0, 0, 0)
    sources = {s["name"]: s for s in httpx.get(f"{url}/api/v1/alerts/sources", headers=token).json()}
    assert (sources["ky"]["status"], sources["ky"]["reason_code"]) == ("rejected", "alert_unsigned")
    assert sources["tinh"]["reason_code"] == "alert_schema"

    # The real one airs; its replay, word for word, adds nothing.
    assert httpx.post(f"{url}/api/v1/alerts/cap?source=tinh", content=doc, headers=token).status_code == 201
    aired = counts(svc)
    assert aired[0] == 1 and aired[1] == svc.config.schedule.emergency_repeats
    resp = httpx.post(f"{url}/api/v1/alerts/cap?source=tinh", content=doc, headers=token)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "alert_duplicate"
    assert counts(svc) == aired
    listed = httpx.get(f"{url}/api/v1/alerts", headers=token).json()
    assert [a["status"] for a in listed] == ["aired", "rejected"]  # the expired one keeps its row and reason
    assert listed[1]["reason_code"] == "alert_expired"


def test_only_an_admin_gives_a_token_the_scope(api: tuple[str, Services]) -> None:
    url, svc = api
    officer = {"Authorization": f"Bearer {make_token(svc, 'can-bo', Role.OFFICER)}"}
    body = {"name": "tự cấp", "scopes": ["alerts:ingest"]}
    resp = httpx.post(f"{url}/api/v1/tokens", json=body, headers=officer)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    admin = {"Authorization": f"Bearer {make_token(svc, 'chu-tich', Role.ADMIN)}"}
    resp = httpx.post(f"{url}/api/v1/tokens", json={**body, "scopes": ["alerts:everything"]}, headers=admin)
    assert resp.status_code == 422
    resp = httpx.post(f"{url}/api/v1/tokens", json={**body, "role": "viewer"}, headers=admin)
    assert resp.status_code == 201 and resp.json()["scopes"] == ["alerts:ingest"]
    scoped = {"Authorization": f"Bearer {resp.json()['secret']}"}
    # The scope is for alerts only: as a viewer it announces nothing.
    resp = httpx.post(f"{url}/api/v1/announcements", json={"text": "Giả mạo"}, headers=scoped)
    assert resp.status_code == 403
    assert counts(svc) == (0, 0, 0)
