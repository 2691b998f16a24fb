"""What each speaker said of its clock (docs/protocol.md, *Clock offset*), on the desk's device board and
home page, over real HTTP: its offset, in words a person reads, and a warning before an airing in a
village whose speaker is off by more than `[dispatch] clock_warn_ms`."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

from broadcaster.api.auth import SESSION_COOKIE
from broadcaster.db import Announcement, Broadcast, Device, DeviceKind, Role
from broadcaster.services.accounts import LoginThrottle, sign_in
from broadcaster.services.devices import clock_warnings, list_devices
from broadcaster.services.zones import add_device
from tests.broadcaster.conftest import PASSWORD
from tests.broadcaster.web.conftest import Desk

# (offset ms, delay ms, online): the daemon's clock minus the speaker's, as each one said it
SAID = {
    "thon-1-loa-1": (2000.4, 12.0, True),  # 2 s behind: corrected, but the officer is told
    "thon-1-loa-2": (-3.2, 8.0, True),  # a hair ahead: within the bound
    "thon-2-loa-1": (-900.0, 30.0, False),  # far off, but offline: the offline warning covers it
    "thon-2-loa-2": None,  # never measured (older firmware)
}


def _get(desk: Desk, path: str, secret: str) -> str:
    request = urllib.request.Request(desk.url + path, headers={"Cookie": f"{SESSION_COOKIE}={secret}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.read().decode("utf-8"))


def _arrange(desk: Desk) -> None:
    now = desk.clock.now()
    with desk.svc.db.session() as s:
        for device_id, said in SAID.items():
            d = add_device(s, device_id, DeviceKind.SPEAKER, device_id.rsplit("-", 2)[0])
            if said is not None:
                d.clock_offset_ms, d.clock_delay_ms, d.online = said
                d.clock_checked_at = now - timedelta(minutes=2)
                d.last_seen = now
        item = Announcement(title="Lịch tiêm phòng", text="t", created_at=now, created_by="test")
        s.add(item)
        s.flush()
        for village in ("thon-1", "thon-2"):
            s.add(
                Broadcast(
                    announcement_id=item.id,
                    title="Lịch tiêm phòng",
                    zone_id=village,
                    start_at=now + timedelta(minutes=10),
                    expires_at=now + timedelta(minutes=25),
                )
            )


def test_the_board_and_the_home_page_show_each_speakers_clock_and_warn_before_an_airing(desk: Desk) -> None:
    _arrange(desk)
    name = desk.user(Role.VIEWER)
    secret = sign_in(desk.svc, LoginThrottle(desk.svc.clock, 100, 60), name, PASSWORD, "test").secret

    board = _get(desk, "/devices", secret)
    assert "chậm 2000.4 ms so với máy chủ" in board
    assert "nhanh 3.2 ms so với máy chủ" in board
    assert "nhanh 900.0 ms so với máy chủ" in board
    assert "chưa đo" in board  # thon-2-loa-2
    assert board.count("lệch quá 50 ms: loa tự bù, nhưng nên kiểm tra") == 2  # loa-1 and the offline one
    assert board.count('class="clock warning"') == 2
    warning = "Thôn 1: 1 loa lệch đồng hồ quá 50 ms (thon-1-loa-1 +2000 ms); «Lịch tiêm phòng» phát lúc 09:10 25/11."
    assert warning in board
    assert "Thôn 2: 1 loa lệch" not in board  # its far-off speaker is offline
    assert warning in _get(desk, "/", secret)

    (only,) = clock_warnings(desk.svc)
    assert (only["zone"], only["speakers"], only["bound_ms"]) == ("thon-1", {"thon-1-loa-1": 2000.4}, 50.0)
    assert json.loads(_get(desk, "/api/v1/warnings/clocks", secret)) == [only]  # the API says the same
    assert clock_warnings(desk.svc, within=timedelta(minutes=5)) == []  # the airing is 10 minutes away
    devices = {d["id"]: d for d in list_devices(desk.svc)}
    assert (devices["thon-1-loa-1"]["clock_offset_ms"], devices["thon-1-loa-1"]["clock_delay_ms"]) == (2000.4, 12.0)
    assert devices["thon-2-loa-2"]["clock_offset_ms"] is None and devices["thon-2-loa-2"]["clock_checked_at"] is None
    with desk.svc.db.session() as s:
        s.get(Device, "thon-1-loa-1").clock_offset_ms = 40.0  # type: ignore[union-attr]
    assert clock_warnings(desk.svc) == []
