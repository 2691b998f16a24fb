"""Announcements through the planner and into the database, with the clock in the test's hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.db import Broadcast, BroadcastStatus
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.announcements import announce, get_announcement
from broadcaster.services.devices import offline_warnings
from broadcaster.services.reports import report
from broadcaster.services.views import calendar, timeline
from broadcaster.services.zones import add_zone
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import make_services

MORNING = datetime(2026, 11, 25, 7, 0, tzinfo=LOCAL_TZ)
NIGHT = datetime(2026, 11, 25, 22, 0, tzinfo=LOCAL_TZ)


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(MORNING))
    services.config.schedule.emergency_repeats = 2
    add_zone(services, "thon-1", "Thôn 1", "village", [], actor="t")
    add_zone(services, "thon-2", "Thôn 2", "village", [], actor="t")
    add_zone(services, "thon-3", "Thôn 3", "village", [], actor="t")
    add_zone(services, "nhom-bac", "Các thôn phía bắc", "group", ["thon-1", "thon-2"], actor="t")
    yield services
    services.db.dispose()


def _rows(svc: Services, announcement_id: int) -> list[Broadcast]:
    with svc.db.session() as s:
        return list(
            s.scalars(
                select(Broadcast)
                .where(Broadcast.announcement_id == announcement_id, Broadcast.status != BroadcastStatus.CANCELLED)
                .order_by(Broadcast.start_at, Broadcast.zone_id)
            )
        )


def test_a_clash_moves_the_second_item_after_the_first_and_says_why(svc: Services) -> None:
    at = (MORNING + timedelta(minutes=30)).isoformat()
    first = announce(svc, "Thông báo lịch tiêm chủng cho trẻ em.", ["thon-1"], at)
    second = announce(svc, "Thông báo họp chi bộ.", ["thon-1"], at)
    a, b = _rows(svc, first["id"])[0], _rows(svc, second["id"])[0]
    assert b.start_at >= a.start_at + timedelta(milliseconds=a.duration_ms)
    assert second["placements"][0]["code"] == "moved"
    assert "Thông báo lịch tiêm chủng" in second["placements"][0]["explanation"]


def test_a_group_starts_together_in_all_its_villages(svc: Services) -> None:
    item = announce(svc, "Thông báo nạo vét kênh mương.", ["nhom-bac"], "+10m")
    rows = _rows(svc, item["id"])
    assert [r.zone_id for r in rows] == ["thon-1", "thon-2"]
    assert rows[0].start_at == rows[1].start_at


def test_quiet_hours_refuse_a_normal_notice_and_store_nothing(svc: Services) -> None:
    assert isinstance(svc.clock, FakeClock)
    svc.clock.set(NIGHT)
    with pytest.raises(LoaError) as err:
        announce(svc, "Thông báo họp thôn.", ["thon-3"], "+5m")
    assert err.value.code == "in_quiet_hours" and err.value.status == 409
    assert "yên tĩnh" in err.value.message("vi")
    assert timeline(svc, None, NIGHT - timedelta(hours=1), NIGHT + timedelta(days=1)) == []


def test_an_emergency_sounds_in_quiet_hours_and_repeats(svc: Services) -> None:
    assert isinstance(svc.clock, FakeClock)
    svc.clock.set(NIGHT)
    item = announce(
        svc, "Khẩn cấp: nước lũ đang lên, bà con di chuyển lên vùng cao.", ["all"], None, priority="emergency"
    )
    rows = _rows(svc, item["id"])
    assert {r.zone_id for r in rows} == {"thon-1", "thon-2", "thon-3"}
    starts = sorted({r.start_at for r in rows})
    assert len(starts) == 2  # two repeats (configured), each in every village at once
    assert starts[1] - starts[0] >= timedelta(seconds=60)
    assert all(r.priority == "emergency" for r in rows)


def test_an_emergency_pushes_a_planned_notice_and_the_officer_sees_it(svc: Services) -> None:
    notice = announce(svc, "Thông báo thu quỹ phòng chống thiên tai.", ["thon-2"], "+4s")
    before = _rows(svc, notice["id"])[0].start_at
    alert = announce(
        svc, "Khẩn cấp: bão số 3 đổ bộ, bà con chằng chống nhà cửa.", ["thon-2"], None, priority="emergency"
    )
    assert [m["airing"] for m in alert["moved"]] == [f"a{notice['id']}"]
    after = _rows(svc, notice["id"])[0].start_at
    assert after > before
    alert_rows = _rows(svc, alert["id"])
    for r in alert_rows:
        end = r.start_at + timedelta(milliseconds=r.duration_ms)
        assert not (r.start_at < after < end)


def test_a_preview_shows_the_placement_and_stores_nothing(svc: Services) -> None:
    result = announce(svc, "Thông báo mất điện.", ["thon-1"], "+1h", preview=True)
    assert result["preview"] is True and result["placements"][0]["villages"] == ["thon-1"]
    assert timeline(svc) == []


def test_timeline_and_calendar_per_zone(svc: Services) -> None:
    announce(svc, "Thông báo họp thôn 1.", ["thon-1"], "+1h", title="Họp thôn 1")
    announce(svc, "Thông báo họp cả xã.", ["all"], "+2h", title="Họp toàn xã")
    rows = timeline(svc, "thon-2")
    assert [r["title"] for r in rows] == ["Họp toàn xã"]
    assert [r["title"] for r in timeline(svc, "thon-1")] == ["Họp thôn 1", "Họp toàn xã"]
    ics = calendar(svc, "thon-1")
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and ics.count("BEGIN:VEVENT") == 2
    assert "SUMMARY:Họp thôn 1" in ics
    with pytest.raises(LoaError, match="unknown_zone"):
        timeline(svc, "thon-9")
    with pytest.raises(LoaError, match="end_before_start"):
        timeline(svc, None, MORNING, MORNING - timedelta(hours=1))


def test_offline_speakers_before_an_airing_are_flagged(svc: Services) -> None:
    from broadcaster.db import DeviceKind
    from broadcaster.services.zones import add_device

    with svc.db.session() as s:
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1")
        online = add_device(s, "thon-2-loa", DeviceKind.SPEAKER, "thon-2")
        online.online = True
    announce(svc, "Thông báo họp thôn.", ["all"], "+10m", title="Họp thôn")
    warnings = offline_warnings(svc)
    assert [(w["zone"], w["offline_speakers"]) for w in warnings] == [("thon-1", ["thon-1-loa"])]
    assert "Thôn 1: 1 loa mất kết nối, 'Họp thôn'" in warnings[0]["message"]
    assert offline_warnings(svc, within=timedelta(minutes=5)) == []


def test_eviction_keeps_audio_that_is_still_to_air(svc: Services) -> None:
    from broadcaster.services.audio import evict_audio

    kept = announce(svc, "Thông báo họp thôn tối nay.", ["thon-1"], "+1h")
    loose = svc.audio.render("Một bản nghe thử không lên lịch.")
    svc.audio.store.max_bytes = 1  # everything is over budget now
    svc.audio.store.grace_s = 0
    evicted = evict_audio(svc)
    assert loose.sha256 in evicted
    assert kept["audio"]["sha256"] not in evicted
    assert svc.audio.store.open(kept["audio"]["sha256"]) is not None


def test_eviction_keeps_what_villagers_may_still_listen_to_again(svc: Services) -> None:
    """Aired audio stays in the store for `[villagers] listen_days` (the public "nghe lại" pages and
    podcast feeds play it from there), then goes like any other file."""
    from broadcaster.db import Broadcast, BroadcastStatus
    from broadcaster.services.audio import evict_audio

    aired = announce(svc, "Thông báo lịch tiêm chủng tuần này.", ["thon-1"], "+5m")
    with svc.db.session() as s:
        for b in s.scalars(select(Broadcast).where(Broadcast.announcement_id == aired["id"])):
            b.status = BroadcastStatus.DONE
    svc.audio.store.max_bytes = 1
    svc.audio.store.grace_s = 0
    svc.clock.advance(timedelta(days=svc.config.villagers.listen_days - 1))  # type: ignore[attr-defined]
    assert aired["audio"]["sha256"] not in evict_audio(svc)
    svc.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    assert aired["audio"]["sha256"] in evict_audio(svc)


def test_the_officer_orders_clashing_priority_items(svc: Services) -> None:
    at = (MORNING + timedelta(hours=1)).isoformat()
    later = announce(svc, "Thông báo về nước sạch.", ["thon-1"], at, priority="priority", order=2)
    first = announce(svc, "Thông báo về điện.", ["thon-1"], at, priority="priority", order=1)
    assert _rows(svc, first["id"])[0].start_at < _rows(svc, later["id"])[0].start_at
    assert [m["airing"] for m in first["moved"]] == [f"a{later['id']}"]


def test_a_village_can_keep_its_own_quiet_hours(svc: Services) -> None:
    add_zone(svc, "thon-cho", "Thôn có chợ đêm", "village", [], actor="t", quiet=("23:30", "04:00"))
    assert isinstance(svc.clock, FakeClock)
    svc.clock.set(NIGHT)  # 22:00: quiet in the other villages, not here
    announce(svc, "Thông báo về chợ đêm.", ["thon-cho"], "+5m")
    with pytest.raises(LoaError, match="in_quiet_hours"):
        announce(svc, "Thông báo về chợ đêm.", ["thon-1"], "+5m")


def test_the_quarter_report_counts_items_and_plays(svc: Services) -> None:
    from broadcaster.db import Delivery, DeliveryStatus, DeviceKind
    from broadcaster.services.zones import add_device

    with svc.db.session() as s:
        for v in ("thon-1", "thon-2"):
            add_device(s, f"{v}-loa", DeviceKind.SPEAKER, v)
            add_device(s, f"{v}-led", DeviceKind.LED, v)
    a = announce(svc, "Thông báo một.", ["all"], "+10m")
    b = announce(svc, "Thông báo hai.", ["thon-1"], "+20m")
    with svc.db.session() as s:
        for item, devices in ((a, ("thon-1-loa", "thon-2-loa", "thon-1-led")), (b, ("thon-1-loa",))):
            for row in _rows(svc, item["id"]):
                for d in devices:
                    if d.startswith(row.zone_id):
                        s.add(
                            Delivery(broadcast_id=row.id, device_id=d, status=DeliveryStatus.DONE, updated_at=MORNING)
                        )
    day = MORNING.replace(hour=0)
    got = report(svc, day, day + timedelta(days=1))
    assert (got["items"], got["plays"]) == (2, 3)  # LED boards do not count as plays
    assert got["text"] == "2 mục, 3 lượt phát (25/11/2026–25/11/2026)"
    assert get_announcement(svc, a["id"])["summary"] == "2/2 loa đã phát xong"
