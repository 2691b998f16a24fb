from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest

from schedules import (
    NO_QUIET_HOURS,
    Airing,
    BulletinWindow,
    EmergencyAlert,
    ErrorCode,
    Placement,
    PlacementCode,
    Plan,
    Priority,
    Recurrence,
    RelayProgramme,
    ScheduleError,
    ZoneTree,
    check_request,
    notice,
    plan,
)
from tests.schedules.helpers import COMMUNE, NORTH, local, overlaps_in_villages, quiet_violations, village

MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)
NOW = local(2025, 5, 25, 16)


def at(h: int, m: int = 0, s: int = 0, day: int = 25) -> datetime:
    return local(2025, 5, day, h, m, s)


def only(p: Plan, airing_id: str) -> Placement:
    (found,) = p.for_airing(airing_id)
    return found


def dispatched(p: Plan, now: datetime) -> list[Placement]:
    """What the lead would load back from the database at `now`."""
    return [replace(x, dispatched=True) if x.start <= now else x for x in p.placements]


def sane(p: Plan, tree: ZoneTree) -> Plan:
    assert overlaps_in_villages(p.placements) == []
    assert quiet_violations(p.placements, tree) == []
    return p


def test_clash_with_higher_priority_moves_the_normal_item(tree: ZoneTree) -> None:
    vax = notice("vax", "Thông báo tiêm chủng", 5 * MIN, {village(1)}, now=NOW, at=at(17), priority=Priority.PRIORITY)
    meet = notice("meet", "Họp thôn", 3 * MIN, {village(1)}, now=NOW, at=at(17))
    p = sane(plan(tree, [meet, vax], now=NOW), tree)
    assert only(p, "vax").start == at(17)
    assert only(p, "vax").code == PlacementCode.AS_REQUESTED
    moved = only(p, "meet")
    assert (moved.start, moved.end) == (at(17, 5), at(17, 8))
    assert moved.code == PlacementCode.MOVED
    assert moved.explanation == "Dời sang 17:05 vì trùng với 'Thông báo tiêm chủng' (ưu tiên cao hơn)."
    assert p.ok and p.changed == p.placements and p.dropped == ()


def test_priority_pushes_an_undispatched_normal_item_later_but_not_a_dispatched_one(tree: ZoneTree) -> None:
    meet = notice("meet", "Họp thôn", 10 * MIN, {village(1)}, now=NOW, at=at(17))
    first = plan(tree, [meet], now=NOW)
    vax = notice("vax", "Tiêm chủng", 5 * MIN, {village(1)}, now=NOW, at=at(17, 5), priority=Priority.PRIORITY)
    second = sane(plan(tree, [vax], now=NOW, existing=first.placements), tree)
    assert only(second, "vax").start == at(17, 5)
    pushed = only(second, "meet")
    assert (pushed.start, pushed.code) == (at(17, 10), PlacementCode.PUSHED_LATER)
    assert pushed.explanation == "Lùi từ 17:00 sang 17:10 vì trùng với 'Tiêm chủng' (ưu tiên cao hơn)."
    assert second.dropped == first.placements and set(second.changed) == set(second.placements)

    # Once the normal item is on air it stays; the priority item waits for it.
    on_air = [replace(x, dispatched=True) for x in first.placements]
    third = sane(plan(tree, [vax], now=NOW, existing=on_air), tree)
    assert only(third, "meet") is on_air[0]
    assert only(third, "vax").start == at(17, 10)
    assert "(đã phát đi)" in only(third, "vax").explanation
    assert third.changed == (only(third, "vax"),)


def test_new_normal_items_do_not_displace_existing_ones(tree: ZoneTree) -> None:
    first = plan(tree, [notice("old", "Cũ", 5 * MIN, {village(1)}, now=NOW, at=at(17, 2))], now=NOW)
    second = plan(
        tree,
        [notice("new", "Mới", 5 * MIN, {village(1)}, now=NOW, at=at(17))],
        now=NOW,
        existing=first.placements,
    )
    assert only(second, "old") is first.placements[0]
    assert only(second, "new").start == at(17, 7)


def test_officer_orders_clashing_priority_items(tree: ZoneTree) -> None:
    def urgent(i: str, key: int) -> Airing:
        return notice(i, i, 2 * MIN, {village(2)}, now=NOW, at=at(17), priority=Priority.PRIORITY, order_key=key)

    p = sane(plan(tree, [urgent("b", 2), urgent("c", 3), urgent("a", 1)], now=NOW), tree)
    assert [x.airing.id for x in p.timeline(village(2))] == ["a", "b", "c"]
    assert [x.start for x in p.timeline(village(2))] == [at(17), at(17, 2), at(17, 4)]


