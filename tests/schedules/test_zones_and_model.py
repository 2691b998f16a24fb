from __future__ import annotations

from datetime import UTC, date, time, timedelta

import pytest

from schedules import (
    NO_QUIET_HOURS,
    Airing,
    AiringKind,
    BulletinProgramme,
    BulletinWindow,
    EmergencyAlert,
    ErrorCode,
    NoticeSeries,
    Priority,
    QuietHours,
    Recurrence,
    RelayProgramme,
    ScheduleError,
    Zone,
    ZoneKind,
    ZoneTree,
    notice,
)
from tests.schedules.helpers import COMMUNE, NORTH, SOUTH, local, village

NOW = local(2025, 5, 25, 8)
MIN = timedelta(minutes=1)


def codes(make: object) -> ErrorCode:
    with pytest.raises(ScheduleError) as caught:
        make()  # type: ignore[operator]
    assert caught.value.message_vi
    return caught.value.code


def test_expand_commune_group_and_village(tree: ZoneTree) -> None:
    assert tree.expand([COMMUNE]) == frozenset(village(i) for i in range(1, 11))
    assert tree.expand([NORTH]) == frozenset(village(i) for i in range(1, 6))
    assert tree.expand([NORTH, village(9)]) == frozenset([*(village(i) for i in range(1, 6)), village(9)])
    assert tree.expand([village(3), village(3)]) == frozenset([village(3)])
    assert tree.villages == tree.expand([NORTH, SOUTH])


def test_unknown_zone(tree: ZoneTree) -> None:
    assert codes(lambda: tree.expand(["thon-99"])) == ErrorCode.UNKNOWN_ZONE
    assert codes(lambda: tree.expand([])) == ErrorCode.UNKNOWN_ZONE


def test_bad_trees() -> None:
    commune = Zone("x", "Xã", ZoneKind.COMMUNE)
    assert codes(lambda: ZoneTree([commune, commune])) == ErrorCode.BAD_ZONE
    assert codes(lambda: ZoneTree([Zone("v", "Thôn", ZoneKind.VILLAGE, parent="nope")])) == ErrorCode.BAD_ZONE
    v = Zone("v", "Thôn", ZoneKind.VILLAGE, parent="x")
    assert codes(lambda: ZoneTree([commune, v, Zone("g", "Cụm", ZoneKind.GROUP, members=frozenset({"x"}))])) == (
        ErrorCode.BAD_ZONE
    )
    assert codes(lambda: ZoneTree([commune, v, Zone("g", "Cụm", ZoneKind.GROUP)])) == ErrorCode.BAD_ZONE


def test_quiet_hours_most_specific_wins(tree: ZoneTree) -> None:
    late = QuietHours(time(23), time(4))
    group = QuietHours(time(22), time(5))
    settings = {village(1): late, NORTH: group, COMMUNE: NO_QUIET_HOURS}
    assert tree.quiet_hours_for(village(1), settings) == (late,)
    assert tree.quiet_hours_for(village(2), settings) == (group,)
    assert tree.quiet_hours_for(village(7), settings) == (NO_QUIET_HOURS,)
    assert tree.quiet_hours_for(village(7), None) == (QuietHours(time(21, 30), time(5)),)
    assert codes(lambda: tree.check_quiet_hours_keys({"nowhere": late})) == ErrorCode.UNKNOWN_ZONE


def test_notice_at_and_asap() -> None:
    at = notice("a", "Họp", 2 * MIN, {village(1)}, now=NOW, at=local(2025, 5, 25, 17))
    assert at.earliest == local(2025, 5, 25, 17) and at.earliest.tzinfo is UTC
    assert at.valid_until == local(2025, 5, 25, 19)
    asap = notice("b", "Mất điện", 2 * MIN, {village(1)}, now=NOW)
    assert asap.earliest == NOW
    assert asap.kind is AiringKind.NOTICE and asap.priority is Priority.NORMAL


