"""The period report (#14): what was broadcast in a period and a zone, and how the speakers did, in the
figures a commune sends to the district every month ("thực hiện 22 tin, bài với 41 lượt phát").

Every figure is a SQL aggregate (SQLAlchemy Core, GROUP BY) that runs the same on SQLite and PostgreSQL;
Python only adds the grouped rows up and names them. tests/broadcaster/services/test_period_report.py
counts the same deliveries by hand on both databases, and bench/reports.py times a year of a
50-village commune.

What is counted (the words of the tables):
- an *item* (tin, bài) is an announcement or a programme (a relay) that played on at least one speaker;
- an *airing* (lượt phát) is one placement of an item, the rows of one `airing_id` and `start_at`
  (the villages of a group start together), counted when it played on at least one speaker; per
  village, one broadcast row of that village;
- a *play* (lượt phát trên loa) is one speaker's delivery of an airing, by its final state: DONE
  played; FAILED failed (a download error, cut by a more urgent item, refused...); EXPIRED missed
  (never started in time); anything else has no outcome yet (unconfirmed). A played one is *on time*
  when its broadcast was not dispatched late and the speaker started within ON_TIME_MS, else *late*;
  the on-time rate is on-time plays over all plays attempted;
- *minutes on air* are the durations of what played: per device its played deliveries, per village its
  broadcast rows that played, for the commune its airings that played;
- a broadcast row that never went out (its validity passed) is a *missed airing* of its village.
Cancelled (recalled) airings are the officer's decision, not an outcome: they are left out. LED boards
show rather than play: they count in no play, but their disconnections are listed.

Periods are commune days (Asia/Ho_Chi_Minh, both ends included), stored instants are UTC, and the clock
is the services' (`svc.clock`), so "now" in a report of the current month is the tests' clock too.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Float,
    Integer,
    MetaData,
    Select,
    Table,
    and_,
    case,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from broadcaster.db import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
    DeviceStatusEvent,
    Feedback,
    Zone,
    ZoneKind,
    villages_of,
)
from broadcaster.errors import LoaError
from broadcaster.messages import reason_label
from broadcaster.services import Services
from broadcaster.services.reports import STREAM_KINDS
from schedules.clock import LOCAL_TZ, to_local

ITEM_KINDS = ("notice", "emergency", "relay", "live")  # what an officer put on air; a bulletin's frame is not
ON_TIME_MS = 1000.0  # a speaker that started more than a second off its time started late
DAY_S = 86_400

_B = cast(Table, Broadcast.__table__)
_D = cast(Table, Delivery.__table__)
_V = cast(Table, Device.__table__)
_E = cast(Table, DeviceStatusEvent.__table__)
# Whether a speaker's delivery was heard: services/reports.py `heard`, the one rule of every count an officer
# reads (played to its end, or a stream that relayed some seconds however it ended).
HEARD: ColumnElement[bool] = or_(
    and_(_D.c.status == DeliveryStatus.DONE, or_(_D.c.played_s.is_(None), _D.c.played_s > 0)),
    and_(_B.c.kind.in_(STREAM_KINDS), _D.c.played_s > 0),
)
# How long one speaker's play was on air: the seconds its final ack says were heard (`played_s`, a relay's
# seconds relayed) where the delivery has them, else the planned length.
PLAYED_MS: ColumnElement[Any] = func.coalesce(_D.c.played_s * 1000, _B.c.duration_ms)


# ---------------------------------------------------------------- time in SQL, the same on both databases


class epoch_s(FunctionElement[float]):
    """Seconds since 1970 of a stored (naive UTC) instant: the one date function both databases lack
    under one name. SQLite: from the Julian day; PostgreSQL: EXTRACT(EPOCH ...)."""

    type = Float()
    inherit_cache = True


@compiles(epoch_s, "sqlite")
def _epoch_sqlite(element: epoch_s, compiler: SQLCompiler, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_s, "postgresql")
def _epoch_postgresql(element: epoch_s, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


class whole_days(FunctionElement[int]):
    """floor(x / 86400) of a non-negative number of seconds, as an integer: SQLite has no FLOOR unless
    built with its math functions, and PostgreSQL's CAST rounds instead of truncating."""

    type = Integer()
    inherit_cache = True


