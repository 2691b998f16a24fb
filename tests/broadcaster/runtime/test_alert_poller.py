"""The poller of CAP URLs against a real local HTTP server: a good document airs once, and a server that
answers 500, hangs or serves garbage leaves the source `failing` or `rejected` with the reason and airs
nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.db import Announcement, Broadcast
from broadcaster.runtime.alerts import AlertPoller
from broadcaster.services import Services
from broadcaster.services.alerts import sources_view
from schedules.clock import SystemClock
from tests.broadcaster.capdocs import cap, commune


class Feed:
    """What the fake warning centre serves next: (status, body), or "hang" to answer nothing until released."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] | str = (200, b"")
        self.release = threading.Event()
        self.hits = 0


@pytest.fixture
def feed() -> Iterator[tuple[Feed, str]]:
    state = Feed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server API's name
            state.hits += 1
            answer = state.answer
            if answer == "hang":
                state.release.wait(10)
                return
            assert isinstance(answer, tuple)
            self.send_response(answer[0])
            self.send_header("Content-Type", "application/cap+xml")
            self.send_header("Content-Length", str(len(answer[1])))
            self.end_headers()
            self.wfile.write(answer[1])

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/cap.xml"
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def svc(tmp_path: Path, sqlite_url: str, feed: tuple[Feed, str]) -> Iterator[Services]:
    services = commune(tmp_path, sqlite_url, SystemClock(), cap_url=feed[1], LOA_ALERTS_FETCH_TIMEOUT_S="0.5")
    yield services
    services.db.dispose()


def status(svc: Services) -> tuple[str, str, str]:
    web = {s["name"]: s for s in sources_view(svc, "en")}["web"]
    return web["status"], web["reason_code"], web["reason"]


def aired(svc: Services) -> tuple[int, int]:
    with svc.db.session() as s:
        return (s.scalar(select(func.count()).select_from(Announcement)) or 0,
                s.scalar(select(func.count()).select_from(Broadcast)) or 0)  # fmt: skip


def test_a_good_document_airs_once_however_often_it_is_served(svc: Services, feed: tuple[Feed, str]) -> None:
    state, _ = feed
    woken = threading.Event()
    poller = AlertPoller(svc, on_change=woken.set)
    state.answer = (200, cap(identifier="web-1"))
    poller.start()  # the thread polls at once, then every poll_every_s
    try:
        assert woken.wait(20), status(svc)
    finally:
        poller.stop()
    assert status(svc)[0] == "ok"
    assert aired(svc) == (1, svc.config.schedule.emergency_repeats)
    assert poller.poll("web") == "unchanged"  # the same document again: not even read
    poller2 = AlertPoller(svc)  # a restarted daemon reads it again: the stored key says it was aired
    assert poller2.poll("web") == "aired"
    assert aired(svc) == (1, svc.config.schedule.emergency_repeats)


@pytest.mark.parametrize(
    ("answer", "outcome", "code", "words"),
    [
        ((500, b"oops"), "failing", "alert_fetch_failed", "HTTP 500"),
        ("hang", "failing", "alert_fetch_failed", "no answer within 0.5 s"),
        ((200, b"\x00\xffnot xml at all"), "rejected", "alert_malformed", "well-formed"),
        ((200, b"<html><body>Maintenance</body></html>"), "rejected", "alert_schema", "CAP 1.2 schema"),
    ],
)
def test_a_bad_source_is_marked_with_the_reason_and_airs_nothing(
    svc: Services, feed: tuple[Feed, str], answer: tuple[int, bytes] | str, outcome: str, code: str, words: str
) -> None:
    state, _ = feed
    state.answer = answer
    poller = AlertPoller(svc)
    assert poller.poll("web") == outcome
    assert status(svc)[:2] == (outcome, code) and words in status(svc)[2]
    assert aired(svc) == (0, 0)
    state.release.set()
    if code == "alert_fetch_failed" and answer != "hang":  # once is enough: each airing renders speech
        state.answer = (200, cap(identifier="web-ok"))  # the source mends: the next poll airs and clears it
        assert poller.poll("web") == "aired" and status(svc)[:2] == ("ok", "")