def test_bad_inputs_have_codes() -> None:
    v = frozenset({village(1)})
    assert codes(lambda: notice("a", "x", MIN, v, now=NOW, at=NOW - MIN)) == ErrorCode.IN_PAST
    assert codes(lambda: notice("a", "x", MIN, v, now=NOW, valid_until=NOW - MIN)) == ErrorCode.END_BEFORE_START
    assert codes(lambda: notice("a", "x", 10 * MIN, v, now=NOW, valid_until=NOW + MIN)) == (ErrorCode.END_BEFORE_START)
    assert codes(lambda: notice("a", "x", timedelta(0), v, now=NOW)) == ErrorCode.BAD_DURATION
    assert codes(lambda: notice("a", "x", MIN, frozenset(), now=NOW)) == ErrorCode.UNKNOWN_ZONE
    assert codes(lambda: notice("a", "x", MIN, v, now=NOW, priority=Priority.EMERGENCY)) == ErrorCode.BAD_PRIORITY
    daily = Recurrence.daily([time(6)], date(2025, 5, 25))
    for url in ("rtsp://vov.vn/live", "ftp://x/y", "vov.vn/live", "http://", "", "javascript:alert(1)"):
        assert codes(lambda u=url: RelayProgramme("r", "VOV", u, 30 * MIN, v, daily)) == ErrorCode.BAD_RELAY_URL
    RelayProgramme("r", "VOV", "https://vov.vn/live?x=1", 30 * MIN, v, daily)  # fine
    relay_as_normal = {
        "id": "r", "title": "VOV", "kind": AiringKind.RELAY, "priority": Priority.NORMAL, "duration": MIN,
        "targets": v, "earliest": NOW, "valid_until": NOW + MIN, "stream_url": "http://vov.vn",
    }  # fmt: skip
    assert codes(lambda: Airing(**relay_as_normal)) == ErrorCode.BAD_PRIORITY  # type: ignore[arg-type]
    assert codes(lambda: EmergencyAlert("e", "Lũ", MIN, v, repeats=0)) == ErrorCode.NEVER_FIRES
    assert codes(lambda: NoticeSeries("s", "x", 10 * MIN, v, daily, validity=MIN)) == ErrorCode.END_BEFORE_START
    assert codes(lambda: BulletinWindow("w", v, NOW, NOW - MIN)) == ErrorCode.END_BEFORE_START
    assert codes(lambda: BulletinWindow("w", v, NOW, NOW + timedelta(seconds=15))) == ErrorCode.WINDOW_TOO_SHORT


def test_series_relays_alerts_and_windows_expand_with_stable_ids() -> None:
    v = frozenset({village(1)})
    rule = Recurrence.for_days([time(6), time(17)], date(2025, 5, 25), 3)
    series = NoticeSeries("tiem", "Tiêm chủng", 2 * MIN, v, rule).airings(local(2025, 5, 1), local(2025, 6, 1))
    assert len(series) == 6
    assert series[0].id == "tiem@20250524T230000Z"
    assert len({a.id for a in series}) == 6
    relay = RelayProgramme("vov", "VOV1", "http://vov.vn/live", 30 * MIN, v, rule)
    relays = relay.airings(local(2025, 5, 25), local(2025, 5, 26))
    assert [(r.earliest, r.valid_until - r.earliest) for r in relays] == [
        (local(2025, 5, 25, 6), 30 * MIN),
        (local(2025, 5, 25, 17), 30 * MIN),
    ]
    assert all(r.priority is Priority.BACKGROUND and r.stream_url for r in relays)
    alert = EmergencyAlert("lu", "Lũ quét", 2 * MIN, v, repeats=3, gap=MIN).airings(NOW)
    assert [a.id for a in alert] == ["lu#1", "lu#2", "lu#3"]
    assert [a.earliest - NOW for a in alert] == [timedelta(0), 3 * MIN, 6 * MIN]
    windows = BulletinProgramme("bt", v, rule).windows(local(2025, 5, 25), local(2025, 5, 26))
    assert [w.title for w in windows] == [
        "Bản tin sáng ngày 25 tháng 5",
        "Bản tin chiều ngày 25 tháng 5",
    ]
    assert windows[0].end - windows[0].start == 30 * MIN