@compiles(whole_days, "sqlite")
def _days_sqlite(element: whole_days, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) / 86400.0 AS INTEGER)"


@compiles(whole_days, "postgresql")
def _days_postgresql(element: whole_days, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR(({compiler.process(element.clauses, **kw)}) / 86400.0) AS INTEGER)"


def _offset_s(start: datetime, end: datetime) -> int:
    """The commune's offset from UTC over the period. Vietnam has kept UTC+7 without summer time since
    1975, so one number serves the whole period; a zone that changed within it is refused rather than
    counted an hour off."""
    first, last = start.astimezone(LOCAL_TZ).utcoffset(), end.astimezone(LOCAL_TZ).utcoffset()
    assert first is not None and first == last, "the commune's UTC offset changed within the period"
    return int(first.total_seconds())


def local_day_number(column: ColumnElement[Any], offset_s: int) -> ColumnElement[int]:
    """The commune day of a stored instant, as days since 1970-01-01 (local)."""
    return whole_days(epoch_s(column) + offset_s)


# ---------------------------------------------------------------- what a report holds


@dataclass
class Outcomes:
    """The plays of some speakers: a device, a village, the period."""

    plays: int = 0  # deliveries attempted
    played: int = 0
    on_time: int = 0
    late: int = 0
    failed: int = 0
    missed: int = 0  # EXPIRED: never started in time
    unconfirmed: int = 0
    played_ms: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # "failed.download_failed" -> plays

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.plays if self.plays else None

    @property
    def minutes(self) -> float:
        return self.played_ms / 60_000

    def add(self, other: Outcomes) -> None:
        for name in ("plays", "played", "on_time", "late", "failed", "missed", "unconfirmed", "played_ms"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, n in other.reasons.items():
            self.reasons[key] = self.reasons.get(key, 0) + n


@dataclass
class VillageRow:
    id: str
    name: str
    speakers: int = 0
    airings: int = 0  # broadcast rows of the village in the period (not cancelled)
    aired: int = 0  # of which played on at least one speaker
    missed_airings: int = 0  # never went out: their validity passed
    airtime_ms: int = 0
    outcomes: Outcomes = field(default_factory=Outcomes)
    disconnections: int = 0
    offline_s: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)  # VILLAGE_COUNTS (villagers' feedback, ...)


@dataclass
class DeviceRow:
    id: str
    name: str
    kind: str
    village_id: str
    online_now: bool
    outcomes: Outcomes = field(default_factory=Outcomes)
    disconnections: int = 0
    offline_s: float = 0.0
    longest_offline_s: float = 0.0


@dataclass
class Disconnection:
    device_id: str
    village_id: str
    start: datetime  # within the period (an absence that began before it is cut at its start)
    end: datetime  # the same: cut at the period's end, or now
    ongoing: bool  # not back by the end of the period

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass
class Week:
    monday: date
    plays: int = 0
    airings: int = 0
    airtime_ms: int = 0


@dataclass
class PeriodReport:
    commune: str
    zone_id: str
    zone_name: str
    first_day: date
    last_day: date
    start: datetime  # aware UTC, included
    end: datetime  # aware UTC, excluded
    until: datetime  # min(end, now): what has happened so far
    items: int = 0
    airings: int = 0
    relay_airings: int = 0
    airtime_ms: int = 0
    totals: Outcomes = field(default_factory=Outcomes)
    villages: list[VillageRow] = field(default_factory=list)
    devices: list[DeviceRow] = field(default_factory=list)
    disconnections: list[Disconnection] = field(default_factory=list)
    weeks: list[Week] = field(default_factory=list)
    online: list[tuple[date, float]] = field(default_factory=list)  # devices online, averaged over the day
    extra_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> lang -> column heading

    @property
    def minutes(self) -> float:
        return self.airtime_ms / 60_000

    def reason_rows(self, lang: str = "vi") -> list[tuple[str, str, int]]:
        """(outcome, words, plays) for every reason a play failed or was missed, most first."""
        rows = []
        for key, n in self.totals.reasons.items():
            outcome, _, code = key.partition(".")
            rows.append((outcome, reason_label(code, lang), n))
        return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))

    def sentence(self, lang: str = "vi") -> str:
        """The period in one sentence, as a commune's report to the district words it."""
        first, last = f"{self.first_day:%d/%m/%Y}", f"{self.last_day:%d/%m/%Y}"
        rate = self.totals.on_time_rate
        minutes = round(self.minutes)
        if lang == "en":
            text = (
                f"From {first} to {last}, {self.items} items were broadcast in {self.airings} airings "
                f"({self.totals.played} speaker plays, {minutes} minutes on air)"
            )
            return text + (f"; {rate:.0%} of plays on time." if rate is not None else ".")
        text = (
            f"Từ ngày {first} đến ngày {last}, đã thực hiện {self.items} tin, bài với {self.airings} lượt phát "
            f"({self.totals.played} lượt phát trên loa, thời lượng {minutes} phút)"
        )
        return text + (f"; tỷ lệ phát đúng giờ {_percent_vi(rate)}." if rate is not None else ".")


