"""Between the database and the pure planner in `schedules/`: rows in, placements out, rows back.

The planner decides; this module only translates. Broadcast rows that share an airing id and a start
are one placement (the villages of a group start together), so reading the timeline back is a
group-by, and writing a plan is an upsert keyed by (airing, start, village).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.db import AnnouncementState, Broadcast, BroadcastStatus, Programme, Zone, ZoneMember
from broadcaster.db import ZoneKind as DbZoneKind
from broadcaster.errors import LoaError
from broadcaster.messages import coded_reason
from broadcaster.services import Services
from schedules import (
    FRAMING_KINDS,
    Airing,
    AiringKind,
    BulletinProgramme,
    BulletinWindow,
    Placement,
    Plan,
    Priority,
    QuietHours,
    ScheduleError,
    ZoneKind,
    ZoneTree,
    parse_recurrence,
    plan,
)
from schedules import Zone as PlanZone

PRIORITY_OF = {
    "background": Priority.BACKGROUND,
    "normal": Priority.NORMAL,
    "priority": Priority.PRIORITY,
    "emergency": Priority.EMERGENCY,
}
NAME_OF = {v: k for k, v in PRIORITY_OF.items()}
LOOKBACK = timedelta(hours=3)  # placements that may still be on air, so nothing is planned over them
WINDOW_HORIZON = timedelta(days=3)  # the bulletins an item can be queued in
LIVE = (BroadcastStatus.PLANNED, BroadcastStatus.DISPATCHED)


def zone_tree(session: Session) -> ZoneTree:
    zones = list(session.scalars(select(Zone)))
    members: dict[str, set[str]] = defaultdict(set)
    for m in session.scalars(select(ZoneMember)):
        members[m.group_id].add(m.village_id)
    return ZoneTree(
        PlanZone(
            id=z.id,
            name=z.name,
            kind=ZoneKind(z.kind.value),
            parent=z.parent_id,
            members=frozenset(members.get(z.id, ())),
        )
        for z in zones
    )


def _hm(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


def quiet_hours(session: Session, default: QuietHours) -> dict[str, QuietHours]:
    """Per-zone quiet hours from the zones table; the commune carries the configured default."""
    out: dict[str, QuietHours] = {}
    for z in session.scalars(select(Zone)):
        if z.quiet_start and z.quiet_end:
            out[z.id] = QuietHours(_hm(z.quiet_start), _hm(z.quiet_end))
        elif z.kind is DbZoneKind.COMMUNE:
            out[z.id] = default
    return out


@dataclass
class _Group:
    rows: list[Broadcast]

    @property
    def first(self) -> Broadcast:
        return self.rows[0]


def existing_placements(session: Session, now: datetime) -> tuple[list[Placement], dict[tuple[str, datetime], _Group]]:
    """The live timeline, as the planner's placements, plus the rows behind each one."""
    rows = session.scalars(
        select(Broadcast)
        .where(Broadcast.status.in_(LIVE), Broadcast.expires_at > now - LOOKBACK, Broadcast.airing_id != "")
        .order_by(Broadcast.start_at, Broadcast.id)
    ).all()
    groups: dict[tuple[str, datetime], _Group] = {}
    for b in rows:
        groups.setdefault((b.airing_id, b.start_at), _Group([])).rows.append(b)
    placements = []
    for (airing_id, start), g in groups.items():
        b = g.first
        duration = timedelta(milliseconds=max(1, b.duration_ms))
        villages = frozenset(r.zone_id for r in g.rows)
        airing = relay_airing(b, villages) or Airing(
            id=airing_id,
            title=b.title,
            kind=AiringKind(b.kind),
            priority=PRIORITY_OF[b.priority],
            duration=duration,
            targets=villages,
            earliest=start,
            valid_until=max(b.expires_at, start + duration),
            window_id=b.window_id or None,
            order_key=b.order_key,
        )
        placements.append(
            Placement(
                airing=airing,
                villages=villages,
                start=start,
                end=start + duration,
                code=b.code,
                explanation=b.explanation,
                dispatched=any(r.status is not BroadcastStatus.PLANNED for r in g.rows),
            )
        )
    return placements, groups


