"""Time and priority for loa: what goes on air, where, and when. No I/O in here.

This package knows nothing about loudspeakers, MQTT, audio files or the database; the
broadcaster wires it up. Instants are aware UTC datetimes (naive ones are read as UTC, as the
database hands them back); days and times of day that people type are Asia/Ho_Chi_Minh.

Public API
----------
Kinds of airing (`schedules.model`):
    Priority                      BACKGROUND < NORMAL < PRIORITY < EMERGENCY (TT 39/2020/TT-BTTTT)
    Airing                        one thing to play once: targets, duration, earliest, valid_until
    notice(id, title, duration, targets, *, now, at=None, valid_until=None, priority=NORMAL,
           order_key=0, window_id=None) -> Airing          one-off at `at`, or ASAP when None
    NoticeSeries(...).airings(start, end) -> list[Airing]   recurring notice
    RelayProgramme(...).airings(start, end) -> list[Airing] higher station's stream, fixed hours
    EmergencyAlert(...).airings(now) -> list[Airing]        repeated N times with a gap
    BulletinProgramme(...).windows(start, end) -> list[BulletinWindow]
    Placement                     an airing placed at `start` in `villages` (+ code, explanation)

Recurrence (`schedules.recurrence`):
    Recurrence.daily / for_days / on_weekdays / weekly / every_n_days
    occurrences(rule, start, end) -> list[datetime]          UTC firings in [start, end)
    parse_recurrence(spec, *, today) -> Recurrence           "06:00 và 17:00 trong 3 ngày"

Zones (`schedules.zones`): Zone, ZoneKind, ZoneTree.expand(targets) -> villages, QuietHours.

Times people type (`schedules.when`, on the commune's wall clock, without diacritics too):
    read_time(text, now) -> Reading(at | day) | None     "25/12 7h30", "ngày mai 7h", "thứ hai 7h30", "25/12"
    parse_when(text, now) -> datetime | None              a start: has an hour, not past, not too far
    FORMS                                                 the examples a refusal (WhenError) lists

Planning (`schedules.planner`):
    plan(tree, requests, *, now, existing=(), windows=(), quiet_hours=None) -> Plan
    Plan.placements / conflicts / changed / dropped, Plan.timeline(village), Plan.for_airing(id)
    check_request(tree, airing, *, now, quiet_hours=None)    raises in_past / in_quiet_hours / unknown_zone

Firing: classify_firing(planned_start, valid_until, now, *, duration=0, tolerance=10 s)
        -> Firing.ON_TIME | LATE | MISSED
Export: to_ics(placements, zone_name, *, stamp=None) -> str
Heading: bulletin_heading(when) -> "Bản tin sáng ngày 25 tháng 5" (audio/ reads the numbers)
Errors: ScheduleError(code, message_vi, params, variant=...), ErrorCode; planner Conflicts carry the same

Wiring it to a database and a timer (a sketch: `db`, `timer` and `send` are the broadcaster's;
the daemon's timer is broadcaster.runtime.timer, which does the I/O this package never does)
-----------------------------------------------------------------------------------------
    tree = ZoneTree(db.zones())                                  # communes, villages, groups
    now = clock.now()
    existing = db.placements(since=now - timedelta(hours=6))     # Placement rows, dispatched flag set
    windows = [w for b in db.bulletin_programmes() for w in b.windows(now, now + timedelta(days=2))]
    req = notice("n42", "Họp thôn", timedelta(minutes=2), {"thon-3"}, now=now, at=local_17h)
    result = plan(tree, [req], now=now, existing=existing, windows=windows)
    if officer_confirms(result.conflicts, [p.explanation for p in result.changed]):
        ids = db.apply(delete=result.dropped, upsert=result.changed)   # one transaction
        for row_id, p in ids: timer.schedule(row_id, p.start, on_time)  # cancel dropped rows' ids
    def on_time(row_id): p = db.placement(row_id); send(p) if classify_firing(
        p.start, p.airing.valid_until, clock.now(), duration=p.airing.duration) is not Firing.MISSED else db.missed(p)

Start-up: rebuild the timer from the database (`timer.scheduled_ids()` tells what is armed);
anything whose time has passed is scheduled anyway and `classify_firing` decides late/missed.
"""

from schedules.clock import LOCAL_TZ, Clock, FakeClock, SystemClock, to_local, utc
from schedules.errors import ErrorCode, ScheduleError
from schedules.firing import ON_TIME_TOLERANCE, Firing, classify_firing
from schedules.heading import bulletin_heading
from schedules.ics import to_ics
from schedules.model import (
    DEFAULT_VALIDITY,
    FRAMING_KINDS,
    Airing,
    AiringKind,
    BulletinProgramme,
    BulletinWindow,
    EmergencyAlert,
    NoticeSeries,
    Placement,
    Priority,
    RelayProgramme,
    notice,
    occurrence_id,
)
from schedules.planner import MIN_RELAY_PIECE, Conflict, PlacementCode, Plan, check_request, plan
from schedules.recurrence import Frequency, Recurrence, occurrences, parse_recurrence
from schedules.zones import DEFAULT_QUIET_HOURS, NO_QUIET_HOURS, QuietHours, Zone, ZoneKind, ZoneTree

__all__ = [
    "DEFAULT_QUIET_HOURS",
    "DEFAULT_VALIDITY",
    "FRAMING_KINDS",
    "LOCAL_TZ",
    "MIN_RELAY_PIECE",
    "NO_QUIET_HOURS",
    "ON_TIME_TOLERANCE",
    "Airing",
    "AiringKind",
    "BulletinProgramme",
    "BulletinWindow",
    "Clock",
    "Conflict",
    "EmergencyAlert",
    "ErrorCode",
    "FakeClock",
    "Firing",
    "Frequency",
    "NoticeSeries",
    "Placement",
    "PlacementCode",
    "Plan",
    "Priority",
    "QuietHours",
    "Recurrence",
    "RelayProgramme",
    "ScheduleError",
    "SystemClock",
    "Zone",
    "ZoneKind",
    "ZoneTree",
    "bulletin_heading",
    "check_request",
    "classify_firing",
    "notice",
    "occurrence_id",
    "occurrences",
    "parse_recurrence",
    "plan",
    "to_ics",
    "to_local",
    "utc",
]
