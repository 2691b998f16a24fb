"""The period report's figures (#14), on SQLite and PostgreSQL, against the same deliveries counted by hand.

A made-up history (broadcaster/simulation/history.py: six weeks of a 6-village commune, every outcome,
late starts, missed and recalled airings, bulletin frames, devices going away) is written to the
database; the report of November, and of one village, must agree with a plain-Python count of the rows
that were written, figure by figure: items, airings, plays by outcome and reason, minutes, per village,
per device, per week, and every disconnection with its times.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from broadcaster.db import BroadcastStatus, DeliveryStatus, DeviceKind
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.period_report import ITEM_KINDS, ON_TIME_MS, PeriodReport, period_report
from broadcaster.services.reports import heard
from broadcaster.simulation.history import History, generate
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import make_services

FIRST, LAST = date(2026, 11, 1), date(2026, 11, 30)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=LOCAL_TZ)  # the month is not over: absences are cut here


@pytest.fixture
def made(tmp_path: Path, database_url: str) -> Iterator[tuple[Services, History]]:
    svc = make_services(tmp_path, database_url, FakeClock(NOW))
    history = generate(svc.db, date(2026, 10, 25), 42, villages=6, speakers=2, items_per_day=3, seed=7)
    yield svc, history
    svc.db.dispose()


def _local(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL_TZ).astimezone(UTC)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def hand_count(h: History, villages: set[str], first: date, last: date, now: datetime) -> dict[str, Any]:
    """The report's definitions (services/period_report.py, its docstring), applied row by row."""
    start, end = _local(first), _local(last + timedelta(days=1))
    until = min(end, _utc(now))
    rows = {
        b["id"]: b
        for b in h.broadcasts
        if start <= _utc(b["start_at"]) < end and b["kind"] in ITEM_KINDS
        and b["status"] is not BroadcastStatus.CANCELLED and b["zone_id"] in villages
    }  # fmt: skip
    kinds = {d["id"]: d for d in h.devices}
    speakers = {i for i, d in kinds.items() if d["kind"] is DeviceKind.SPEAKER and d["village_id"] in villages}
    per_device: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    played_rows: Counter[int] = Counter()
    week_plays: Counter[date] = Counter()
    for d in h.deliveries:
        b = rows.get(d["broadcast_id"])
        if b is None or d["device_id"] not in speakers:
            continue
        c = per_device[d["device_id"]]
        c["plays"] += 1
        status = d["status"]
        if heard(status, d.get("played_s"), b["kind"]):  # the one rule of every count (services/reports.py)
            c["played"] += 1
            said = d.get("played_s")
            c["played_ms"] += b["duration_ms"] if said is None else round(said * 1000)
            error = d["start_error_ms"]
            punctual = not b["late"] and (error is None or abs(error) <= ON_TIME_MS)
            c["on_time" if punctual else "late"] += 1
            played_rows[b["id"]] += 1
            day = _utc(b["start_at"]).astimezone(LOCAL_TZ).date()
            week_plays[day - timedelta(days=day.weekday())] += 1
        elif status is DeliveryStatus.FAILED:
            c["failed"] += 1
            reasons["failed." + d["reason"].split(":")[0]] += 1
        elif status is DeliveryStatus.EXPIRED:
            c["missed"] += 1
            reasons["missed." + d["reason"].split(":")[0]] += 1
        else:
            c["unconfirmed"] += 1
    aired = [rows[i] for i in played_rows]
    placements: dict[tuple[Any, ...], int] = {}
    for b in aired:
        key = (b["airing_id"], b["start_at"], b["announcement_id"], b["programme_id"])
        placements[key] = max(placements.get(key, 0), b["duration_ms"])
    village: dict[str, Counter[str]] = defaultdict(Counter)
    for b in rows.values():
        v = village[b["zone_id"]]
        v["airings"] += 1
        v["aired"] += b["id"] in played_rows
        v["missed_airings"] += b["status"] is BroadcastStatus.MISSED
        v["airtime_ms"] += b["duration_ms"] if b["id"] in played_rows else 0
    for device_id, c in per_device.items():
        village[kinds[device_id]["village_id"]].update(c)

    # disconnections: per device, its changes of state in order, each offline span cut to [start, until]
    spans: list[tuple[str, datetime, datetime]] = []
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in h.events:
        if kinds[e["device_id"]]["village_id"] in villages and _utc(e["at"]) < until:
            by_device[e["device_id"]].append(e)
    for device_id, events in by_device.items():
        changes = [e for i, e in enumerate(events) if i == 0 or events[i - 1]["online"] != e["online"]]
        for i, e in enumerate(changes):
            if e["online"]:
                continue
            back = _utc(changes[i + 1]["at"]) if i + 1 < len(changes) else None
            if back is not None and back <= start:
                continue
            spans.append((device_id, max(_utc(e["at"]), start), until if back is None or back > until else back))
    return {
        "items": len({(b["announcement_id"], b["programme_id"]) for b in aired}),
        "airings": len(placements),
        "airtime_ms": sum(placements.values()),
        "relay_airings": sum(1 for key in placements if key[0].startswith("relay")),
        "per_device": per_device,
        "reasons": reasons,
        "village": village,
        "week_plays": week_plays,
        "spans": sorted(spans, key=lambda s: (s[1], s[0])),
    }