def _percent_vi(rate: float) -> str:
    return f"{rate * 100:.1f}".replace(".", ",") + "%"


# ---------------------------------------------------------------- the hook for other counts per village

VillageCounter = Callable[[Connection, datetime, datetime, list[str]], dict[str, int]]


@dataclass(frozen=True)
class VillageCount:
    """A column more in the per-village table: `count(conn, start, end, villages)` -> village -> n, in SQL
    like the rest (the villagers' feedback, #16); the desk, CSV and XLSX show it under `labels[lang]`."""

    key: str
    labels: dict[str, str]
    count: VillageCounter


def _feedback(conn: Connection, start: datetime, end: datetime, villages: list[str]) -> dict[str, int]:
    """What villagers said from a QR code's form in the period (services/feedback.py), per village."""
    fb = cast(Table, Feedback.__table__)
    rows = conn.execute(
        select(fb.c.village_id, func.count())
        .where(fb.c.created_at >= start, fb.c.created_at < end, fb.c.village_id.in_(villages))
        .group_by(fb.c.village_id)
    )
    return {str(v): int(n) for v, n in rows}


# The counts beside the plays in the per-village table; shown with `labels[lang]` as the heading.
VILLAGE_COUNTS: list[VillageCount] = [
    VillageCount("feedback", {"vi": "Ý kiến người dân", "en": "Villagers' feedback"}, _feedback),
]


# ---------------------------------------------------------------- the period


def period(first: date, last: date) -> tuple[datetime, datetime]:
    """Commune days `first`..`last`, both included, as [start, end) in UTC."""
    if last < first:
        raise LoaError("end_before_start.range", {})
    start = datetime.combine(first, time(0), LOCAL_TZ).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), LOCAL_TZ).astimezone(UTC)
    return start, end


def period_report(svc: Services, first: date, last: date, zone: str = "all") -> PeriodReport:
    """The report of commune days `first`..`last` (both included) in `zone` (the commune, a group or a
    village). An unknown zone is refused (`unknown_zone`)."""
    start, end = period(first, last)
    now = svc.clock.now()
    until = min(end, max(start, now))
    with svc.db.session() as session:
        z = session.get(Zone, zone)
        if z is None:
            raise LoaError("unknown_zone", {"zone": zone, "known": _known_zones(session)}, status=404)
        village_ids = villages_of(session, z)
        names = {i: n for i, n in session.execute(select(Zone.id, Zone.name).where(Zone.kind == ZoneKind.VILLAGE))}
        conn = session.connection()
        out = PeriodReport(
            commune=svc.config.general.commune,
            zone_id=z.id,
            zone_name=z.name,
            first_day=first,
            last_day=last,
            start=start,
            end=end,
            until=until,
        )
        _figures(conn, out, village_ids, names, whole_commune=z.kind is ZoneKind.COMMUNE)
    return out


def _known_zones(session: Any) -> str:
    return ", ".join(session.scalars(select(Zone.id).order_by(Zone.id)))


