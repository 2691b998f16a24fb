"""Claiming a placement for dispatch, once, and working out who hears it.

A broadcast moves PLANNED -> DISPATCHED through a conditional UPDATE, which is what makes "airs exactly
once" hold even when two paths (the timer, a reconcile, a second daemon) race to dispatch it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from broadcaster.db import Broadcast, BroadcastStatus, Device, DeviceKind, Zone, villages_of
from broadcaster.dispatch.bodies import CommandBodies
from broadcaster.messages import coded_reason
from schedules import Firing, classify_firing

LATE_TOLERANCE_S = 1.0  # dispatched later than this past start_at counts as late
LATE_PREP_S = 3.0  # a late airing starts this long after dispatch, so devices can fetch the audio

# A device to command: its broadcast's bodies, the device, its kind and whether it shows diacritics
Target = tuple[CommandBodies, str, DeviceKind, bool]


def claim_placement(session: Session, broadcast_id: int, now: datetime) -> list[Broadcast]:
    """The planned rows of this broadcast's placement (the other villages' rows of the same airing and
    start) that this call moved to DISPATCHED, a conditional UPDATE each: two racing callers never both
    own a row."""
    b = session.get(Broadcast, broadcast_id)
    if b is None or b.status is not BroadcastStatus.PLANNED:
        return []
    ids = [broadcast_id]
    if b.airing_id:
        ids += session.scalars(
            select(Broadcast.id)
            .where(
                Broadcast.airing_id == b.airing_id,
                Broadcast.start_at == b.start_at,
                Broadcast.status == BroadcastStatus.PLANNED,
                Broadcast.id != broadcast_id,
            )
            .order_by(Broadcast.id)
        ).all()
    claimed: list[int] = []
    for bid in ids:
        result = session.execute(
            update(Broadcast)
            .where(Broadcast.id == bid, Broadcast.status == BroadcastStatus.PLANNED)
            .values(status=BroadcastStatus.DISPATCHED, dispatched_at=now)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount == 1:
            claimed.append(bid)
    if not claimed:
        return []
    return list(
        session.scalars(  # the rows as the UPDATEs left them
            select(Broadcast).where(Broadcast.id.in_(claimed)).order_by(Broadcast.id)
            .execution_options(populate_existing=True)
        )
    )  # fmt: skip


def targets(
    session: Session, claimed: list[Broadcast], now: datetime, bodies: Callable[[Broadcast], CommandBodies]
) -> list[Target]:
    """The devices the claimed broadcasts go to, with their command bodies. A broadcast too late to
    air, or with nobody to hear it, gets none and says why (a coded reason, see broadcaster.messages,
    so the officer reads it in their language)."""
    live = [b for b in claimed if still_on_time(b, now)]
    if not live:
        return []
    zones = {z.id: z for z in session.scalars(select(Zone).where(Zone.id.in_({b.zone_id for b in live})))}
    villages = {b.id: villages_of(session, zones[b.zone_id]) for b in live}
    devices: dict[str, list[tuple[str, DeviceKind, bool]]] = {}
    wanted = sorted({v for vs in villages.values() for v in vs})
    if wanted:
        # Columns, not ORM objects: a commune-wide bulletin has thousands of targets.
        for village, device_id, kind, dia in session.connection().execute(
            select(Device.village_id, Device.id, Device.kind, Device.diacritics)
            .where(Device.village_id.in_(wanted))
            .order_by(Device.id)
        ):
            devices.setdefault(village, []).append((device_id, kind, dia))
    out: list[Target] = []
    for b in live:
        mine_bodies = bodies(b)
        mine = [
            (mine_bodies, device_id, kind, dia)
            for village in villages[b.id]
            for device_id, kind, dia in devices.get(village, [])
            if mine_bodies.get(kind, dia) is not None
        ]
        if not mine:
            b.status = BroadcastStatus.DONE
            b.reason = coded_reason("no_devices")
        out += mine
    return out


def still_on_time(b: Broadcast, now: datetime) -> bool:
    """False, and the broadcast marked missed, when it can no longer air whole; a late one is moved
    to start shortly, and says so."""
    verdict = classify_firing(
        b.start_at,
        b.expires_at,
        now,
        duration=timedelta(milliseconds=b.duration_ms),
        tolerance=timedelta(seconds=LATE_TOLERANCE_S),
    )
    if verdict is Firing.MISSED:
        b.status = BroadcastStatus.MISSED
        b.reason = coded_reason("missed_validity")
        return False
    if verdict is Firing.LATE:
        late_by = int((now + timedelta(seconds=LATE_PREP_S) - b.start_at).total_seconds())
        b.start_at = now + timedelta(seconds=LATE_PREP_S)  # the start devices are given
        b.late = True
        b.reason = coded_reason("late", late_by)
    return True
