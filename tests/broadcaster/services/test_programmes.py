"""Relays and recurring notices: stored once, expanded ahead through the planner, never twice."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.db import Broadcast, Programme
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.announcements import announce
from broadcaster.services.programmes import add_programme, expand_programmes, list_programmes
from broadcaster.services.views import timeline
from broadcaster.services.zones import add_zone
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import make_services

DAWN = datetime(2026, 11, 25, 5, 0, tzinfo=LOCAL_TZ)
RADIO = "http://127.0.0.1:9/vov1.mp3"


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(DAWN))
    for n in (1, 2):
        add_zone(services, f"thon-{n}", f"Thôn {n}", "village", [], actor="t")
    yield services
    services.db.dispose()


def _clock(svc: Services) -> FakeClock:
    assert isinstance(svc.clock, FakeClock)
    return svc.clock


def _count(svc: Services, model: type) -> int:
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_a_daily_relay_is_placed_ahead_and_expanding_again_adds_nothing(svc: Services) -> None:
    prog = add_programme(svc, "relay", "Thời sự VOV1", ["all"], "06:00", stream_url=RADIO, duration_s=1800)
    starts = sorted({p["start_at_local"] for p in prog["placements"]})
    assert prog["placements"][0]["village_names"] == ["Thôn 1", "Thôn 2"]
    assert starts == ["06:00:00 25/11/2026", "06:00:00 26/11/2026"]  # 36 hours ahead
    rows = _count(svc, Broadcast)
    assert rows == 4  # two villages, two mornings
    assert expand_programmes(svc) == 0
    assert _count(svc, Broadcast) == rows
    _clock(svc).advance(timedelta(days=1))
    assert expand_programmes(svc) == 1  # the third morning comes into the horizon
    assert _count(svc, Broadcast) == rows + 2


def test_a_notice_cuts_the_relay_which_resumes_after_it(svc: Services) -> None:
    add_programme(svc, "relay", "Thời sự VOV1", ["thon-1"], "06:00", stream_url=RADIO, duration_s=1800)
    at = DAWN.replace(hour=6, minute=10).isoformat()
    announce(svc, "Thông báo lịch cắt điện.", ["thon-1"], at, title="Cắt điện")
    day = timeline(svc, "thon-1", DAWN, DAWN + timedelta(hours=3))
    assert [(r["kind"], r["start_at_local"][:5]) for r in day] == [
        ("relay", "06:00"),
        ("notice", "06:10"),
        ("relay", "06:10"),
    ]
    relay_pieces = [r for r in day if r["kind"] == "relay"]
    notice = next(r for r in day if r["kind"] == "notice")
    assert relay_pieces[0]["end_at"] <= notice["start_at"] < notice["end_at"] <= relay_pieces[1]["start_at"]
    assert all(r["stream_url"] == RADIO for r in relay_pieces)


def test_a_recurring_notice_airs_each_occurrence_once(svc: Services) -> None:
    prog = add_programme(
        svc,
        "notice",
        "Tiêm phòng dại",
        ["thon-2"],
        "06:00 và 17:00 trong 3 ngày",
        text="Thông báo tiêm phòng dại cho chó mèo tại nhà văn hóa thôn 2.",
    )
    assert prog["kind"] == "notice"
    for _ in range(4):
        _clock(svc).advance(timedelta(hours=12))
        expand_programmes(svc)
    rows = timeline(svc, "thon-2", DAWN, DAWN + timedelta(days=5))
    assert [r["start_at_local"][:11] for r in rows] == [
        "06:00:00 25",
        "17:00:00 25",
        "06:00:00 26",
        "17:00:00 26",
        "06:00:00 27",
        "17:00:00 27",
    ]
    assert {r["announcement"] for r in rows} != {None}  # each occurrence plays the programme's audio


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"kind": "relay", "recurrence": "06:00", "stream_url": "ftp://radio/x", "duration_s": 60}, "bad_relay_url"),
        ({"kind": "relay", "recurrence": "06:00", "stream_url": RADIO, "duration_s": 0}, "bad_duration"),
        ({"kind": "relay", "recurrence": "hằng ngày", "stream_url": RADIO, "duration_s": 60}, "never_fires"),
        (
            {
                "kind": "relay",
                "recurrence": "06:00 từ 10/06/2026 đến 01/06/2026",
                "stream_url": RADIO,
                "duration_s": 60,
            },
            "end_before_start",
        ),
        ({"kind": "notice", "recurrence": "22:30", "text": "Họp thôn."}, "in_quiet_hours"),
        ({"kind": "notice", "recurrence": "06:00", "text": "  "}, "empty_text"),
        ({"kind": "podcast", "recurrence": "06:00"}, "bad_kind"),
    ],
)
def test_bad_programmes_are_refused_and_nothing_is_stored(svc: Services, kwargs: dict, code: str) -> None:
    kwargs = dict(kwargs)  # the parameters are shared between the database backends
    kind = kwargs.pop("kind")
    recurrence = kwargs.pop("recurrence")
    with pytest.raises(LoaError) as err:
        add_programme(svc, kind, "Chương trình", ["all"], recurrence, **kwargs)
    assert err.value.code == code, err.value.message("vi")
    assert _count(svc, Programme) == 0 and _count(svc, Broadcast) == 0
    assert list_programmes(svc) == []


def test_items_queued_in_a_bulletin_air_in_order_inside_its_frame(svc: Services) -> None:
    bulletin = add_programme(svc, "bulletin", "Bản tin", ["all"], "06:00 và 17:00", duration_s=1800)
    assert [w["start_at_local"] for w in bulletin["windows"]][:2] == ["06:00 25/11/2026", "17:00 25/11/2026"]
    first = announce(svc, "Thông báo thu thuế đất.", ["all"], title="Thu thuế", bulletin=bulletin["id"])
    second = announce(svc, "Thông báo lịch họp.", ["all"], title="Lịch họp", bulletin=bulletin["id"])
    assert first["placements"][0]["code"] == "bulletin_item"
    rows = timeline(svc, "thon-1", DAWN, DAWN + timedelta(hours=2))
    assert [r["kind"] for r in rows] == ["chime_open", "heading", "notice", "notice", "chime_close"]
    assert [r["title"] for r in rows][1:4] == ["Bản tin sáng ngày 25 tháng 11", "Thu thuế", "Lịch họp"]
    assert rows[0]["start_at_local"].startswith("06:00")
    assert all(a["end_at"] <= b["start_at"] for a, b in itertools.pairwise(rows))
    with svc.db.session() as s:
        frame = s.scalars(select(Broadcast).where(Broadcast.kind == "heading")).first()
        assert frame is not None and frame.clip is not None and frame.clip.audio_sha256
        assert frame.announcement is None  # the frame is loa's own sound, not one of the officer's items
    assert second["id"] == first["id"] + 1


def test_bulletin_input_is_checked(svc: Services) -> None:
    with pytest.raises(LoaError) as err:
        add_programme(svc, "bulletin", "Bản tin ngắn", ["all"], "06:00", duration_s=3)
    assert err.value.code == "window_too_short"
    with pytest.raises(LoaError) as err:
        announce(svc, "Thông báo.", ["all"], bulletin=99)
    assert err.value.code == "no_bulletin"
    assert _count(svc, Programme) == 0 and _count(svc, Broadcast) == 0
