"""The devices the officer watches: who is online, and which coming airings an offline speaker will miss."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster.db import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    Device,
    DeviceKind,
    Zone,
    ZoneKind,
)
from broadcaster.messages import DEFAULT_LANGUAGE, reason_text
from broadcaster.services import Services
from broadcaster.services.zones import zone_names
from schedules.clock import to_local


def device_view(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "kind": d.kind.value,
        "village": d.village_id,
        "name": d.name,
        "online": d.online,
        "last_seen": d.last_seen.isoformat() if d.last_seen else None,
        "last_seen_local": to_local(d.last_seen).strftime("%H:%M:%S %d/%m/%Y") if d.last_seen else None,
        "firmware": d.firmware,
        "volume": d.volume,
        "signal": d.signal,
        # The daemon's clock minus the device's, as the device last measured it (docs/protocol.md, *Clock
        # offset*): positive when its clock is behind. The device corrects its starts by it.
        "clock_offset_ms": d.clock_offset_ms,
        "clock_delay_ms": d.clock_delay_ms,
        "clock_checked_at": d.clock_checked_at.isoformat() if d.clock_checked_at else None,
    }


def clock_off(d: Device, bound_ms: float) -> bool:
    """The device said its clock is off the daemon's by more than `bound_ms`. It corrects its starts by
    what it measured, so it should still start on time; but a clock that far off has lost its own time
    source, a correction is only as good as the last exchange, and firmware that does not correct plays
    that much early or late: the officer is told before it airs."""
    return d.clock_offset_ms is not None and abs(d.clock_offset_ms) > bound_ms


def list_devices(svc: Services) -> list[dict[str, Any]]:
    with svc.db.session() as session:
        return [device_view(d) for d in session.scalars(select(Device).order_by(Device.village_id, Device.id))]


def _upcoming(
    session: Session, now: datetime, within: timedelta, zones: list[str] | None = None
) -> Sequence[Broadcast]:
    """What is planned to start within `within` (in `zones` if given), soonest first: what a warning is about."""
    q = select(Broadcast).where(
        Broadcast.status == BroadcastStatus.PLANNED, Broadcast.start_at >= now, Broadcast.start_at <= now + within
    )
    if zones is not None:
        q = q.where(Broadcast.zone_id.in_(zones))
    return session.scalars(q.order_by(Broadcast.start_at)).all()


def offline_warnings(svc: Services, within: timedelta = timedelta(minutes=30)) -> list[dict[str, Any]]:
    """Airings coming up soon in villages where a speaker is offline: the officer can still call the
    technician, or the village head, before the village misses the item."""
    now = svc.clock.now()
    with svc.db.session() as session:
        upcoming = _upcoming(session, now, within)
        offline: dict[str, list[str]] = {}
        for d in session.scalars(
            select(Device).where(Device.kind == DeviceKind.SPEAKER, Device.online.is_(False)).order_by(Device.id)
        ):
            offline.setdefault(d.village_id, []).append(d.id)
        names = zone_names(session)
        return [
            {
                "broadcast": b.id,
                "title": b.title,
                "zone": b.zone_id,
                "start_at_local": to_local(b.start_at).strftime("%H:%M %d/%m"),
                "offline_speakers": offline[b.zone_id],
                "message": f"{names.get(b.zone_id, b.zone_id)}: {len(offline[b.zone_id])} loa mất kết nối, "
                f"'{b.title}' phát lúc {to_local(b.start_at):%H:%M}",
            }
            for b in upcoming
            if b.zone_id in offline
        ]


def clock_warnings(svc: Services, within: timedelta = timedelta(minutes=30)) -> list[dict[str, Any]]:
    """Airings coming up soon in villages where an online speaker's clock is off by more than
    `[dispatch] clock_warn_ms` (see `clock_off`), with each such speaker and its offset."""
    bound = svc.config.dispatch.clock_warn_ms
    now = svc.clock.now()
    with svc.db.session() as session:
        off: dict[str, list[tuple[str, float]]] = {}
        for d in session.scalars(
            select(Device).where(Device.kind == DeviceKind.SPEAKER, Device.online.is_(True)).order_by(Device.id)
        ):
            if clock_off(d, bound):
                assert d.clock_offset_ms is not None
                off.setdefault(d.village_id, []).append((d.id, d.clock_offset_ms))
        if not off:
            return []
        upcoming = _upcoming(session, now, within, zones=sorted(off))
        names = zone_names(session)
        said = {zone: [f"{device} {offset:+.0f} ms" for device, offset in speakers] for zone, speakers in off.items()}
        return [
            {
                "broadcast": b.id,
                "title": b.title,
                "zone": b.zone_id,
                "start_at_local": to_local(b.start_at).strftime("%H:%M %d/%m"),
                "speakers": dict(off[b.zone_id]),
                "devices": said[b.zone_id],
                "bound_ms": bound,
                "message": f"{names.get(b.zone_id, b.zone_id)}: {len(off[b.zone_id])} loa lệch đồng hồ quá "
                f"{bound:g} ms ({', '.join(said[b.zone_id])}); '{b.title}' phát lúc {to_local(b.start_at):%H:%M}",
            }
            for b in upcoming
        ]


def device_board(svc: Services, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    """The devices village by village, as the desk's board shows them: each with what it was last
    asked to play (its latest delivery: the item, the outcome and how far off its start was), so a
    speaker that went quiet, or plays late, is seen before a villager complains."""
    with svc.db.session() as session:
        latest = select(func.max(Delivery.id)).group_by(Delivery.device_id).scalar_subquery()
        last_play = {
            d.device_id: {
                "broadcast": b.id,
                "title": b.title,
                "start_at": b.start_at.isoformat(),
                "status": d.status.value,
                "reason": reason_text(d.reason, lang),
                "start_error_ms": d.start_error_ms,
            }
            for d, b in session.execute(
                select(Delivery, Broadcast).join(Broadcast, Broadcast.id == Delivery.broadcast_id).where(
                    Delivery.id.in_(latest)
                )
            )
        }
        villages: dict[str, dict[str, Any]] = {
            z.id: {"id": z.id, "name": z.name, "devices": []}
            for z in session.scalars(select(Zone).where(Zone.kind == ZoneKind.VILLAGE).order_by(Zone.id))
        }
        for d in session.scalars(select(Device).order_by(Device.village_id, Device.kind, Device.id)):
            village = villages.setdefault(d.village_id, {"id": d.village_id, "name": d.village_id, "devices": []})
            village["devices"].append(
                {
                    **device_view(d),
                    "last_play": last_play.get(d.id),
                    "clock_off": clock_off(d, svc.config.dispatch.clock_warn_ms),
                }
            )
    for v in villages.values():
        v["online"] = sum(1 for d in v["devices"] if d["online"])
    return list(villages.values())
