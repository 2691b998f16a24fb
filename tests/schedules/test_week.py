"""A simulated week in a commune of ten villages, planned the way the daemon will do it:
each morning the officer's requests are planned against what is already placed, the clock
moves on, what has started is marked dispatched, and two emergencies break in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, time, timedelta

from schedules import (
    FRAMING_KINDS,
    Airing,
    AiringKind,
    BulletinProgramme,
    BulletinWindow,
    Conflict,
    EmergencyAlert,
    ErrorCode,
    FakeClock,
    NoticeSeries,
    Placement,
    PlacementCode,
    Priority,
    Recurrence,
    RelayProgramme,
    ZoneTree,
    notice,
    plan,
)
from tests.schedules.helpers import (
    COMMUNE,
    NORTH,
    SOUTH,
    local,
    overlaps_in_villages,
    quiet_violations,
    village,
)

MIN = timedelta(minutes=1)
MONDAY = date(2025, 5, 26)
DAYS = [MONDAY + timedelta(days=i) for i in range(7)]


def on(day: date, h: int, m: int = 0) -> datetime:
    return local(day.year, day.month, day.day, h, m)


class Week:
    def __init__(self, tree: ZoneTree) -> None:
        self.tree = tree
        self.clock = FakeClock(on(MONDAY, 4, 30))
        self.placements: tuple[Placement, ...] = ()
        self.requested: dict[str, Airing] = {}
        self.conflicts: list[Conflict] = []
        self.windows: dict[str, BulletinWindow] = {}
        self.emergency_plans: list[tuple[datetime, list[Airing], tuple[Placement, ...], tuple[Placement, ...]]] = []

    def loaded(self) -> list[Placement]:
        """What the database would hand back: whatever has started has been dispatched."""
        now = self.clock.now()
        return [replace(p, dispatched=True) if p.start <= now and not p.dispatched else p for p in self.placements]

    def submit(self, requests: list[Airing], windows: list[BulletinWindow]) -> None:
        for a in requests:
            self.requested[a.id] = a
        for w in windows:
            self.windows[w.id] = w
        result = plan(
            self.tree,
            requests,
            now=self.clock.now(),
            existing=self.loaded(),
            windows=list(self.windows.values()),
        )
        self.conflicts += result.conflicts
        self.placements = result.placements

    def run_until(self, when: datetime) -> None:
        assert when >= self.clock.now()
        self.clock.set(when)


def simulate(tree: ZoneTree) -> Week:
    week = Week(tree)
    bulletins = [
        BulletinProgramme(f"bt-{zone}", frozenset({zone}), Recurrence.daily([time(6, 15), time(17)], MONDAY))
        for zone in (NORTH, SOUTH)
    ]
    relay = RelayProgramme(
        "vov1", "Thời sự VOV1", "https://vov.vn/live/vov1", 30 * MIN, frozenset({COMMUNE}),
        Recurrence.daily([time(6)], MONDAY),
    )  # fmt: skip
    series = NoticeSeries(
        "tiem-chung", "Tiêm chủng mở rộng", 2 * MIN, frozenset({village(2)}),
        Recurrence.for_days([time(6), time(17)], MONDAY + timedelta(days=1), 3),
    )  # fmt: skip
    alerts = {
        DAYS[2]: EmergencyAlert("lu", "Cảnh báo lũ quét", MIN, frozenset({NORTH}), repeats=2, gap=MIN),
        DAYS[5]: EmergencyAlert("bao", "Bão số 2", 3 * MIN, frozenset({COMMUNE}), repeats=1),
    }
    alert_times = {DAYS[2]: on(DAYS[2], 6, 20), DAYS[5]: on(DAYS[5], 17, 5)}
    for n, day in enumerate(DAYS):
        week.run_until(on(day, 5))
        now = week.clock.now()
        start, end = on(day, 0), on(day + timedelta(days=1), 0)
        windows = [w for b in bulletins for w in b.windows(start, end)]
        requests: list[Airing] = []
        for w in windows:
            zone = next(iter(w.targets))
            for k in range(3):
                requests.append(
                    notice(
                        f"{w.id}/tin-{k}", f"Tin {k + 1} {zone}", 3 * MIN, w.targets, now=now, at=w.start,
                        window_id=w.id, order_key=k,
                    )
                )  # fmt: skip
        d = f"{day:%m%d}"
        requests += [
            notice(f"asap-{d}", "Lịch cắt nước", 2 * MIN, {village(n % 10 + 1)}, now=now),
            notice(f"loa-{d}", "Thu thuế đất", 3 * MIN, {village((n + 3) % 10 + 1)}, now=now, at=on(day, 9)),
            notice(f"cum-{d}", "Họp cụm", 2 * MIN, {NORTH}, now=now, at=on(day, 6, 20)),
            notice(
                f"xa-{d}", "Diễn tập phòng cháy", 2 * MIN, {COMMUNE}, now=now, at=on(day, 17, 10),
                priority=Priority.PRIORITY,
            ),
            notice(
                f"dem-{d}", "Lịch cúp điện", 15 * MIN, {village(7)}, now=now, at=on(day, 21, 20),
                valid_until=on(day + timedelta(days=1), 8),
            ),
        ]  # fmt: skip
        requests += series.airings(start, end) + relay.airings(start, end)
        week.submit(requests, windows)
        if day in alerts:
            week.run_until(alert_times[day])
            before = tuple(week.loaded())
            airings = alerts[day].airings(week.clock.now())
            week.submit(airings, [])
            week.emergency_plans.append((week.clock.now(), airings, before, week.placements))
    week.run_until(on(DAYS[-1] + timedelta(days=1), 9))
    return week


def test_simulated_week(tree: ZoneTree) -> None:
    week = simulate(tree)
    final = week.placements

    assert overlaps_in_villages(final) == []
    assert quiet_violations(final, tree) == []

    # Only the expected kinds of trouble: relays drowned by bulletins and missed cut items.
    assert {c.code for c in week.conflicts} <= {ErrorCode.RELAY_PREEMPTED, ErrorCode.MISSED_AFTER_EMERGENCY}

    # Every requested airing (except relays, which are cut rather than placed) airs exactly once in
    # every village it targets, inside its validity or its bulletin window, unless reported missed.
    missed = {(c.airing.id, v) for c in week.conflicts for v in c.villages}
    complete: dict[tuple[str, str], int] = defaultdict(int)
    for p in final:
        a = p.airing
        assert p.start >= a.earliest
        if a.window_id is not None:
            w = week.windows[a.window_id]
            assert w.start <= p.start and p.end <= w.end
        else:
            assert p.end <= a.valid_until
        if p.code != PlacementCode.CUT:
            assert p.end - p.start == a.duration or a.kind is AiringKind.RELAY
            for v in p.villages:
                complete[(a.id, v)] += 1
    for a in week.requested.values():
        if a.kind is AiringKind.RELAY:
            continue
        villages = tree.expand(week.windows[a.window_id].targets if a.window_id else a.targets)
        for v in villages:
            assert complete[(a.id, v)] + ((a.id, v) in missed) == 1, (a.id, v)
    relay_ids = {a.id for a in week.requested.values() if a.kind is AiringKind.RELAY}
    assert all(count == 1 for key, count in complete.items() if key[0] in week.requested and key[0] not in relay_ids)

    # Each bulletin plays framing and items in the queued order.
    for w in week.windows.values():
        for v in tree.expand(w.targets):
            seq = [p for p in final if p.airing.window_id == w.id and v in p.villages and p.code != PlacementCode.CUT]
            seq.sort(key=lambda p: p.start)
            kinds = [p.airing.kind for p in seq]
            assert kinds[0] is AiringKind.CHIME_OPEN and kinds[1] is AiringKind.HEADING
            assert kinds[-1] is AiringKind.CHIME_CLOSE
            assert all(k not in FRAMING_KINDS for k in kinds[2:-1])

    # The relay gives way to the morning bulletin and the recurring notice, and is heard otherwise.
    relay_pieces = [p for p in final if p.airing.kind is AiringKind.RELAY]
    for day in DAYS:
        heard = [p for p in relay_pieces if village(5) in p.villages and p.start == on(day, 6)]
        assert len(heard) == 1 and heard[0].end == on(day, 6, 15)  # then the bulletin cuts in
        assert heard[0].code == PlacementCode.RELAY_CUT
    tue = on(DAYS[1], 6)
    assert [p.airing.id for p in final if village(2) in p.villages and p.start == tue] == [
        "tiem-chung@20250526T230000Z"
    ]

    # Night notices are moved out of the quiet hours, to 05:00 next morning.
    assert all(p.start == on(DAYS[i] + timedelta(days=1), 5) for i in range(7) for p in final
               if p.airing.id == f"dem-{DAYS[i]:%m%d}")  # fmt: skip

    # The emergencies: they start at once, pre-empt what was on air, and the cut items follow the rule.
    assert len(week.emergency_plans) == 2
    for now, airings, before, after in week.emergency_plans:
        first = next(p for p in after if p.airing.id == airings[0].id)
        assert first.start == now and first.code == PlacementCode.EMERGENCY
        on_air = [
            p for p in before
            if p.start < now < p.end and p.villages & first.villages and p.airing.kind is not AiringKind.RELAY
        ]  # fmt: skip
        assert on_air, "each emergency was chosen to interrupt something"
        for p in on_air:
            cut = [x for x in after if x.airing.id == p.airing.id and x.code == PlacementCode.CUT]
            assert cut and all(x.end == now for x in cut)
            replayed = [x for x in after if x.airing.id == p.airing.id and x.code == PlacementCode.REPLAYED]
            missed_ids = {c.airing.id for c in week.conflicts if c.code == ErrorCode.MISSED_AFTER_EMERGENCY}
            if replayed:
                assert all(x.start >= first.end for x in replayed)
                assert all("phát lại từ đầu lúc" in x.explanation for x in cut)
            else:
                assert p.airing.id in missed_ids
                assert all("bỏ lỡ" in x.explanation for x in cut)
        # Nothing else sounds in the emergency's villages while it plays.
        for p in after:
            if p.airing.priority is not Priority.EMERGENCY and p.villages & first.villages:
                assert p.end <= first.start or p.start >= first.end
