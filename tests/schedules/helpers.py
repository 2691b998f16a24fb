"""Shared builders and invariant checks for the schedules tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from itertools import pairwise

from schedules import (
    DEFAULT_QUIET_HOURS,
    LOCAL_TZ,
    Placement,
    Priority,
    QuietHours,
    Zone,
    ZoneKind,
    ZoneTree,
)
from schedules.recurrence import local_instant

COMMUNE = "xa-hoa-binh"
NORTH = "cum-bac"  # villages 1–5
SOUTH = "cum-nam"  # villages 6–10


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An instant given as Vietnamese wall-clock time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=LOCAL_TZ)


def village(n: int) -> str:
    return f"thon-{n}"


def commune_tree(villages: int = 10) -> ZoneTree:
    zones = [Zone(COMMUNE, "Xã Hòa Bình", ZoneKind.COMMUNE)]
    zones += [Zone(village(i), f"Thôn {i}", ZoneKind.VILLAGE, parent=COMMUNE) for i in range(1, villages + 1)]
    half = villages // 2
    zones.append(Zone(NORTH, "Cụm Bắc", ZoneKind.GROUP, members=frozenset(village(i) for i in range(1, half + 1))))
    zones.append(
        Zone(
            SOUTH,
            "Cụm Nam",
            ZoneKind.GROUP,
            members=frozenset(village(i) for i in range(half + 1, villages + 1)),
        )
    )
    return ZoneTree(zones)


def quiet_stretches(q: QuietHours, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    if q.is_empty:
        return []
    found = []
    day = start.astimezone(LOCAL_TZ).date() - timedelta(days=1)
    while day <= end.astimezone(LOCAL_TZ).date():
        q_start = local_instant(day, q.start)
        q_end = local_instant(day + timedelta(days=1) if q.start > q.end else day, q.end)
        if q_start < end and q_end > start:
            found.append((q_start, q_end))
        day += timedelta(days=1)
    return found


def overlaps_in_villages(placements: Iterable[Placement]) -> list[tuple[str, Placement, Placement]]:
    """Pairs of placements that overlap in some village (should always be empty)."""
    by_village: dict[str, list[Placement]] = {}
    for p in placements:
        for v in p.villages:
            by_village.setdefault(v, []).append(p)
    bad = []
    for v, items in by_village.items():
        items.sort(key=lambda p: (p.start, p.end))
        for a, b in pairwise(items):
            if b.start < a.end:
                bad.append((v, a, b))
    return bad


def quiet_violations(
    placements: Iterable[Placement],
    tree: ZoneTree,
    quiet_hours: Mapping[str, QuietHours] | None = None,
) -> list[Placement]:
    bad = []
    for p in placements:
        if p.airing.priority is Priority.EMERGENCY:
            continue
        for v in p.villages:
            settings = tree.quiet_hours_for(v, quiet_hours) if quiet_hours else (DEFAULT_QUIET_HOURS,)
            if any(quiet_stretches(q, p.start, p.end) for q in settings):
                bad.append(p)
                break
    return bad
