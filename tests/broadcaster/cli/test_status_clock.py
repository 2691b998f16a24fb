"""`loa status` says how far each speaker's clock is off (docs/protocol.md, *Clock offset*) and warns, before
an airing, about a speaker off by more than `[dispatch] clock_warn_ms`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.cli.main import main
from broadcaster.db import Announcement, Broadcast, Database, DeviceKind
from broadcaster.services.zones import add_device, add_village, ensure_commune


def test_status_shows_each_clock_offset_and_warns_before_an_airing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOA_LANG", raising=False)
    monkeypatch.setenv("LOA_GENERAL_DATA_DIR", str(tmp_path / "data"))  # in-process: two interpreters cost 10 s
    (tmp_path / "data").mkdir()
    db = Database(f"sqlite:///{tmp_path / 'data' / 'loa.sqlite3'}")
    db.upgrade()
    now = datetime.now(UTC)
    with db.session() as s:
        ensure_commune(s, "Xã thử")
        add_village(s, "thon-1", "Thôn 1")
        fast = add_device(s, "thon-1-loa-1", DeviceKind.SPEAKER, "thon-1")
        fast.online, fast.clock_offset_ms, fast.clock_delay_ms, fast.clock_checked_at = True, -2000.4, 9.0, now
        add_device(s, "thon-1-loa-2", DeviceKind.SPEAKER, "thon-1")  # never measured
        item = Announcement(title="Họp thôn", text="t", created_at=now, created_by="test")
        s.add(item)
        s.flush()
        start = now + timedelta(minutes=10)
        s.add(Broadcast(announcement_id=item.id, title="Họp thôn", zone_id="thon-1", start_at=start, expires_at=start))
    db.dispose()

    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("  thon-1-loa-1 ") and line.endswith("đồng hồ -2000.4 ms") for line in lines), lines
    assert any(line.startswith("  thon-1-loa-2 ") and line.endswith("đồng hồ chưa đo") for line in lines), lines
    assert any(
        line.startswith("CẢNH BÁO: Thôn 1: 1 loa lệch đồng hồ quá 50 ms (thon-1-loa-1 -2000 ms); 'Họp thôn' phát lúc")
        for line in lines
    ), lines

    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["id"]: d["clock_offset_ms"] for d in data["devices"]} == {"thon-1-loa-1": -2000.4, "thon-1-loa-2": None}
    assert [w["speakers"] for w in data["clock_warnings"]] == [{"thon-1-loa-1": -2000.4}]