def _figures(
    conn: Connection, out: PeriodReport, village_ids: list[str], names: dict[str, str], whole_commune: bool
) -> None:
    start, end, offset = out.start, out.end, _offset_s(out.start, out.end)
    in_zone: ColumnElement[bool] = true() if whole_commune else _B.c.zone_id.in_(village_ids)
    in_period = and_(
        _B.c.start_at >= start,
        _B.c.start_at < end,
        _B.c.kind.in_(ITEM_KINDS),
        _B.c.status != BroadcastStatus.CANCELLED,
        in_zone,
    )
    speaker = _V.c.kind == DeviceKind.SPEAKER
    device_in_zone: ColumnElement[bool] = true() if whole_commune else _V.c.village_id.in_(village_ids)

    devices = _devices(conn, device_in_zone)
    villages = {v: VillageRow(v, names.get(v, v)) for v in village_ids}
    for d in devices.values():
        if d.kind == DeviceKind.SPEAKER.value and d.village_id in villages:
            villages[d.village_id].speakers += 1

    # 1. every speaker's plays by device, outcome and reason (villages and the commune add them up)
    done = HEARD
    on_time = and_(
        done,
        _B.c.late.is_(false()),
        or_(_D.c.start_error_ms.is_(None), func.abs(_D.c.start_error_ms) <= ON_TIME_MS),
    )
    on_time_flag = case((on_time, 1), else_=0)
    why = case((_D.c.status.in_([DeliveryStatus.FAILED, DeliveryStatus.EXPIRED]), _D.c.reason), else_="")
    speaker_plays = _D.join(_B, _D.c.broadcast_id == _B.c.id).join(_V, _D.c.device_id == _V.c.id)
    heard_flag = case((HEARD, 1), else_=0)
    for device_id, status, reason, was_heard, punctual, n, ms in conn.execute(
        select(_D.c.device_id, _D.c.status, why, heard_flag, on_time_flag, func.count(),
               func.coalesce(func.sum(PLAYED_MS), 0))
        .select_from(speaker_plays)
        .where(in_period, speaker)
        .group_by(_D.c.device_id, _D.c.status, why, heard_flag, on_time_flag)
    ):  # fmt: skip
        counted = _outcomes(DeliveryStatus(status), reason, bool(was_heard), bool(punctual), int(n), round(ms))
        out.totals.add(counted)
        if device_id in devices:
            devices[device_id].outcomes.add(counted)
            if devices[device_id].village_id in villages:
                villages[devices[device_id].village_id].outcomes.add(counted)

    # The broadcast rows that played on at least one speaker, and on how many: one pass over the
    # deliveries into a temporary table that the village, airing, item and day figures below join
    # (as a subquery each of them scanned the deliveries again).
    played = Table(
        "loa_report_played",
        MetaData(),
        Column("broadcast_id", Integer, primary_key=True),
        Column("speakers", Integer, nullable=False),
        prefixes=["TEMPORARY"],
    )
    played.create(conn)
    try:
        conn.execute(
            insert(played).from_select(
                ["broadcast_id", "speakers"],
                select(_D.c.broadcast_id, func.count())
                .select_from(speaker_plays)
                .where(in_period, speaker, done)
                .group_by(_D.c.broadcast_id),
            )
        )
        by_day = _from_played(conn, out, villages, in_period, played, offset)
    finally:
        played.drop(conn)
    out.weeks = _weeks(out.first_day, out.last_day, by_day)

    # 5. disconnections, from the status history
    _disconnections(conn, out, devices, device_in_zone)
    for d in devices.values():
        if d.village_id in villages:
            villages[d.village_id].disconnections += d.disconnections
            villages[d.village_id].offline_s += d.offline_s
    out.online = _online_per_day(out, devices)

    for extra in VILLAGE_COUNTS:
        out.extra_labels[extra.key] = extra.labels
        counted_extra = extra.count(conn, start, end, village_ids)
        for v in villages.values():
            v.extra[extra.key] = counted_extra.get(v.id, 0)

    out.villages = sorted(villages.values(), key=lambda v: _natural(v.id))
    out.devices = sorted(devices.values(), key=lambda d: (_natural(d.village_id), _natural(d.id)))