def _outcomes(o: Any) -> dict[str, int]:
    names = ("plays", "played", "on_time", "late", "failed", "missed", "unconfirmed", "played_ms")
    return {n: getattr(o, n) for n in names if getattr(o, n)}


def _check(r: PeriodReport, want: dict[str, Any]) -> None:
    assert (r.items, r.airings, r.airtime_ms, r.relay_airings) == (
        want["items"], want["airings"], want["airtime_ms"], want["relay_airings"]
    )  # fmt: skip
    total: Counter[str] = Counter()
    for c in want["per_device"].values():
        total.update(c)
    assert _outcomes(r.totals) == dict(total)
    assert r.totals.reasons == dict(want["reasons"])
    assert {d.id: _outcomes(d.outcomes) for d in r.devices if d.outcomes.plays} == {
        k: dict(c) for k, c in want["per_device"].items()
    }
    got_villages = {
        v.id: {"airings": v.airings, "aired": v.aired, "missed_airings": v.missed_airings,
               "airtime_ms": v.airtime_ms, **_outcomes(v.outcomes)}
        for v in r.villages
    }  # fmt: skip
    assert got_villages == {k: {n: c[n] for n in got_villages[k]} for k, c in want["village"].items()}
    assert {w.monday: w.plays for w in r.weeks if w.plays} == dict(want["week_plays"])
    got_spans = [(d.device_id, d.start, d.end) for d in r.disconnections]
    assert [s[0] for s in got_spans] == [s[0] for s in want["spans"]]
    for (_, a0, a1), (_, b0, b1) in zip(got_spans, want["spans"], strict=True):
        assert abs((a0 - b0).total_seconds()) < 0.01 and abs((a1 - b1).total_seconds()) < 0.01
    by_device: Counter[str] = Counter(s[0] for s in want["spans"])
    assert {d.id: d.disconnections for d in r.devices if d.disconnections} == dict(by_device)


def test_the_months_figures_agree_with_a_count_by_hand(made: tuple[Services, History]) -> None:
    svc, h = made
    r = period_report(svc, FIRST, LAST)
    want = hand_count(h, set(h.villages), FIRST, LAST, NOW)
    assert r.totals.failed and r.totals.missed and r.totals.late and r.totals.unconfirmed  # every outcome is there
    assert any(v.missed_airings for v in r.villages) and any(d.disconnections for d in r.devices)
    _check(r, want)
    assert r.sentence().startswith(
        f"Từ ngày 01/11/2026 đến ngày 30/11/2026, đã thực hiện {want['items']} tin, bài với {want['airings']} lượt phát"
    )
    assert r.until == NOW.astimezone(UTC) and r.online[-1][0] == date(2026, 11, 20)  # nothing after now
    assert len(r.online) == 20 and all(0 < n <= len(r.devices) for _, n in r.online)


def test_one_village_counts_its_own_rows_and_devices(made: tuple[Services, History]) -> None:
    svc, h = made
    r = period_report(svc, FIRST, LAST, "thon-2")
    assert [v.id for v in r.villages] == ["thon-2"] and {d.village_id for d in r.devices} == {"thon-2"}
    _check(r, hand_count(h, {"thon-2"}, FIRST, LAST, NOW))


def test_commune_days_start_at_midnight_in_vietnam_not_in_utc(made: tuple[Services, History]) -> None:
    """The 06:00 bulletin's chime and items of 1 November are 23:00 UTC on 31 October: they are November's."""
    svc, h = made
    one_day = period_report(svc, date(2026, 11, 1), date(2026, 11, 1))
    _check(one_day, hand_count(h, set(h.villages), date(2026, 11, 1), date(2026, 11, 1), NOW))
    morning = [b for b in h.broadcasts if b["start_at"].astimezone(LOCAL_TZ).date() == date(2026, 11, 1)]
    assert any(b["start_at"].astimezone(UTC).date() == date(2026, 10, 31) for b in morning)
    assert one_day.weeks[0].plays == one_day.totals.played > 0


def test_a_period_that_ends_before_it_starts_or_an_unknown_zone_is_refused(made: tuple[Services, History]) -> None:
    svc, _ = made
    with pytest.raises(LoaError) as bad:
        period_report(svc, LAST, FIRST)
    assert bad.value.code == "end_before_start"
    with pytest.raises(LoaError) as unknown:
        period_report(svc, FIRST, LAST, "thon-99")
    assert unknown.value.code == "unknown_zone"


def test_villagers_feedback_is_counted_per_village_in_the_period(made: tuple[Services, History]) -> None:
    """#16's feedback in the report's village table: what came in during the period, by village."""
    from broadcaster.db import Feedback

    svc, history = made
    village = sorted({d["village_id"] for d in history.devices})[0]
    said = [datetime(2026, 11, 3, 8, tzinfo=LOCAL_TZ), datetime(2026, 11, 19, 23, 30, tzinfo=LOCAL_TZ),
            datetime(2026, 11, 30, 23, 59, tzinfo=LOCAL_TZ), datetime(2026, 10, 31, 23, 59, tzinfo=LOCAL_TZ)]
    with svc.db.session() as s:
        for at in said:  # the last one is October's, in Vietnam (16:59 UTC): not in November's report
            s.add(Feedback(village_id=village, category="unclear", created_at=at.astimezone(UTC)))
    report = period_report(svc, FIRST, LAST)
    counts = {v.id: v.extra["feedback"] for v in report.villages}
    assert counts[village] == 3 and sum(counts.values()) == 3
