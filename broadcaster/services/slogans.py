"""The commune's slogans (khẩu hiệu) on its LED boards, in turn, while nothing else is shown on them.

Officers and admins keep the list: a text no longer than a board can show (`[led] slogan_max_chars`),
active or not, an order, and optionally the zones whose boards show it (none: every board). Every
change is audited under the person who made it.

The running daemon asks `rotation_turn` every `[led] slogan_every_s` which slogan each board shows next
(broadcaster/runtime/slogans.py sends them, signed, through the outbox). A board is left alone while a
broadcast of its village is shown on it or is about to be: a board shows the newest text it was told
to start, so a slogan started then would cover the announcement; an announcement that starts while a
slogan is shown simply replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster.db import Broadcast, BroadcastStatus, Device, DeviceKind, Slogan, audit, villages_of
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal, require
from broadcaster.services.inputs import check_order, check_text, fits_sql_int
from broadcaster.services.zones import resolve_zones
from schedules.clock import to_local

FIELDS = frozenset({"text", "zones", "active", "order"})
LED_SHOW_MIN = timedelta(seconds=5)  # a broadcast's title stays on a board at least this long (dispatch/bodies.py)
MARGIN = timedelta(seconds=3)  # clocks and the network: a board may start a text a little early or late

Key = tuple[int, int]  # a slogan's place in the rotation: (position, id)


@dataclass(frozen=True)
class SloganShow:
    """One board's next slogan."""

    device_id: str
    diacritics: bool
    slogan_id: int
    key: Key
    text: str


def slogan_view(slogan: Slogan) -> dict[str, Any]:
    return {
        "id": slogan.id,
        "text": slogan.text,
        "active": slogan.active,
        "order": slogan.position,
        "zones": json.loads(slogan.zones or "[]"),
        "updated_by": slogan.updated_by,
        "updated_at": slogan.updated_at.isoformat(),
        "updated_at_local": to_local(slogan.updated_at).strftime("%H:%M %d/%m/%Y"),
    }


def _check_text(svc: Services, text: str | None) -> str:
    value = " ".join((text or "").split()) if isinstance(text, str) else ""
    if not value:
        raise LoaError("slogan_empty", {})
    limit = svc.config.led.slogan_max_chars
    if len(value) > limit:
        raise LoaError("slogan_too_long", {"max": limit})
    return check_text(value, "text", limit)


def _check_zones(session: Session, zones: list[str] | None) -> list[str]:
    if not zones:
        return []  # every board
    return [z.id for z in resolve_zones(session, list(dict.fromkeys(zones)))]


def _slogan(session: Session, slogan_id: int) -> Slogan:
    found = session.get(Slogan, slogan_id) if fits_sql_int(slogan_id) else None
    if found is None:
        raise LoaError("not_found.slogan", {"id": slogan_id}, status=404)
    return found


def list_slogans(svc: Services) -> list[dict[str, Any]]:
    """Every slogan, in the order the boards show them."""
    with svc.db.session() as session:
        return [slogan_view(s) for s in session.scalars(select(Slogan).order_by(Slogan.position, Slogan.id))]


def add_slogan(
    svc: Services,
    text: str,
    *,
    zones: list[str] | None = None,
    active: bool = True,
    order: int | None = None,
    actor: str,
    by: Principal | None = None,
) -> dict[str, Any]:
    """A new slogan, last in the rotation unless `order` places it (smaller first)."""
    require(by, "compose")
    value = _check_text(svc, text)
    check_order(order)
    now = svc.clock.now()
    with svc.db.session() as session:
        zone_ids = _check_zones(session, zones)
        if order is None:
            order = (session.scalar(select(func.max(Slogan.position))) or 0) + 1
        slogan = Slogan(
            text=value, active=bool(active), position=order, zones=json.dumps(zone_ids),
            created_at=now, created_by=actor, updated_at=now, updated_by=actor,
        )  # fmt: skip
        session.add(slogan)
        session.flush()
        audit(session, now, actor, "slogan.add", slogan=slogan.id, text=value, zones=zone_ids, active=slogan.active)
        return slogan_view(slogan)