def test_group_starts_together_at_earliest_common_free_slot(tree: ZoneTree) -> None:
    busy = notice("busy", "Loa thôn 3", 7 * MIN, {village(3)}, now=NOW, at=at(17))
    group = notice("group", "Cả cụm", 2 * MIN, {NORTH}, now=NOW, at=at(17, 1))
    p = sane(plan(tree, [busy, group], now=NOW), tree)
    g = only(p, "group")
    assert g.villages == tree.expand([NORTH])
    assert g.start == at(17, 7)
    assert g.code == PlacementCode.GROUP_ALIGNED
    assert g.explanation == (
        "Dời sang 17:07 để các thôn cùng bắt đầu một lúc: Thôn 3 bận với 'Loa thôn 3' "
        "(cùng mức ưu tiên, xếp trước) đến 17:07."
    )


def test_quiet_hours_move_normal_items_to_the_morning_but_let_emergencies_through(tree: ZoneTree) -> None:
    night = notice("night", "Lịch cắt điện", 3 * MIN, {village(4)}, now=NOW, at=at(22), valid_until=at(8, day=26))
    stale = notice("stale", "Chiếu phim", 3 * MIN, {village(4)}, now=NOW, at=at(22), valid_until=at(23))
    alert = EmergencyAlert("fire", "Cháy rừng", 2 * MIN, frozenset({village(4)}), repeats=1).airings(at(23, 15))
    p = plan(tree, [night, stale, *alert], now=NOW)
    moved = only(p, "night")
    assert (moved.start, moved.code) == (at(5, day=26), PlacementCode.QUIET_HOURS)
    assert moved.explanation == "Dời sang 05:00 ngày 26/05 vì giờ yên tĩnh 21:30–05:00 ở Thôn 4."
    assert only(p, "fire#1").start == at(23, 15)
    assert [(c.code, c.airing.id) for c in p.conflicts] == [(ErrorCode.IN_QUIET_HOURS, "stale")]
    assert quiet_violations(p.placements, tree) == []


def test_quiet_hours_per_zone(tree: ZoneTree) -> None:
    late = notice("late", "Tin tối", 3 * MIN, {village(4), village(8)}, now=NOW, at=at(21, 40))
    p = plan(tree, [late], now=NOW, quiet_hours={COMMUNE: NO_QUIET_HOURS})
    assert only(p, "late").start == at(21, 40)
    p = plan(tree, [late], now=NOW, quiet_hours={village(8): NO_QUIET_HOURS})
    assert p.conflicts[0].code == ErrorCode.IN_QUIET_HOURS


def test_emergency_cuts_what_is_on_air_and_the_cut_item_is_replayed_after_it(tree: ZoneTree) -> None:
    long_item = notice("talk", "Tuyên truyền", 10 * MIN, {NORTH}, now=NOW, at=at(17))
    short_validity = notice("market", "Chợ phiên", 5 * MIN, {village(6)}, now=NOW, at=at(17), valid_until=at(17, 9))
    first = plan(tree, [long_item, short_validity], now=NOW)
    now = at(17, 4)
    alert = EmergencyAlert(
        "flood", "Lũ quét", 2 * MIN, frozenset({village(1), village(6)}), repeats=2, gap=MIN
    ).airings(now)
    p = sane(plan(tree, alert, now=now, existing=dispatched(first, now)), tree)

    assert [x.start for x in p.for_airing("flood#1") + p.for_airing("flood#2")] == [at(17, 4), at(17, 7)]
    talk = {x.code: x for x in p.for_airing("talk")}
    assert talk[PlacementCode.AS_REQUESTED].villages == tree.expand([NORTH]) - {village(1)}  # keeps playing there
    cut = talk[PlacementCode.CUT]
    assert (cut.villages, cut.start, cut.end) == (frozenset({village(1)}), at(17), at(17, 4))
    assert cut.explanation == "Bị ngắt lúc 17:04 bởi cảnh báo khẩn 'Lũ quét'; phát lại từ đầu lúc 17:09."
    again = talk[PlacementCode.REPLAYED]
    assert (again.villages, again.start, again.end) == (frozenset({village(1)}), at(17, 9), at(17, 19))

    market = p.for_airing("market")
    assert [x.code for x in market] == [PlacementCode.CUT]
    assert "đánh dấu bỏ lỡ" in market[0].explanation
    assert [(c.code, c.airing.id) for c in p.conflicts] == [(ErrorCode.MISSED_AFTER_EMERGENCY, "market")]