def _from_played(
    conn: Connection,
    out: PeriodReport,
    villages: dict[str, VillageRow],
    in_period: ColumnElement[bool],
    played: Table,
    offset: int,
) -> dict[int, list[int]]:
    """The figures of broadcast rows and airings, from the rows that played (`played`). Returns the
    commune days' [speaker plays, airings, airtime ms]."""
    # per village, its broadcast rows: how many, how many played, missed, their minutes
    for zone_id, rows, aired, missed, ms in conn.execute(
        select(
            _B.c.zone_id,
            func.count(),
            func.count(played.c.broadcast_id),
            func.coalesce(func.sum(case((_B.c.status == BroadcastStatus.MISSED, 1), else_=0)), 0),
            func.coalesce(func.sum(case((played.c.broadcast_id.is_not(None), _B.c.duration_ms), else_=0)), 0),
        )
        .select_from(_B.outerjoin(played, played.c.broadcast_id == _B.c.id))
        .where(in_period)
        .group_by(_B.c.zone_id)
    ):
        if zone_id in villages:
            v = villages[zone_id]
            v.airings, v.aired, v.missed_airings, v.airtime_ms = int(rows), int(aired), int(missed), int(ms)

    # the commune's airings (distinct placements that played) per commune day, and its items
    placements = (
        select(
            func.max(_B.c.duration_ms).label("duration_ms"),
            func.max(case((_B.c.kind == "relay", 1), else_=0)).label("relay"),
            func.sum(played.c.speakers).label("plays"),
            func.min(local_day_number(_B.c.start_at, offset)).label("day"),
        )
        .select_from(_B.join(played, played.c.broadcast_id == _B.c.id))
        .where(in_period)
        .group_by(_B.c.airing_id, _B.c.start_at, _B.c.announcement_id, _B.c.programme_id)
        .subquery()
    )
    by_day: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # day -> plays, airings, airtime
    for day, n, ms, relays, plays in conn.execute(
        select(
            placements.c.day,
            func.count(),
            func.coalesce(func.sum(placements.c.duration_ms), 0),
            func.coalesce(func.sum(placements.c.relay), 0),
            func.coalesce(func.sum(placements.c.plays), 0),
        ).group_by(placements.c.day)
    ):
        out.airings += int(n)
        out.airtime_ms += int(ms)
        out.relay_airings += int(relays)
        by_day[int(day)] = [int(plays), int(n), int(ms)]
    items = (
        select(_B.c.announcement_id, _B.c.programme_id)
        .select_from(_B.join(played, played.c.broadcast_id == _B.c.id))
        .where(in_period)
        .distinct()
        .subquery()
    )
    out.items = int(conn.execute(select(func.count()).select_from(items)).scalar_one())
    return by_day


