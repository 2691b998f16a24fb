"""Listen again: what actually aired in a village (or anywhere in the commune) lately, for the public
pages and the podcast feeds (broadcaster/web/public/, docs/villagers.md).

"Actually aired" is read from what the speakers reported, never from the plan: an item is listed once
at least one speaker played it to the end (a DONE delivery), in the last `[villagers] listen_days`.
Drafts and items waiting for approval never reach a speaker, so never show; an item that was recalled
is withdrawn from the list, because the commune took it back. An emergency is the exception: people
heard the siren, so it stays listed as soon as a speaker started it, with its outcome (how many
speakers played it, and the recall, when and why, if it was a false alarm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from broadcaster.db import (
    Announcement,
    AnnouncementState,
    Broadcast,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
    Zone,
    ZoneKind,
)
from broadcaster.services import Services
from broadcaster.services.recall import recent_recalls

LISTED_KINDS = ("notice", "emergency", "live")  # an officer's items; relays and a bulletin's chimes are not
_STARTED = (DeliveryStatus.PLAYING, DeliveryStatus.DONE)


@dataclass
class AiredItem:
    id: int
    title: str
    text: str
    priority: str
    first_aired: datetime
    last_aired: datetime
    villages: list[str]
    audio_path: str | None  # "/audio/<sha>.<ext>" on the listener that serves the public pages
    audio_type: str
    audio_bytes: int  # the served file's size, what the podcast enclosure's length must say
    duration_ms: int | None
    speakers_played: int
    speakers: int
    recall: dict[str, Any] | None = None  # an emergency withdrawn after it sounded: by, at, reason
    times: int = 1  # how many airings (an emergency repeats)
    village_names: list[str] = field(default_factory=list)

    @property
    def emergency(self) -> bool:
        return self.priority == "emergency"


def villages(svc: Services) -> list[dict[str, str]]:
    with svc.db.session() as session:
        return [
            {"id": z.id, "name": z.name}
            for z in session.scalars(select(Zone).where(Zone.kind == ZoneKind.VILLAGE).order_by(Zone.id))
        ]


def village(svc: Services, village_id: str) -> dict[str, str] | None:
    with svc.db.session() as session:
        z = session.get(Zone, village_id)
        return {"id": z.id, "name": z.name} if z is not None and z.kind is ZoneKind.VILLAGE else None


def aired_items(
    svc: Services, village_id: str | None = None, *, announcement_id: int | None = None, limit: int = 30
) -> list[AiredItem]:
    """What aired lately (in `village_id`, or the whole commune), newest first (see the module)."""
    now = svc.clock.now()
    since = now - timedelta(days=svc.config.villagers.listen_days)
    q = (
        select(Broadcast.announcement_id, Broadcast.id, Broadcast.zone_id, Broadcast.start_at, Delivery.status)
        .join(Delivery, Delivery.broadcast_id == Broadcast.id)
        .join(Device, Device.id == Delivery.device_id)
        .where(
            Broadcast.announcement_id.is_not(None),
            Broadcast.kind.in_(LISTED_KINDS),
            Broadcast.start_at >= since,
            Broadcast.start_at <= now,
            Device.kind == DeviceKind.SPEAKER,
        )
    )
    if village_id is not None:
        q = q.where(Broadcast.zone_id == village_id)
    if announcement_id is not None:
        q = q.where(Broadcast.announcement_id == announcement_id)
    # Recalled after it aired: the recall is after `since` too. The first recall of each, by, when, why.
    recalls = {r["announcement"]: r for r in recent_recalls(svc, since)}  # newest first: the first wins
    with svc.db.session() as session:
        plays: dict[int, list[tuple[int, str, datetime, DeliveryStatus]]] = {}
        for a_id, b_id, zone, start, status in session.execute(q):
            if a_id is not None:
                plays.setdefault(a_id, []).append((b_id, zone, start, status))
        if not plays:
            return []
        items = {
            a.id: a
            for a in session.scalars(
                select(Announcement).where(
                    Announcement.id.in_(plays), Announcement.state == AnnouncementState.APPROVED
                )
            )
        }
        names = dict(session.execute(select(Zone.id, Zone.name)).all())
        out: list[AiredItem] = []
        for a_id, item in items.items():
            rows = plays[a_id]
            emergency = item.priority == "emergency"
            # an emergency counts once a speaker started it; anything else once one played it to the end
            counted = [r for r in rows if r[3] in (_STARTED if emergency else (DeliveryStatus.DONE,))]
            if not counted:
                continue
            record = recalls.get(a_id)
            if record is not None and not emergency:
                continue  # the commune took it back
            starts = sorted({r[2] for r in counted})
            zones = sorted({r[1] for r in counted})
            out.append(
                AiredItem(
                    id=a_id,
                    title=item.title,
                    text=item.text,
                    priority=item.priority,
                    first_aired=starts[0],
                    last_aired=starts[-1],
                    villages=zones,
                    village_names=[names.get(z, z) for z in zones],
                    duration_ms=item.audio_duration_ms,
                    speakers_played=len([r for r in rows if r[3] in _STARTED]),
                    speakers=len(rows),
                    recall=record,
                    times=len(starts),
                    **_audio(svc, item),
                )
            )
    out.sort(key=lambda i: (i.last_aired, i.id), reverse=True)
    return out[:limit]


def aired_item(svc: Services, announcement_id: int) -> AiredItem | None:
    found = aired_items(svc, announcement_id=announcement_id, limit=1)
    return found[0] if found else None


# As the audio route (api/routes/audio.py) serves them: the enclosure's type must be the served one.
_TYPES = {"mp3": "audio/mpeg", "ogg": "audio/ogg", "opus": "audio/ogg", "wav": "audio/ogg"}


def _audio(svc: Services, item: Announcement) -> dict[str, Any]:
    """Where the item's audio is served and its exact size; none when it is gone from the store (the
    store evicts what is no longer scheduled once it is full: the text stays listed)."""
    none: dict[str, Any] = {"audio_path": None, "audio_type": "", "audio_bytes": 0}
    if not item.audio_sha256 or item.audio_ext not in _TYPES:
        return none
    path = svc.audio.store.root / f"{item.audio_sha256}.{item.audio_ext}"
    try:
        size = path.stat().st_size
    except OSError:
        return none
    return {
        "audio_path": f"/audio/{item.audio_sha256}.{item.audio_ext}",
        "audio_type": _TYPES[item.audio_ext],
        "audio_bytes": size,
    }