def test_emergency_pushes_items_not_yet_on_air_and_queues_behind_another_emergency(tree: ZoneTree) -> None:
    later = notice("later", "Tin sau", 3 * MIN, {village(2)}, now=NOW, at=at(16, 2))
    first = plan(tree, [later], now=NOW)
    a = EmergencyAlert("a", "Bão", 3 * MIN, frozenset({village(2)}), repeats=1).airings(NOW)
    b = EmergencyAlert("b", "Lũ", 1 * MIN, frozenset({COMMUNE}), repeats=1).airings(NOW + MIN)
    p = sane(plan(tree, [*a, *b], now=NOW, existing=first.placements), tree)
    assert only(p, "a#1").start == NOW
    assert only(p, "b#1").start == NOW + 3 * MIN
    assert "ngay sau cảnh báo khẩn 'Bão'" in only(p, "b#1").explanation
    moved = only(p, "later")
    assert (moved.start, moved.code) == (NOW + 4 * MIN, PlacementCode.PUSHED_LATER)


def test_relay_yields_to_anything_and_resumes(tree: ZoneTree) -> None:
    rule = Recurrence.daily([time(6)], date(2025, 5, 26))
    relay = RelayProgramme("vov", "Thời sự VOV", "https://vov.vn/live", 30 * MIN, frozenset({COMMUNE}), rule)
    relays = relay.airings(at(0, day=26), at(0, day=27))
    item = notice("n", "Loa xã", 5 * MIN, {village(1)}, now=NOW, at=at(6, 10, day=26))
    tiny = notice("t", "Ngắn", 5 * MIN, {village(2)}, now=NOW, at=at(6, 29, 45, day=26) - 5 * MIN)
    p = sane(plan(tree, [*relays, item, tiny], now=NOW), tree)
    v1 = [(x.start, x.end, x.airing.id) for x in p.timeline(village(1))]
    rid = relays[0].id
    assert v1 == [
        (at(6, day=26), at(6, 10, day=26), rid),
        (at(6, 10, day=26), at(6, 15, day=26), "n"),
        (at(6, 15, day=26), at(6, 30, day=26), rid),
    ]
    # In village 2 the piece after the item would be 15 s long: not worth restarting the stream.
    assert [(x.start, x.end) for x in p.timeline(village(2)) if x.airing.id == rid] == [
        (at(6, day=26), at(6, 24, 45, day=26))
    ]
    full = [x for x in p.for_airing(rid) if x.code == PlacementCode.RELAY]
    assert full[0].villages == tree.villages - {village(1), village(2)}
    cut = next(x for x in p.for_airing(rid) if village(1) in x.villages)
    assert cut.code == PlacementCode.RELAY_CUT and "'Loa xã'" in cut.explanation


def test_relay_swallowed_whole_or_in_quiet_hours_is_a_conflict(tree: ZoneTree) -> None:
    rule = Recurrence.daily([time(21)], date(2025, 5, 25), date(2025, 5, 25))
    night = RelayProgramme("night", "Tiếp sóng đêm", "http://vov.vn", 60 * MIN, frozenset({village(1)}), rule)
    cover = notice("cover", "Dài", 30 * MIN, {village(1)}, now=NOW, at=at(21), valid_until=at(21, 30))
    p = sane(plan(tree, [*night.airings(NOW, at(23)), cover], now=NOW), tree)
    assert [c.code for c in p.conflicts] == [ErrorCode.RELAY_PREEMPTED]
    p = plan(tree, night.airings(NOW, at(23)), now=NOW)
    assert [(x.start, x.end) for x in p.placements] == [(at(21), at(21, 30))]  # clipped by quiet hours
    rule = Recurrence.daily([time(22)], date(2025, 5, 25), date(2025, 5, 25))
    quiet = RelayProgramme("q", "Đêm khuya", "http://vov.vn", 30 * MIN, frozenset({village(1)}), rule)
    p = plan(tree, quiet.airings(NOW, at(23)), now=NOW)
    assert p.placements == () and [c.code for c in p.conflicts] == [ErrorCode.IN_QUIET_HOURS]


def window(start: datetime, minutes: int = 30, targets: frozenset[str] | None = None) -> BulletinWindow:
    return BulletinWindow(f"bt@{start:%H%M}", targets or frozenset({NORTH}), start, start + minutes * MIN)


def queued(i: str, minutes: float, w: BulletinWindow, **kw: object) -> Airing:
    return notice(i, f"Mục {i}", timedelta(minutes=minutes), {NORTH}, now=NOW, at=w.start, window_id=w.id, **kw)  # type: ignore[arg-type]