def _natural(text: str) -> tuple[Any, ...]:
    """thon-2 before thon-10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _outcomes(status: DeliveryStatus, reason: str, heard: bool, punctual: bool, n: int, ms: int) -> Outcomes:
    o = Outcomes(plays=n)
    if not heard and status is DeliveryStatus.DONE:  # done, but the device says not a second came out
        o.failed = n
        o.reasons["failed.nothing_played"] = n
    elif heard:
        o.played, o.played_ms = n, ms
        if punctual:
            o.on_time = n
        else:
            o.late = n
    elif status is DeliveryStatus.FAILED:
        o.failed = n
        o.reasons[f"failed.{_reason_code(reason, 'failed')}"] = n
    elif status is DeliveryStatus.EXPIRED:
        o.missed = n
        o.reasons[f"missed.{_reason_code(reason, 'expired')}"] = n
    else:
        o.unconfirmed = n
    return o


def _reason_code(reason: str | None, default: str) -> str:
    """'download_failed: HTTP 404' -> 'download_failed'; 'rejected: bad signature' -> 'rejected'."""
    code = (reason or "").split(":", 1)[0].strip()
    return code or default


def _devices(conn: Connection, device_in_zone: ColumnElement[bool]) -> dict[str, DeviceRow]:
    rows = conn.execute(
        select(_V.c.id, _V.c.name, _V.c.kind, _V.c.village_id, _V.c.online).where(device_in_zone).order_by(_V.c.id)
    )
    return {i: DeviceRow(i, name or i, DeviceKind(kind).value, v, bool(on)) for i, name, kind, v, on in rows}


def _weeks(first: date, last: date, by_day: dict[int, list[int]]) -> list[Week]:
    monday = first - timedelta(days=first.weekday())
    weeks: list[Week] = []
    while monday <= last:
        weeks.append(Week(monday))
        monday += timedelta(days=7)
    epoch = date(1970, 1, 1)
    for number, (n_plays, n_airings, ms) in by_day.items():
        day = epoch + timedelta(days=number)
        w = weeks[(day - weeks[0].monday).days // 7]
        w.plays += n_plays
        w.airings += n_airings
        w.airtime_ms += ms
    return weeks


def _offline_spans(until: datetime, device_in_zone: ColumnElement[bool]) -> Select[Any]:
    """Each absence of a device that had begun before `until`: (device, went offline, came back or None).
    Repeated reports of the same state are dropped first (LAG), so an absence is counted once."""
    ordered = (
        select(
            _E.c.device_id,
            _E.c.at,
            _E.c.online,
            func.lag(_E.c.online).over(partition_by=_E.c.device_id, order_by=(_E.c.at, _E.c.id)).label("before"),
        )
        .select_from(_E.join(_V, _E.c.device_id == _V.c.id))
        .where(_E.c.at < until, device_in_zone)
        .subquery()
    )
    changes = (
        select(
            ordered.c.device_id,
            ordered.c.at,
            ordered.c.online,
            func.lead(ordered.c.at, type_=_E.c.at.type)
            .over(partition_by=ordered.c.device_id, order_by=ordered.c.at)
            .label("back"),
        )
        .where(or_(ordered.c.before.is_(None), ordered.c.before != ordered.c.online))
        .subquery()
    )
    return select(changes.c.device_id, changes.c.at, changes.c.back).where(changes.c.online.is_(false()))


def _disconnections(
    conn: Connection, out: PeriodReport, devices: dict[str, DeviceRow], device_in_zone: ColumnElement[bool]
) -> None:
    """Every absence that overlaps the period, cut to it (and to now); per device their number, total and
    longest, computed in SQL over the same spans."""
    if out.until <= out.start:
        return
    spans_sq = _offline_spans(out.until, device_in_zone).subquery()
    start_s, until_s = out.start.timestamp(), out.until.timestamp()
    overlapping = or_(spans_sq.c.back.is_(None), spans_sq.c.back > out.start)
    began = case((spans_sq.c.at < out.start, literal(start_s)), else_=epoch_s(spans_sq.c.at))
    ended = case(
        (or_(spans_sq.c.back.is_(None), spans_sq.c.back > out.until), literal(until_s)), else_=epoch_s(spans_sq.c.back)
    )
    seconds = ended - began
    for device_id, n, total, longest in conn.execute(
        select(spans_sq.c.device_id, func.count(), func.sum(seconds), func.max(seconds))
        .where(overlapping)
        .group_by(spans_sq.c.device_id)
    ):
        if device_id in devices:
            d = devices[device_id]
            d.disconnections, d.offline_s, d.longest_offline_s = int(n), float(total or 0), float(longest or 0)
    for device_id, at, back in conn.execute(
        select(spans_sq.c.device_id, spans_sq.c.at, spans_sq.c.back)
        .where(overlapping)
        .order_by(spans_sq.c.at, spans_sq.c.device_id)
    ):
        if device_id not in devices:
            continue
        ongoing = back is None or back > out.until
        out.disconnections.append(
            Disconnection(
                device_id,
                devices[device_id].village_id,
                max(_aware(at), out.start),
                out.until if ongoing else _aware(back),
                back is None,
            )
        )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _online_per_day(out: PeriodReport, devices: dict[str, DeviceRow]) -> list[tuple[date, float]]:
    """Devices online on each commune day so far, averaged over the day: every device of the zone less
    the share of the day it was away. (From the spans above; before a device's first report its state
    is not known and it is counted online.)"""
    away: dict[date, float] = defaultdict(float)
    for d in out.disconnections:
        day = to_local(d.start).date()
        while True:
            begin = datetime.combine(day, time(0), LOCAL_TZ)
            finish = begin + timedelta(days=1)
            away[day] += max(0.0, (min(d.end, finish) - max(d.start, begin)).total_seconds())
            if finish >= d.end:
                break
            day += timedelta(days=1)
    days: list[tuple[date, float]] = []
    day = out.first_day
    while day <= out.last_day:
        begin = datetime.combine(day, time(0), LOCAL_TZ)
        if begin >= out.until:
            break
        length = (min(begin + timedelta(days=1), out.until) - begin).total_seconds()
        days.append((day, len(devices) - away.get(day, 0.0) / length))
        day += timedelta(days=1)
    return days
