"""What the officer reads: broadcasts with their deliveries, the timeline, the calendar export."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from broadcaster.db import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    villages_of,
)
from broadcaster.errors import LoaError
from broadcaster.messages import DEFAULT_LANGUAGE, coded_reason, reason_text
from broadcaster.services import Services
from broadcaster.services.planning import PRIORITY_OF
from broadcaster.services.reports import heard_sql
from broadcaster.services.zones import resolve_zones, zone_names
from schedules import Airing, AiringKind, Placement, to_ics
from schedules.clock import to_local


def broadcast_view(session: Session, b: Broadcast, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """A broadcast as the officer reads it; its `reason` (stored as a code) in the person's language."""
    counts = dict(
        session.execute(
            select(Delivery.status, func.count()).where(Delivery.broadcast_id == b.id).group_by(Delivery.status)
        ).all()
    )
    total = sum(counts.values())
    done = session.scalar(  # heard, by the rule every count shares (services.reports.heard)
        select(func.count()).select_from(Delivery).join(Broadcast).where(Delivery.broadcast_id == b.id, heard_sql())
    )
    return {
        "id": b.id,
        "announcement_id": b.announcement_id,
        "zone": b.zone_id,
        "start_at": b.start_at.isoformat(),
        "start_at_local": to_local(b.start_at).strftime("%H:%M:%S %d/%m/%Y"),
        "expires_at": b.expires_at.isoformat(),
        "status": b.status.value,
        "late": b.late,
        "reason": reason_text(b.reason, lang),
        "priority": b.priority,
        "explanation": b.explanation,
        "deliveries": {s.value: n for s, n in counts.items()},
        "summary": f"{done}/{total} thiết bị đã phát xong" if total else "chưa gửi",
    }


def list_broadcasts(svc: Services, limit: int = 50, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        rows = session.scalars(select(Broadcast).order_by(Broadcast.start_at.desc()).limit(limit))
        return [{**broadcast_view(session, b, lang), "title": b.title} for b in rows]


def recent_deliveries(svc: Services, limit: int = 20, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        rows = session.execute(
            select(Delivery, Broadcast)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "broadcast": b.id,
                "title": b.title,
                "device": d.device_id,
                "status": d.status.value,
                "reason": reason_text(d.reason, lang),
                "start_error_ms": d.start_error_ms,
                "start_at_local": to_local(b.start_at).strftime("%H:%M:%S %d/%m"),
                "updated_at": d.updated_at.isoformat(),
            }
            for d, b in rows
        ]


def pending_broadcasts(session: Session, until: datetime) -> list[Broadcast]:
    return list(
        session.scalars(
            select(Broadcast)
            .where(Broadcast.status == BroadcastStatus.PLANNED, Broadcast.start_at <= until)
            .order_by(Broadcast.start_at)
        )
    )


def timeline(
    svc: Services,
    zone: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    lang: str = DEFAULT_LANGUAGE,
) -> list[dict[str, Any]]:
    """What airs where, in order: the officer's programme view (and the source of the .ics export).
    A recalled airing stays in it, cancelled and saying so; one the planner replaced does not."""
    now = svc.clock.now()
    start = start or now - timedelta(hours=1)
    end = end or start + timedelta(days=7)
    if end <= start:
        raise LoaError("end_before_start.range", {})
    with svc.db.session() as session:
        q = (
            select(Broadcast)
            .where(
                Broadcast.start_at >= start,
                Broadcast.start_at < end,
                or_(Broadcast.status != BroadcastStatus.CANCELLED, Broadcast.reason == coded_reason("recalled")),
            )
            .order_by(Broadcast.start_at, Broadcast.zone_id)
        )
        if zone is not None:
            (z,) = resolve_zones(session, [zone])
            q = q.where(Broadcast.zone_id.in_(villages_of(session, z)))
        names = zone_names(session)
        return [
            {
                "broadcast": b.id,
                "announcement": b.announcement_id,
                "programme": b.programme_id,
                "kind": b.kind,
                "title": b.title,
                "zone": b.zone_id,
                "zone_name": names.get(b.zone_id, b.zone_id),
                "start_at": b.start_at.isoformat(),
                "end_at": (b.start_at + timedelta(milliseconds=b.duration_ms)).isoformat(),
                "start_at_local": to_local(b.start_at).strftime("%H:%M:%S %d/%m/%Y"),
                "priority": b.priority,
                "status": b.status.value,
                "explanation": b.explanation,
                "reason": reason_text(b.reason, lang),
                "stream_url": b.programme.stream_url if b.programme else None,
            }
            for b in session.scalars(q)
        ]


def calendar(svc: Services, zone: str) -> str:
    """An iCalendar file of a zone's planned airings, for the officer's phone."""
    rows = timeline(svc, zone, svc.clock.now() - timedelta(days=1), svc.clock.now() + timedelta(days=60))
    rows = [r for r in rows if r["status"] != BroadcastStatus.CANCELLED.value]  # a recalled one is off the phone too
    rows = [r for r in rows if r["kind"] != "live"]  # said live, never planned: nothing to put in a calendar
    with svc.db.session() as session:
        (z,) = resolve_zones(session, [zone])
        zone_name = z.name
    merged: dict[tuple[int, str], dict[str, Any]] = {}
    for r in rows:  # one event per airing, however many villages hear it
        merged.setdefault((r["title"], r["start_at"]), r)
    placements = [
        Placement(
            airing=Airing(
                id=f"b{r['broadcast']}",
                title=r["title"],
                kind=AiringKind(r["kind"]),
                priority=PRIORITY_OF[r["priority"]],
                duration=max(
                    timedelta(seconds=1), datetime.fromisoformat(r["end_at"]) - datetime.fromisoformat(r["start_at"])
                ),
                targets=frozenset({r["zone"]}),
                earliest=datetime.fromisoformat(r["start_at"]),
                valid_until=datetime.fromisoformat(r["end_at"]) + timedelta(hours=1),
                stream_url=r["stream_url"],
            ),
            villages=frozenset({r["zone"]}),
            start=datetime.fromisoformat(r["start_at"]),
            end=datetime.fromisoformat(r["end_at"]),
            code="",
            explanation=r["explanation"],
        )
        for r in merged.values()
    ]
    return to_ics(placements, zone_name, stamp=svc.clock.now())