def relay_airing(b: Broadcast, villages: frozenset[str]) -> Airing | None:
    """A relay row may be one piece of a cut relay; the planner needs the whole occurrence back."""
    prog = b.programme
    if b.kind != AiringKind.RELAY.value or prog is None or prog.stream_url is None:
        return None
    occurrence = datetime.strptime(b.airing_id.rsplit("@", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    duration = timedelta(milliseconds=prog.duration_ms)
    return Airing(
        id=b.airing_id,
        title=b.title,
        kind=AiringKind.RELAY,
        priority=Priority.BACKGROUND,
        duration=duration,
        targets=villages,
        earliest=occurrence,
        valid_until=occurrence + duration,
        stream_url=prog.stream_url,
    )


@dataclass(frozen=True)
class Owner:
    """What a broadcast row belongs to: an announcement (its audio), a programme, or both; a bulletin's
    frame belongs to its programme and plays a clip."""

    announcement_id: int | None
    programme_id: int | None = None
    clip_id: int | None = None


def bulletin_windows(session: Session, start: datetime, end: datetime) -> list[BulletinWindow]:
    """Every window of every active bulletin programme opening in [start, end)."""
    windows: list[BulletinWindow] = []
    for prog in session.scalars(
        select(Programme)
        .where(
            Programme.kind == "bulletin",
            Programme.active.is_(True),
            Programme.state == AnnouncementState.APPROVED,  # one awaiting approval opens no window
        )
        .order_by(Programme.id)
    ):
        opts = json.loads(prog.options or "{}")
        windows += BulletinProgramme(
            id=f"p{prog.id}",
            targets=frozenset(json.loads(prog.targets)),
            recurrence=parse_recurrence(prog.recurrence, today=date.fromisoformat(prog.starts_on)),
            length=timedelta(milliseconds=prog.duration_ms),
            open_chime=timedelta(milliseconds=opts.get("open_chime_ms", 5000)),
            heading=timedelta(milliseconds=opts.get("heading_ms", 8000)),
            close_chime=timedelta(milliseconds=opts.get("close_chime_ms", 5000)),
        ).windows(start, end)
    return windows


def programme_of_window(window_id: str) -> int | None:
    """Window ids are "p<programme id>@<opening>"."""
    head = window_id.split("@", 1)[0]
    return int(head[1:]) if head.startswith("p") and head[1:].isdigit() else None


def plan_new(
    session: Session,
    requests: list[Airing],
    now: datetime,
    default_quiet: QuietHours,
) -> tuple[Plan, dict[tuple[str, datetime], _Group]]:
    tree = zone_tree(session)
    existing, groups = existing_placements(session, now)
    windows = bulletin_windows(session, now - LOOKBACK, now + WINDOW_HORIZON)
    result = plan(
        tree, requests, now=now, existing=existing, windows=windows, quiet_hours=quiet_hours(session, default_quiet)
    )
    return result, groups


def apply_plan(
    session: Session,
    result: Plan,
    groups: dict[tuple[str, datetime], _Group],
    owners: dict[str, Owner],
    framing: Callable[[Airing], Owner] | None = None,
) -> list[Broadcast]:
    """Write the plan: cancel what it dropped, update what it moved, insert what is new."""
    kept = {(p.airing.id, p.start) for p in result.placements}
    for p in result.dropped:
        g = groups.get((p.airing.id, p.start))
        if g is None or (p.airing.id, p.start) in kept:
            continue
        for row in g.rows:
            if row.status is BroadcastStatus.PLANNED:
                row.status = BroadcastStatus.CANCELLED
                row.reason = coded_reason("rescheduled")
    written: list[Broadcast] = []
    for p in result.changed:
        g = groups.get((p.airing.id, p.start))
        by_zone = {r.zone_id: r for r in g.rows} if g else {}
        owner = owners.get(p.airing.id)
        if owner is None:
            # another piece of an airing already on the timeline (a replay after a cut, a cut relay)
            first = g.first if g else next((grp.first for (aid, _), grp in groups.items() if aid == p.airing.id), None)
            owner = Owner(first.announcement_id, first.programme_id, first.clip_id) if first else None
        if owner is None and framing is not None and p.airing.kind in FRAMING_KINDS:
            owner = framing(p.airing)
        if owner is None:
            continue  # nothing to air it with (the caller gave no audio for it)
        for village in sorted(p.villages):
            found = by_zone.get(village)
            if found is None:
                row = Broadcast(
                    announcement_id=owner.announcement_id,
                    programme_id=owner.programme_id,
                    clip_id=owner.clip_id,
                    title=p.airing.title,
                    zone_id=village,
                    start_at=p.start,
                    expires_at=p.airing.valid_until,
                    airing_id=p.airing.id,
                    kind=p.airing.kind.value,
                    priority=NAME_OF[p.airing.priority],
                    window_id=p.airing.window_id or "",
                    order_key=p.airing.order_key,
                )
                session.add(row)
            else:
                row = found
            row.duration_ms = int((p.end - p.start).total_seconds() * 1000)
            row.code = str(p.code)
            row.explanation = p.explanation[:500]
            written.append(row)
    session.flush()
    return written


def placement_view(p: Placement, tree_names: dict[str, str]) -> dict[str, Any]:
    from schedules.clock import to_local

    return {
        "airing": p.airing.id,
        "title": p.airing.title,
        "villages": sorted(p.villages),
        "village_names": [tree_names.get(v, v) for v in sorted(p.villages)],
        "start_at": p.start.isoformat(),
        "start_at_local": to_local(p.start).strftime("%H:%M:%S %d/%m/%Y"),
        "end_at_local": to_local(p.end).strftime("%H:%M:%S"),
        "priority": NAME_OF[p.airing.priority],
        "code": str(p.code),
        "explanation": p.explanation,
    }


def plan_or_refuse(
    svc: Services, session: Session, requests: list[Airing], now: datetime, *, max_reasons: int | None = None
) -> tuple[Plan, dict[tuple[str, datetime], Any], set[str]]:
    """Plan `requests` among what is on the timeline; refuse the whole request (409, nothing written)
    when the planner cannot place one of them. Returns the plan, the rows behind it and the new ids."""
    try:
        result, groups = plan_new(session, requests, now, default_quiet_hours(svc))
    except ScheduleError as exc:
        raise LoaError.from_domain(exc) from exc
    mine = {a.id for a in requests}
    refused = [c for c in result.conflicts if c.airing.id in mine]
    if refused:
        raise LoaError.refusal(refused[:max_reasons])
    return result, groups, mine


def default_quiet_hours(svc: Services) -> QuietHours:
    s = svc.config.schedule
    return QuietHours(time.fromisoformat(s.quiet_start), time.fromisoformat(s.quiet_end))