def test_bulletin_items_play_back_to_back_in_order_with_framing(tree: ZoneTree) -> None:
    w = window(at(17))
    items = [queued("b", 3, w, order_key=2), queued("a", 4, w, order_key=1),
             queued("u", 2, w, order_key=9, priority=Priority.PRIORITY)]  # fmt: skip
    p = sane(plan(tree, items, now=NOW, windows=[w]), tree)
    line = [(x.airing.kind.value, x.airing.id, x.start - w.start) for x in p.timeline(village(1))]
    assert line == [
        ("chime_open", f"{w.id}/chime_open", timedelta(0)),
        ("heading", f"{w.id}/heading", 5 * SEC),
        ("notice", "u", 15 * SEC),  # priority items first, 2 s after the heading
        ("notice", "a", 2 * MIN + 17 * SEC),
        ("notice", "b", 6 * MIN + 19 * SEC),
        ("chime_close", f"{w.id}/chime_close", 9 * MIN + 19 * SEC),
    ]
    assert only(p, f"{w.id}/heading").airing.title == "Bản tin chiều ngày 25 tháng 5"
    assert all(x.villages == tree.expand([NORTH]) for x in p.placements)
    assert only(p, "a").explanation == "Bản tin chiều ngày 25 tháng 5: mục 2/3, phát lúc 17:02."


def test_window_too_short_reports_the_items_that_do_not_fit(tree: ZoneTree) -> None:
    w = window(at(17), minutes=10)
    items = [queued("a", 4, w, order_key=1), queued("b", 6, w, order_key=2), queued("c", 1, w, order_key=3)]
    p = sane(plan(tree, items, now=NOW, windows=[w]), tree)
    assert [(c.code, c.airing.id) for c in p.conflicts] == [(ErrorCode.WINDOW_TOO_SHORT, "b")]
    assert "không vừa" in p.conflicts[0].message_vi
    assert {x.airing.id for x in p.placements if x.airing.kind.value == "notice"} == {"a", "c"}
    assert max(x.end for x in p.placements) <= w.end


def test_window_with_nothing_queued_stays_silent_and_normal_items_flow_around_bulletins(
    tree: ZoneTree,
) -> None:
    w = window(at(17))
    assert plan(tree, [], now=NOW, windows=[w]).placements == ()
    p = sane(plan(tree, [queued("a", 4, w), notice("n", "Ngoài", MIN, {village(1)}, now=NOW, at=at(17, 1))],
                  now=NOW, windows=[w]), tree)  # fmt: skip
    assert only(p, "n").start == only(p, f"{w.id}/chime_close").end
    assert "(trong bản tin)" in only(p, "n").explanation


def test_plan_is_pure_and_stable(tree: ZoneTree) -> None:
    w = window(at(17))
    requests = [
        queued("a", 4, w),
        notice("x", "X", 3 * MIN, {COMMUNE}, now=NOW, at=at(17, 3)),
        notice("y", "Y", 3 * MIN, {village(2)}, now=NOW, at=at(17, 3), priority=Priority.PRIORITY),
        *RelayProgramme("r", "R", "http://vov.vn", 30 * MIN, frozenset({COMMUNE}),
                        Recurrence.daily([time(17)], date(2025, 5, 25))).airings(NOW, at(23)),
    ]  # fmt: skip
    snapshot = list(requests)
    first = plan(tree, requests, now=NOW, windows=[w])
    assert requests == snapshot
    assert plan(tree, list(reversed(requests)), now=NOW, windows=[w]) == first
    again = plan(tree, [], now=NOW, existing=first.placements, windows=[w])
    assert again.placements == first.placements
    assert again.changed == () and again.dropped == ()


def test_editing_a_request_replaces_it_unless_already_on_air(tree: ZoneTree) -> None:
    first = plan(tree, [notice("n", "Cũ", 3 * MIN, {village(1)}, now=NOW, at=at(17))], now=NOW)
    edited = notice("n", "Mới", 3 * MIN, {village(1)}, now=NOW, at=at(18))
    second = plan(tree, [edited], now=NOW, existing=first.placements)
    assert [x.airing.title for x in second.placements] == ["Mới"]
    assert second.dropped == first.placements
    with pytest.raises(ScheduleError) as caught:
        plan(tree, [edited], now=at(17, 1), existing=first.placements)
    assert caught.value.code == ErrorCode.ALREADY_ON_AIR