def edit_slogan(
    svc: Services, slogan_id: int, changes: Mapping[str, Any], *, actor: str, by: Principal | None = None
) -> dict[str, Any]:
    """Change what is in `changes` (text, zones, active, order); the log keeps what it was."""
    require(by, "compose")
    unknown = set(changes) - FIELDS
    if unknown:
        raise LoaError("invalid_request", {"fields": ", ".join(sorted(unknown))}, status=422)
    value = _check_text(svc, changes["text"]) if "text" in changes else None
    order = check_order(changes.get("order"))
    now = svc.clock.now()
    with svc.db.session() as session:
        slogan = _slogan(session, slogan_id)
        before = slogan_view(slogan)
        if "zones" in changes:
            slogan.zones = json.dumps(_check_zones(session, changes["zones"]))
        if value is not None:
            slogan.text = value
        if "active" in changes and changes["active"] is not None:
            slogan.active = bool(changes["active"])
        if order is not None:
            slogan.position = order
        slogan.updated_at, slogan.updated_by = now, actor
        after = slogan_view(slogan)
        audit(session, now, actor, "slogan.edit", slogan=slogan.id,
              before={k: before[k] for k in ("text", "active", "order", "zones")},
              after={k: after[k] for k in ("text", "active", "order", "zones")})  # fmt: skip
        return after


def delete_slogan(svc: Services, slogan_id: int, *, actor: str, by: Principal | None = None) -> dict[str, Any]:
    require(by, "compose")
    now = svc.clock.now()
    with svc.db.session() as session:
        slogan = _slogan(session, slogan_id)
        gone = slogan_view(slogan)
        session.delete(slogan)
        audit(session, now, actor, "slogan.delete", slogan=slogan_id, text=gone["text"])
        return gone


def rotation_turn(svc: Services, last_shown: Mapping[str, Key], valid: timedelta) -> list[SloganShow]:
    """Each online LED board's next slogan: the first active one for its village after the one it showed
    last (`last_shown`, by (position, id), so edits and deletions between turns do no harm), from the
    first again after the last. A board is skipped while a broadcast of its village may be shown on it
    between now and `valid` from now (when a slogan sent now could still start)."""
    now = svc.clock.now()
    with svc.db.session() as session:
        slogans = list(
            session.scalars(select(Slogan).where(Slogan.active.is_(True)).order_by(Slogan.position, Slogan.id))
        )
        if not slogans:
            return []
        boards = session.execute(
            select(Device.id, Device.village_id, Device.diacritics)
            .where(Device.kind == DeviceKind.LED, Device.online.is_(True))
            .order_by(Device.id)
        ).all()
        if not boards:
            return []
        reach: dict[int, set[str] | None] = {}
        zones_of: dict[str, set[str]] = {}
        for s in slogans:
            ids = json.loads(s.zones or "[]")
            if not ids:
                reach[s.id] = None
                continue
            villages: set[str] = set()
            for zone in resolve_zones(session, ids):
                villages |= zones_of.setdefault(zone.id, set(villages_of(session, zone)))
            reach[s.id] = villages
        busy = _busy_villages(session, now, valid)
    shows = []
    for device_id, village, diacritics in boards:
        if village in busy:
            continue
        mine = [s for s in slogans if reach[s.id] is None or village in (reach[s.id] or set())]
        if not mine:
            continue
        last = last_shown.get(device_id)
        following = [s for s in mine if last is None or (s.position, s.id) > last]
        nxt = (following or mine)[0]
        shows.append(SloganShow(device_id, bool(diacritics), nxt.id, (nxt.position, nxt.id), nxt.text))
    return shows


def _busy_villages(session: Session, now: datetime, valid: timedelta) -> set[str]:
    """Villages with a broadcast whose text a board may show between now and `valid` from now."""
    rows = session.execute(
        select(Broadcast.zone_id, Broadcast.start_at, Broadcast.duration_ms).where(
            Broadcast.status.not_in([BroadcastStatus.CANCELLED, BroadcastStatus.MISSED]),
            Broadcast.start_at <= now + valid + MARGIN,
            Broadcast.start_at >= now - timedelta(hours=6),
        )
    ).all()
    return {
        zone
        for zone, start, duration_ms in rows
        if start + max(LED_SHOW_MIN, timedelta(milliseconds=duration_ms)) + MARGIN >= now
    }
