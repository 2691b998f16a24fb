"""What aired where, read as the officer thinks of it: one airing per item and start, however many
villages heard it, with where it stands now and how many speakers played it ("41/43 loa đã phát").

The planner stores a commune-wide item as one broadcast row per village, all sharing `airing_id` and
`start_at` (a placement); the timeline and the deliveries pages of the desk show the placement whole,
so an officer never adds up villages by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from broadcaster.db import Broadcast, BroadcastStatus, Delivery, Device
from broadcaster.errors import LoaError
from broadcaster.messages import DEFAULT_LANGUAGE, coded_reason, reason_label, reason_text
from broadcaster.services import Services
from broadcaster.services.inputs import fits_sql_int
from broadcaster.services.reports import delivery_summary
from broadcaster.services.views import timeline
from broadcaster.services.zones import zone_names

# Where an airing stands, most pressing first: a placement whose villages differ says the first.
STATES = ("on_air", "sent", "planned", "aired", "missed", "cancelled")
# Shown unless the planner replaced them (a recalled airing stays, cancelled and saying so).
_SHOWN = or_(Broadcast.status != BroadcastStatus.CANCELLED, Broadcast.reason == coded_reason("recalled"))


def airing_state(status: BroadcastStatus | str, start: datetime, end: datetime, now: datetime) -> str:
    """'planned' (not sent yet), 'sent' (its commands are out, it has not begun), 'on_air', 'aired',
    'missed' or 'cancelled'. The clock decides between sent, on air and aired: devices start on the dot
    and report once they have finished, so the database says 'dispatched' all through the airing."""
    status = BroadcastStatus(status)
    if status is BroadcastStatus.CANCELLED:
        return "cancelled"
    if status is BroadcastStatus.MISSED:
        return "missed"
    if status is BroadcastStatus.PLANNED:
        return "planned"
    if now < start:
        return "sent"
    if now < end and status is BroadcastStatus.DISPATCHED:
        return "on_air"
    return "aired"


def _first_state(states: Sequence[str]) -> str:
    return min(states, key=STATES.index)


def zone_timeline(
    svc: Services,
    zone: str | None,
    start: datetime,
    end: datetime,
    lang: str = DEFAULT_LANGUAGE,
) -> list[dict[str, Any]]:
    """A zone's timeline as the desk shows it: one row per airing, naming the villages that hear it
    together, with its state now (`airing_state`). Refuses an unknown zone like `views.timeline`."""
    now = svc.clock.now()
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in timeline(svc, zone, start, end, lang):
        key = (row["announcement"], row["programme"], row["kind"], row["title"], row["start_at"], row["status"])
        found = merged.get(key)
        if found is None:
            state = airing_state(
                row["status"], datetime.fromisoformat(row["start_at"]), datetime.fromisoformat(row["end_at"]), now
            )
            merged[key] = {**row, "zones": [row["zone_name"]], "state": state}
        else:
            found["zones"].append(row["zone_name"])
    return list(merged.values())


def _placement(session: Session, b: Broadcast) -> list[Broadcast]:
    """The rows of `b`'s placement: its villages' broadcasts of the same airing and start."""
    if not b.airing_id:
        return [b]
    return list(
        session.scalars(
            select(Broadcast)
            .where(Broadcast.airing_id == b.airing_id, Broadcast.start_at == b.start_at, _SHOWN)
            .order_by(Broadcast.zone_id)
        )
    ) or [b]


def _airing_view(
    session: Session, rows: list[Broadcast], now: datetime, lang: str, names: dict[str, str]
) -> dict[str, Any]:
    first = rows[0]
    end = first.start_at + timedelta(milliseconds=first.duration_ms)
    summary = delivery_summary(session, [b.id for b in rows])
    reason = next((b.reason for b in rows if b.reason), "")
    return {
        "broadcast": first.id,
        "broadcasts": [b.id for b in rows],
        "announcement": first.announcement_id,
        "programme": first.programme_id,
        "title": first.title,
        "kind": first.kind,
        "priority": first.priority,
        "start_at": first.start_at.isoformat(),
        "end_at": end.isoformat(),
        "state": _first_state([airing_state(b.status, b.start_at, end, now) for b in rows]),
        "zones": [names.get(b.zone_id, b.zone_id) for b in rows],
        "explanation": first.explanation,
        "reason": reason_text(reason, lang),
        "speakers": summary.speakers,
        "speakers_played": summary.speakers_played,
        "boards": summary.boards,
        "boards_shown": summary.boards_shown,
        "pending": summary.pending,
        "not_played": {reason_label(code, lang): n for code, n in sorted(summary.not_played.items())},
        "start_error_p99_ms": summary.start_error_p99_ms,
    }


def list_airings(
    svc: Services,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    announcement: int | None = None,
    limit: int = 50,
    lang: str = DEFAULT_LANGUAGE,
) -> list[dict[str, Any]]:
    """Airings (whole placements), latest start first, each with its speakers' count: the desk's list
    of what was sent, and of what a period's report counts."""
    if start is not None and end is not None and end <= start:
        raise LoaError("end_before_start.range", {})
    key = func.coalesce(func.nullif(Broadcast.airing_id, ""), cast(Broadcast.id, String))
    first_id = func.min(Broadcast.id)
    q = select(first_id).where(_SHOWN).group_by(key, Broadcast.start_at)
    if start is not None:
        q = q.where(Broadcast.start_at >= start)
    if end is not None:
        q = q.where(Broadcast.start_at < end)
    if announcement is not None:
        q = q.where(Broadcast.announcement_id == (announcement if fits_sql_int(announcement) else -1))
    q = q.order_by(Broadcast.start_at.desc(), first_id.desc()).limit(max(1, min(limit, 500)))
    now = svc.clock.now()
    with svc.db.session() as session:
        names = zone_names(session)
        out = []
        for bid in session.scalars(q).all():
            b = session.get(Broadcast, bid)
            assert b is not None
            out.append(_airing_view(session, _placement(session, b), now, lang, names))
        return out


def airing_deliveries(svc: Services, broadcast_id: int, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """One airing (the placement of broadcast `broadcast_id`) and every device's outcome in it."""
    now = svc.clock.now()
    with svc.db.session() as session:
        b = session.get(Broadcast, broadcast_id) if fits_sql_int(broadcast_id) else None
        if b is None:
            raise LoaError("not_found.broadcast", {"id": broadcast_id}, status=404)
        names = zone_names(session)
        rows = _placement(session, b)
        view = _airing_view(session, rows, now, lang, names)
        found = session.execute(
            select(Delivery, Device)
            .join(Device, Device.id == Delivery.device_id)
            .where(Delivery.broadcast_id.in_([r.id for r in rows]))
            .order_by(Device.village_id, Device.kind, Device.id)
        ).all()
        view["deliveries"] = [
            {
                "device": d.id,
                "name": d.name,
                "kind": d.kind.value,
                "village": d.village_id,
                "village_name": names.get(d.village_id, d.village_id),
                "status": delivery.status.value,
                "reason": reason_text(delivery.reason, lang),
                "start_error_ms": delivery.start_error_ms,
                "updated_at": delivery.updated_at.isoformat(),
            }
            for delivery, d in found
        ]
        return view