def test_pushed_out_and_in_past_are_conflicts(tree: ZoneTree) -> None:
    tight = notice("tight", "Gấp", 5 * MIN, {village(1)}, now=NOW, at=at(17), valid_until=at(17, 6))
    first = plan(tree, [tight], now=NOW)
    big = notice("big", "Ưu tiên", 10 * MIN, {village(1)}, now=NOW, at=at(16, 58), priority=Priority.PRIORITY)
    p = plan(tree, [big], now=NOW, existing=first.placements)
    assert [(c.code, c.airing.id) for c in p.conflicts] == [(ErrorCode.PUSHED_OUT, "tight")]
    assert p.dropped == first.placements and not p.ok
    old = notice("old", "Cũ", 5 * MIN, {village(1)}, now=at(8), at=at(9))
    p = plan(tree, [old], now=NOW)
    assert [c.code for c in p.conflicts] == [ErrorCode.IN_PAST]


def test_asap_after_requested_time(tree: ZoneTree) -> None:
    late = notice("late", "Trễ", 3 * MIN, {village(1)}, now=at(15), at=at(15, 30))
    p = plan(tree, [late], now=NOW)
    assert (only(p, "late").start, only(p, "late").code) == (NOW, PlacementCode.ASAP)


def test_bad_input_raises(tree: ZoneTree) -> None:
    a = notice("a", "A", MIN, {village(1)}, now=NOW)
    with pytest.raises(ScheduleError) as caught:
        plan(tree, [a, a], now=NOW)
    assert caught.value.code == ErrorCode.DUPLICATE_ID
    with pytest.raises(ScheduleError) as caught:
        plan(tree, [notice("z", "Z", MIN, {"thon-99"}, now=NOW)], now=NOW)
    assert caught.value.code == ErrorCode.UNKNOWN_ZONE
    with pytest.raises(ScheduleError) as caught:
        plan(tree, [notice("w", "W", MIN, {village(1)}, now=NOW, window_id="nope")], now=NOW)
    assert caught.value.code == ErrorCode.UNKNOWN_WINDOW


def test_relays_in_the_past(tree: ZoneTree) -> None:
    rule = Recurrence.daily([time(15, 50)], date(2025, 5, 25), date(2025, 5, 25))
    relay = RelayProgramme("r", "VOV", "http://vov.vn", 30 * MIN, frozenset({village(1)}), rule)
    (airing,) = relay.airings(at(0), at(23))
    # Requested after it began: placed whole, so the lead dispatches it late (joins the live stream).
    p = plan(tree, [airing], now=NOW)
    assert [(x.start, x.end, x.code) for x in p.placements] == [(at(15, 50), at(16, 20), PlacementCode.RELAY)]
    assert plan(tree, [], now=NOW + MIN, existing=p.placements).changed == ()
    assert [c.code for c in plan(tree, [airing], now=at(16, 30)).conflicts] == [ErrorCode.IN_PAST]
    # Once over, its pieces are history: kept as they were even if what cut them is not loaded.
    item = notice("n", "Tin", 5 * MIN, {village(1)}, now=at(15), at=at(16, 5))
    first = plan(tree, [airing, item], now=at(15))
    pieces = [x for x in first.placements if x.airing.kind.value == "relay"]
    assert len(pieces) == 2
    later = plan(tree, [], now=at(17), existing=pieces)
    assert later.placements == tuple(pieces) and later.changed == ()


def test_stale_emergency_is_in_past(tree: ZoneTree) -> None:
    (alert,) = EmergencyAlert("e", "Lũ", MIN, frozenset({village(1)}), repeats=1, validity=10 * MIN).airings(NOW)
    p = plan(tree, [alert], now=NOW + 20 * MIN)
    assert p.placements == () and [c.code for c in p.conflicts] == [ErrorCode.IN_PAST]


def test_check_request_rejects_what_can_never_air(tree: ZoneTree) -> None:
    fine = notice("a", "A", 3 * MIN, {village(1)}, now=NOW, at=at(17))
    check_request(tree, fine, now=NOW)
    night = notice("b", "B", 3 * MIN, {village(1)}, now=NOW, at=at(22), valid_until=at(23))
    stale = notice("c", "C", 3 * MIN, {village(1)}, now=at(8), at=at(9))
    nowhere = notice("d", "D", 3 * MIN, {"thon-99"}, now=NOW)
    for airing, code in (
        (night, ErrorCode.IN_QUIET_HOURS),
        (stale, ErrorCode.IN_PAST),
        (nowhere, ErrorCode.UNKNOWN_ZONE),
    ):
        with pytest.raises(ScheduleError) as caught:
            check_request(tree, airing, now=NOW)
        assert caught.value.code == code
    check_request(tree, night, now=NOW, quiet_hours={COMMUNE: NO_QUIET_HOURS})
    (alert,) = EmergencyAlert("e", "Lũ", MIN, frozenset({village(1)}), repeats=1).airings(at(23))
    check_request(tree, alert, now=NOW)
