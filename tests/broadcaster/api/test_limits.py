"""How much a request may carry, tried as a flood would come: sizes are refused on their headers, before
a byte of the body is read, so a 100 MB body costs the daemon neither memory nor disk."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.api.app import create_app
from broadcaster.api.server import HttpServer
from broadcaster.db import Announcement, Role
from broadcaster.services import Services
from broadcaster.services.zones import add_village
from schedules.clock import SystemClock
from tests.broadcaster.conftest import make_services, make_token


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Services]]:
    svc = make_services(
        tmp_path, f"sqlite:///{tmp_path / 'loa.sqlite3'}", SystemClock(),
        LOA_HTTP_MAX_BODY_KB="64", LOA_HTTP_MAX_UPLOAD_MB="1",
        LOA_SCHEDULE_QUIET_START="00:00", LOA_SCHEDULE_QUIET_END="00:00",
    )  # fmt: skip
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
    server = HttpServer(create_app(svc, svc.audio.store), "127.0.0.1", 0)
    server.start()
    yield server.url, {"Authorization": f"Bearer {make_token(svc, 'can-bo', Role.OFFICER)}"}, svc
    server.stop()
    svc.db.dispose()


def _announcements(svc: Services) -> int:
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(Announcement)) or 0


def test_a_json_body_over_the_limit_is_refused_before_it_is_read(api: tuple[str, dict[str, str], Services]) -> None:
    url, auth, svc = api
    big = {"text": "Họp thôn. " * 10_000, "zones": ["thon-1"], "at": "+1h"}  # ~100 KB, over 64 KB
    r = httpx.post(f"{url}/api/v1/announcements", json=big, headers=auth, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert r.json()["error"]["params"] == {"max_kb": 64}
    assert _announcements(svc) == 0


def _read_answer(sock: socket.socket) -> str:
    """One HTTP answer, whole: its head and as many body bytes as it announces (they may come apart)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def test_a_huge_upload_is_refused_on_its_headers_without_sending_it(api: tuple[str, dict[str, str], Services]) -> None:
    """A client that announces 250 MB gets its 413 at once: the server never waits for the bytes (here
    they are never sent at all), so it neither buffers nor writes them."""
    url, auth, svc = api
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST /api/v1/recordings HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth['Authorization']}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 262144000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        started = time.monotonic()
        answer = _read_answer(sock)
    assert answer.startswith("HTTP/1.1 413") and "body_too_large" in answer
    assert time.monotonic() - started < 5
    assert _announcements(svc) == 0
    assert not list(Path(svc.audio.store.tmp_dir).iterdir())


def test_a_recording_just_under_the_limit_is_read_and_one_over_is_not(
    api: tuple[str, dict[str, str], Services],
) -> None:
    url, auth, _svc = api
    under = httpx.post(f"{url}/api/v1/recordings", headers=auth, files={"file": ("a.mp3", b"x" * 1000)},
                       data={"zones": "thon-1", "at": "+1h"}, timeout=60)  # fmt: skip
    assert under.status_code != 413  # read, then refused for what it is (not audio): a 4xx of its own
    assert 400 <= under.status_code < 500
    over = httpx.post(f"{url}/api/v1/recordings", headers=auth, files={"file": ("a.mp3", b"x" * (1024 * 1024 + 1))},
                      data={"zones": "thon-1"}, timeout=60)  # fmt: skip
    assert over.status_code == 413 and over.json()["error"]["code"] == "body_too_large"


def test_a_body_without_a_length_is_refused(api: tuple[str, dict[str, str], Services]) -> None:
    url, auth, svc = api

    def chunks() -> Iterator[bytes]:
        yield '{"text": "Họp thôn", '.encode()
        yield b'"zones": ["thon-1"], "at": "+1h"}'

    r = httpx.post(f"{url}/api/v1/announcements", content=chunks(),
                   headers={**auth, "Content-Type": "application/json"}, timeout=30)  # fmt: skip
    assert r.status_code == 411 and r.json()["error"]["code"] == "length_required"
    assert _announcements(svc) == 0


def test_the_limit_holds_for_many_senders_at_once(api: tuple[str, dict[str, str], Services]) -> None:
    """Twenty clients announcing 100 MB each are answered at once, and nothing is stored."""
    url, auth, svc = api
    host, port = url.removeprefix("http://").split(":")
    answers: list[str] = []

    def flood() -> None:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"POST /api/v1/announcements HTTP/1.1\r\nHost: {host}\r\nAuthorization: "
                         f"{auth['Authorization']}\r\nContent-Type: application/json\r\n"
                         "Content-Length: 104857600\r\n\r\n".encode())  # fmt: skip
            answers.append(sock.recv(4096).decode("utf-8", "replace")[:12])

    threads = [threading.Thread(target=flood) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert answers == ["HTTP/1.1 413"] * 20
    assert _announcements(svc) == 0
