"""The public listener (the audio files and the villagers' pages) changes nothing but by its feedback
form: every state-changing route of the API and the desk, enumerated from the apps themselves, is
404 or 405 there; the public app's own routes are reads but one; and a feedback POST without a valid
QR token, or too large, stores nothing. Its pages and feeds are cacheable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from starlette.routing import Mount

from broadcaster.api.app import create_app, create_audio_app
from broadcaster.api.server import HttpServer
from broadcaster.db import DeliveryStatus, DeviceKind, Feedback
from broadcaster.services import Services
from broadcaster.services.announcements import announce
from broadcaster.services.feedback import qr_token
from broadcaster.services.zones import add_device, add_village
from schedules.clock import FakeClock
from tests.broadcaster.conftest import make_services
from tests.broadcaster.web.conftest import T0, air

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Services]]:
    tmp = tmp_path_factory.mktemp("public")
    clock = FakeClock(T0)
    svc = make_services(tmp, f"sqlite:///{tmp / 'loa.sqlite3'}", clock)
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1")
    made = announce(svc, "Họp thôn.", ["thon-1"], "+1m", title="Họp thôn", actor="can-bo")
    clock.advance(timedelta(minutes=1))
    air(svc, made["broadcasts"][0]["id"], {"thon-1-loa": (DeliveryStatus.DONE, "", 0.5)})
    server = HttpServer(create_audio_app(svc.audio.store, None, svc), "127.0.0.1", 0)
    server.start()
    yield server.url, svc
    server.stop()
    svc.db.dispose()


def _stored(svc: Services) -> int:
    with svc.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Feedback)) or 0)


def _routes(app: FastAPI) -> list[tuple[str, set[str]]]:
    """Every route of the app with its full path, included routers too (FastAPI >= 0.120 keeps an
    included router whole, `effective_route_contexts()` gives its routes as mounted)."""
    found: list[tuple[str, set[str]]] = []
    for r in app.routes:
        if isinstance(r, APIRoute):
            found.append((r.path, set(r.methods or ())))
        elif hasattr(r, "effective_route_contexts"):
            found += [(c.path, set(c.methods or ())) for c in r.effective_route_contexts()]
    return found


def _filled(path: str) -> str:
    return re.sub(r"{[^}]+}", "1", path)


def test_no_state_changing_route_of_the_api_or_the_desk_answers_on_the_public_listener(
    served: tuple[str, Services],
) -> None:
    url, svc = served
    writes = [(p, m) for p, methods in _routes(create_app(svc, svc.audio.store)) for m in methods & WRITES]
    assert len(writes) > 40 and ("/api/v1/announcements", "POST") in writes and ("/compose", "POST") in writes
    with httpx.Client(base_url=url, timeout=10) as client:
        for path, method in writes:
            answer = client.request(method, _filled(path), data={"x": "1"})
            assert answer.status_code in (404, 405), (method, path, answer.status_code)
        # nor does a signed-in desk page, or the API's reads
        for path in ("/api/v1/health", "/api/v1/announcements", "/devices", "/feedback", "/login", "/audit"):
            assert client.get(path).status_code == 404, path
    assert _stored(svc) == 0


def test_the_public_app_reads_but_for_the_feedback_form(served: tuple[str, Services]) -> None:
    _, svc = served
    app = create_audio_app(svc.audio.store, None, svc)
    writes = [(p, m) for p, methods in _routes(app) for m in methods - {"GET", "HEAD"}]
    assert writes == [("/y-kien/{kind}/{target}/{token}", "POST")]
    mounts = [r.path for r in app.routes if isinstance(r, Mount)]
    assert mounts == ["/s"]  # the stylesheet, served read-only by StaticFiles


def test_a_feedback_post_without_a_valid_token_or_too_large_stores_nothing(served: tuple[str, Services]) -> None:
    url, svc = served
    good = qr_token(svc.config, "loa", "thon-1-loa")
    form = {"category": "unclear", "text": "rè", "website": ""}
    with httpx.Client(base_url=url, timeout=10, headers={"Accept-Language": "vi"}) as client:
        for path in (f"/y-kien/loa/thon-1-loa/{'A' * 16}", f"/y-kien/thon/thon-1/{good}",  # another target's
                     "/y-kien/loa/thon-9-loa/" + good, f"/y-kien/loa/thon-1-loa/{good}x"):  # fmt: skip
            answer = client.post(path, data=form)
            assert answer.status_code == 404 and "Mã QR này không đúng" in answer.text, path
        big = client.post(f"/y-kien/loa/thon-1-loa/{good}", data={**form, "text": "x" * 20_000})
        assert big.status_code == 413
    assert _stored(svc) == 0


def test_pages_and_feeds_are_cacheable(served: tuple[str, Services]) -> None:
    url, _ = served
    with httpx.Client(base_url=url, timeout=10) as client:
        pages = ("/nghe-lai", "/nghe-lai/thon-1", "/nghe-lai/podcast.xml", "/nghe-lai/thon-1/podcast.xml", "/tin/1")
        for path in pages:
            first = client.get(path)
            assert first.status_code == 200, path
            assert first.headers["cache-control"].startswith("public") and first.headers["last-modified"]
            etag = first.headers["etag"]
            again = client.get(path, headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
            since = client.get(path, headers={"If-Modified-Since": first.headers["last-modified"]})
            assert since.status_code == 304
        page = client.get("/nghe-lai/thon-1")
        assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script
        assert "'none'" in page.headers["content-security-policy"] and "set-cookie" not in page.headers
        assert client.get("/nghe-lai/thon-9").status_code == 404
        assert client.get("/tin/999").status_code == 404
