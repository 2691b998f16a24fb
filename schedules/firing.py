"""Deciding, at the moment a timer fires, whether an airing is on time, late or missed.

APScheduler is told never to judge lateness itself; this function is the only rule, so
behaviour after downtime is the same whether the timer fired late or start-up reconciliation
found an airing that should have started while the daemon was down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from schedules.clock import utc

ON_TIME_TOLERANCE = timedelta(seconds=10)
"""Slack for the timer, the network and the loudspeaker buffering a stream."""


class Firing(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"  # play it and mark it late
    MISSED = "missed"  # do not play; mark it missed with the reason


def classify_firing(
    planned_start: datetime,
    valid_until: datetime,
    now: datetime,
    *,
    duration: timedelta = timedelta(0),
    tolerance: timedelta = ON_TIME_TOLERANCE,
) -> Firing:
    """ON_TIME up to `planned_start + tolerance`, then LATE while the airing can still finish
    by `valid_until` (give `duration` to require a whole play; left at 0 it only needs to
    start before `valid_until`), then MISSED.

    Staleness is checked first: an airing whose validity has ended is missed even within
    the tolerance, because playing a stale notice is worse than playing none.
    """
    planned_start, valid_until, now = utc(planned_start), utc(valid_until), utc(now)
    if now + duration > valid_until or now >= valid_until:
        return Firing.MISSED
    if now <= planned_start + tolerance:
        return Firing.ON_TIME
    return Firing.LATE
