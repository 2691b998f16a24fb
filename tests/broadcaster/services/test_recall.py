"""Recalling an announcement, the person's half: what the database holds afterwards, on SQLite and
PostgreSQL, with the clock in the test's hand. What reaches the devices is tested in
tests/broadcaster/dispatch/test_recall.py and, end to end, in tests/broadcaster/test_recall_end_to_end.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.db import (
    AuditEntry,
    Broadcast,
    BroadcastStatus,
    Command,
    Delivery,
    DeliveryStatus,
    DeviceKind,
    Programme,
)
from broadcaster.dispatch.claim import claim_placement
from broadcaster.errors import LoaError
from broadcaster.messages import reason_text
from broadcaster.services import Services
from broadcaster.services import recall as recall_module
from broadcaster.services.announcements import announce, get_announcement
from broadcaster.services.programmes import add_programme, expand_programmes
from broadcaster.services.recall import MAX_REASON_CHARS, recall, recent_recalls
from broadcaster.services.views import calendar, timeline
from broadcaster.services.zones import add_device, add_zone
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import make_services

MORNING = datetime(2026, 11, 25, 7, 0, tzinfo=LOCAL_TZ)
ALARM = "Khẩn cấp: cháy rừng ở đồi thông, bà con tránh xa khu vực."


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(MORNING))
    services.config.schedule.emergency_repeats = 3
    add_zone(services, "thon-1", "Thôn 1", "village", [], actor="t")
    add_zone(services, "thon-2", "Thôn 2", "village", [], actor="t")
    with services.db.session() as s:
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1")
        add_device(s, "thon-2-loa", DeviceKind.SPEAKER, "thon-2")
    yield services
    services.db.dispose()


def _broadcasts(svc: Services, announcement_id: int) -> list[Broadcast]:
    with svc.db.session() as s:
        return list(s.scalars(select(Broadcast).where(Broadcast.announcement_id == announcement_id)))


def _recall_entries(svc: Services) -> list[AuditEntry]:
    with svc.db.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "announcement.recall")))


def _dispatch_first_airing(svc: Services, announcement_id: int) -> tuple[list[int], dict[str, str]]:
    """What the dispatcher leaves after sending the first airing: the broadcasts DISPATCHED, a delivery and
    a command per device. thon-1's speaker is playing it; thon-2's has already finished it."""
    with svc.db.session() as s:
        mine = list(s.scalars(select(Broadcast).where(Broadcast.announcement_id == announcement_id)))
        first = min(b.start_at for b in mine)
        rows = [b for b in mine if b.start_at == first]
        now = svc.clock.now()
        commands = {}
        for b in rows:
            b.status = BroadcastStatus.DISPATCHED
            device = f"{b.zone_id}-loa"
            done = device == "thon-2-loa"
            d = Delivery(
                broadcast_id=b.id,
                device_id=device,
                status=DeliveryStatus.DONE if done else DeliveryStatus.PLAYING,
                updated_at=now,
            )
            s.add(d)
            s.flush()
            c = Command(
                device_id=device, delivery_id=d.id, type="play", payload="{}", created_at=now, expires_at=b.expires_at
            )
            s.add(c)
            s.flush()
            commands[device] = c.id
        return [b.id for b in rows], commands


def test_a_planned_emergency_is_recalled_whole_and_can_never_be_claimed(svc: Services) -> None:
    item = announce(svc, ALARM, ["all"], None, priority="emergency", actor="cán bộ")
    rows = _broadcasts(svc, item["id"])
    assert len(rows) == 6  # three repeats, two villages
    result = recall(svc, item["id"], actor="chủ tịch xã", reason="Báo nhầm")
    counts = (result["cancelled_before_dispatch"], result["cancelled_after_dispatch"], result["devices_to_stop"])
    assert counts == (6, 0, 0)
    assert result["already_recalled"] is False
    assert result["recall"] == {
        "by": "chủ tịch xã",
        "at": "2026-11-25T00:00:00+00:00",
        "at_local": "07:00:00 25/11/2026",
        "reason": "Báo nhầm",
    }
    assert result["summary"] == (
        f"Đã thu hồi thông báo số {item['id']}: hủy 6 lượt phát chưa gửi và 0 lượt đã gửi; 0 thiết bị được lệnh dừng."
    )
    rows = _broadcasts(svc, item["id"])
    assert {(b.status, b.reason) for b in rows} == {(BroadcastStatus.CANCELLED, "recalled")}
    assert reason_text(rows[0].reason) == "Đã bị thu hồi" and reason_text(rows[0].reason, "en") == "Recalled"
    with svc.db.session() as s:  # the timer firing later, or a reconcile: nothing left to claim
        for b in rows:
            assert claim_placement(s, b.id, svc.clock.now() + timedelta(minutes=5)) == []
    (entry,) = _recall_entries(svc)
    assert entry.actor == "chủ tịch xã" and entry.at == svc.clock.now()
    assert json.loads(entry.detail) == {
        "announcement": item["id"],
        "reason": "Báo nhầm",
        "cancelled_before_dispatch": 6,
        "cancelled_after_dispatch": 0,
        "devices_to_stop": 0,
        "programmes_stopped": 0,
    }


def test_a_dispatched_airing_is_cancelled_and_only_unfinished_devices_count(svc: Services) -> None:
    item = announce(svc, ALARM, ["all"], None, priority="emergency")
    sent, _ = _dispatch_first_airing(svc, item["id"])
    result = recall(svc, item["id"], actor="cán bộ", reason="Báo nhầm", lang="en")
    assert (result["cancelled_before_dispatch"], result["cancelled_after_dispatch"]) == (4, 2)
    assert result["devices_to_stop"] == 1  # thon-2's speaker has finished: nothing to stop there
    assert result["summary"] == (
        f"Recalled announcement {item['id']}: 4 airings cancelled before dispatch and 2 already sent; "
        "1 devices told to stop."
    )
    assert all(b.status is BroadcastStatus.CANCELLED for b in _broadcasts(svc, item["id"]))
    with svc.db.session() as s:  # the deliveries stay as the devices reported them until they report the stop
        assert sorted(s.scalars(select(Delivery.status).where(Delivery.broadcast_id.in_(sent)))) == sorted(
            [DeliveryStatus.DONE, DeliveryStatus.PLAYING]
        )


def test_recalling_twice_is_not_an_error_and_reports_the_first_recall(svc: Services) -> None:
    item = announce(svc, ALARM, ["thon-1"], None, priority="emergency")
    recall(svc, item["id"], actor="chủ tịch xã", reason="Báo nhầm")
    assert isinstance(svc.clock, FakeClock)
    svc.clock.advance(timedelta(minutes=2))
    again = recall(svc, item["id"], actor="cán bộ", reason="")
    assert again["already_recalled"] is True
    counts = (again["cancelled_before_dispatch"], again["cancelled_after_dispatch"], again["devices_to_stop"])
    assert counts == (0, 0, 0)
    assert again["recall"]["by"] == "chủ tịch xã" and again["recall"]["reason"] == "Báo nhầm"
    assert again["summary"] == (
        f"Thông báo số {item['id']} đã được chủ tịch xã thu hồi lúc 07:00:00 25/11/2026; "
        "không còn lượt phát nào để dừng."
    )
    assert [e.actor for e in _recall_entries(svc)] == ["chủ tịch xã", "cán bộ"]  # both actions are on record
    assert get_announcement(svc, item["id"])["recall"]["by"] == "chủ tịch xã"


def test_an_unknown_announcement_is_not_found_and_nothing_is_written(svc: Services) -> None:
    for unknown in (999, 2**70):
        with pytest.raises(LoaError) as err:
            recall(svc, unknown, actor="cán bộ", reason="Báo nhầm")
        assert (err.value.code, err.value.status) == ("not_found", 404)
        assert err.value.message() == f"Không có thông báo số {unknown}."
        assert err.value.message("en") == f"There is no announcement {unknown}."
    assert _recall_entries(svc) == []


@pytest.mark.parametrize(
    ("reason", "code"),
    [("x" * (MAX_REASON_CHARS + 1), "reason_too_long"), ("Báo nhầm \ud800", "bad_text")],
)
def test_a_refused_reason_leaves_the_announcement_on_air(svc: Services, reason: str, code: str) -> None:
    item = announce(svc, ALARM, ["all"], None, priority="emergency")
    with pytest.raises(LoaError) as err:
        recall(svc, item["id"], actor="cán bộ", reason=reason)
    assert err.value.code == code and err.value.status == 400
    assert {b.status for b in _broadcasts(svc, item["id"])} == {BroadcastStatus.PLANNED}
    assert _recall_entries(svc) == []


def test_a_recall_that_fails_half_way_writes_nothing(svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit entry is written last: a failure there must not leave the broadcasts cancelled without
    anyone on record, nor some of them cancelled and some not."""
    item = announce(svc, ALARM, ["all"], None, priority="emergency")
    _dispatch_first_airing(svc, item["id"])

    def broken_audit(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(recall_module, "audit", broken_audit)
    with pytest.raises(RuntimeError):
        recall(svc, item["id"], actor="cán bộ", reason="Báo nhầm")
    statuses = sorted(b.status.value for b in _broadcasts(svc, item["id"]))
    assert statuses == ["dispatched", "dispatched", "planned", "planned", "planned", "planned"]
    assert get_announcement(svc, item["id"])["recall"] is None


def test_the_record_shows_who_recalled_it_in_the_item_the_timeline_and_the_status(svc: Services) -> None:
    kept = announce(svc, "Thông báo họp thôn.", ["thon-1"], "+1h", title="Họp thôn")
    item = announce(svc, ALARM, ["thon-1"], None, priority="emergency", title="Cháy rừng")
    assert get_announcement(svc, item["id"])["recall"] is None
    recall(svc, item["id"], actor="chủ tịch xã", reason="Báo nhầm")
    view = get_announcement(svc, item["id"], "en")
    assert view["recall"]["by"] == "chủ tịch xã" and view["recall"]["at_local"] == "07:00:00 25/11/2026"
    assert {(b["status"], b["reason"]) for b in view["broadcasts"]} == {("cancelled", "Recalled")}
    rows = timeline(svc, "thon-1")
    recalled = [r for r in rows if r["title"] == "Cháy rừng"]
    assert len(recalled) == 3 and {(r["status"], r["reason"]) for r in recalled} == {("cancelled", "Đã bị thu hồi")}
    ics = calendar(svc, "thon-1")  # the officer's phone shows what will air
    assert ics.count("BEGIN:VEVENT") == 1 and "Cháy rừng" not in ics
    assert get_announcement(svc, kept["id"])["recall"] is None
    (latest,) = recent_recalls(svc, svc.clock.now() - timedelta(days=1))
    assert (latest["announcement"], latest["title"], latest["by"], latest["reason"]) == (
        item["id"],
        "Cháy rừng",
        "chủ tịch xã",
        "Báo nhầm",
    )
    assert recent_recalls(svc, svc.clock.now() + timedelta(seconds=1)) == []


def test_recalling_a_recurring_notice_stops_the_programme_too(svc: Services) -> None:
    prog = add_programme(
        svc,
        kind="notice",
        title="Thu quỹ",
        zones=["thon-1"],
        recurrence="08:00",
        text="Thông báo thu quỹ phòng chống thiên tai.",
        actor="t",
    )
    with svc.db.session() as s:
        programme = s.get(Programme, prog["id"])
        assert programme is not None and programme.announcement_id is not None
        announcement_id = programme.announcement_id
    planned = len(_broadcasts(svc, announcement_id))
    assert planned >= 1
    result = recall(svc, announcement_id, actor="cán bộ", reason="Đã thu xong")
    assert result["programmes_stopped"] == 1 and result["cancelled_before_dispatch"] == planned
    assert isinstance(svc.clock, FakeClock)
    svc.clock.advance(timedelta(days=3))
    assert expand_programmes(svc) == 0  # later occurrences are never planned
    with svc.db.session() as s:
        live = s.scalar(
            select(func.count())
            .select_from(Broadcast)
            .where(Broadcast.announcement_id == announcement_id, Broadcast.status != BroadcastStatus.CANCELLED)
        )
    assert live == 0
