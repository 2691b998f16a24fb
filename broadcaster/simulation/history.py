"""A commune's broadcast history, made up: villages, speakers and LED boards, daily items and a relay, each
speaker's outcome, bulletin frames, and devices going away and coming back. For the period reports' hand
count (tests/broadcaster/services/test_period_report.py) and their benchmark (bench/reports.py).

Rows go in with Core executemany, in the shapes the daemon stores; `History` keeps what was written, so
a test can count the same deliveries in plain Python. Seeded: the same arguments make the same commune.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select

from broadcaster.db import (
    Announcement,
    Broadcast,
    BroadcastStatus,
    Database,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
    DeviceStatusEvent,
    Programme,
    Zone,
    ZoneKind,
)
from schedules.clock import LOCAL_TZ

SLOTS = (time(6, 0), time(11, 0), time(17, 0))  # the morning, noon and evening bulletins
FAILURES = ("download_failed: HTTP 404", "preempted", "rejected: bad signature", "hash_mismatch")
MISSES = ("no_ack", "expired_before_start")
HEARD = "played_s" in cast(Table, Delivery.__table__).c  # deliveries that say how long they were heard


@dataclass
class History:
    """What was written, row by row (dicts as inserted), for counting by hand."""

    villages: list[str] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    broadcasts: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def generate(
    db: Database,
    first: date,
    days: int,
    villages: int = 50,
    speakers: int = 2,
    items_per_day: int = 3,
    seed: int = 14,
    chunk: int = 20_000,
) -> History:
    """`days` commune days from `first`: `items_per_day` announcements a day (most to every village, some
    to one), a daily relay of the district station, a chime before each morning bulletin, each speaker's
    outcome (mostly played; some late, failed, missed or without an outcome; a few airings missed whole
    or recalled), and every device away now and then (minutes to a day)."""
    rng = random.Random(seed)
    h = History()
    start = datetime.combine(first, time(0), LOCAL_TZ).astimezone(UTC)
    zones = [{"id": "all", "name": "Xã mẫu", "kind": ZoneKind.COMMUNE, "parent_id": None}]
    for v in range(1, villages + 1):
        h.villages.append(f"thon-{v}")
        zones.append({"id": f"thon-{v}", "name": f"Thôn {v}", "kind": ZoneKind.VILLAGE, "parent_id": "all"})
    for village in h.villages:
        for s in range(1, speakers + 1):
            h.devices.append(_device(f"{village}-loa-{s}", DeviceKind.SPEAKER, village, start))
        h.devices.append(_device(f"{village}-led", DeviceKind.LED, village, start))
    by_village: dict[str, list[dict[str, Any]]] = {}
    for d in h.devices:
        by_village.setdefault(d["village_id"], []).append(d)

    announcements: list[dict[str, Any]] = []
    relay = {"id": 1, "kind": "relay", "title": "Thời sự VOV1", "targets": '["all"]', "recurrence": "06:00",
             "starts_on": first.isoformat(), "duration_ms": 1_800_000, "created_at": start, "created_by": "admin",
             "stream_url": "http://example.invalid/vov1"}  # fmt: skip
    bid = 0
    for day_index in range(days):
        day = first + timedelta(days=day_index)
        for k in range(items_per_day + 2):  # the items, the relay and the morning chime
            slot = SLOTS[k % len(SLOTS)]
            at = datetime.combine(day, slot, LOCAL_TZ).astimezone(UTC) + timedelta(minutes=5 * (k // len(SLOTS)))
            if k == items_per_day:
                kind, ann, prog, title, duration = "relay", None, 1, relay["title"], 1_800_000
                where = h.villages
            elif k == items_per_day + 1:
                kind, ann, prog, title, duration = "chime_open", None, None, "chime", 4_000
                at = datetime.combine(day, SLOTS[0], LOCAL_TZ).astimezone(UTC) - timedelta(seconds=10)
                where = h.villages
            else:
                ann = len(announcements) + 1
                title = f"Thông báo {ann}"
                announcements.append({"id": ann, "title": title, "text": title + ".", "created_at": at,
                                      "created_by": "can-bo"})  # fmt: skip
                kind = "emergency" if rng.random() < 0.02 else "notice"
                prog, duration = None, rng.randint(60, 300) * 1000
                where = h.villages if rng.random() < 0.6 else [rng.choice(h.villages)]
            airing = f"{kind}-{day_index}-{k}"
            for village in where:
                bid += 1
                roll = rng.random()
                status = (
                    BroadcastStatus.MISSED if roll < 0.02 else BroadcastStatus.CANCELLED if roll < 0.03
                    else BroadcastStatus.DONE
                )  # fmt: skip
                late = rng.random() < 0.03
                h.broadcasts.append({
                    "id": bid, "announcement_id": ann, "programme_id": prog, "title": title, "zone_id": village,
                    "start_at": at, "expires_at": at + timedelta(hours=2), "airing_id": airing, "kind": kind,
                    "duration_ms": duration, "status": status, "late": late,
                    "reason": "missed_validity" if status is BroadcastStatus.MISSED else "late: 40" if late else "",
                })  # fmt: skip
                if status is BroadcastStatus.MISSED:
                    continue
                for device in by_village[village]:
                    delivery = _delivery(rng, bid, device["id"], at, status)
                    if HEARD and kind == "relay" and delivery["status"] is DeliveryStatus.DONE:
                        delivery["played_s"] = rng.choice([1800.0, 1790.0, 1500.0])  # a stream that dropped
                    elif HEARD and kind == "relay" and delivery["status"] is DeliveryStatus.FAILED:
                        # never opened (nothing heard), or cut by an emergency after ten minutes (heard)
                        delivery["played_s"] = rng.choice([0.0, 600.0])
                    h.deliveries.append(delivery)

    for device in h.devices:
        t = start + timedelta(hours=rng.uniform(0, 24 * 15))
        end = start + timedelta(days=days)
        h.events.append({"device_id": device["id"], "at": start - timedelta(days=1), "online": True})
        while t < end:
            h.events.append({"device_id": device["id"], "at": t, "online": False})
            if rng.random() < 0.2:  # its last will, then the daemon's own note: one absence all the same
                h.events.append({"device_id": device["id"], "at": t + timedelta(seconds=1), "online": False})
            back = t + timedelta(minutes=rng.choice([3, 20, 90, 600, 1500]) * rng.uniform(0.5, 1.5))
            if back < end or rng.random() < 0.5:
                h.events.append({"device_id": device["id"], "at": back, "online": True})
                if rng.random() < 0.1:  # a status repeated: not a second absence
                    h.events.append({"device_id": device["id"], "at": back + timedelta(minutes=1), "online": True})
            t = back + timedelta(hours=rng.uniform(24, 24 * 30))

    with db.engine.begin() as conn:
        known = set(conn.execute(select(Zone.id)).scalars())  # the commune, made with the services
        zones = [z for z in zones if z["id"] not in known]
        for model, rows in (
            (Zone, zones), (Device, h.devices), (Programme, [relay]), (Announcement, announcements),
            (Broadcast, h.broadcasts), (Delivery, h.deliveries), (DeviceStatusEvent, h.events),
        ):  # fmt: skip
            table = cast(Table, model.__table__)
            for i in range(0, len(rows), chunk):
                conn.execute(insert(table), rows[i : i + chunk])
    return h


def _device(device_id: str, kind: DeviceKind, village: str, created: datetime) -> dict[str, Any]:
    return {"id": device_id, "kind": kind, "village_id": village, "name": device_id, "online": True,
            "created_at": created}  # fmt: skip


def _delivery(rng: random.Random, bid: int, device_id: str, at: datetime, status: BroadcastStatus) -> dict[str, Any]:
    if status is BroadcastStatus.CANCELLED:
        return {"broadcast_id": bid, "device_id": device_id, "status": DeliveryStatus.FAILED, "reason": "stopped",
                "start_error_ms": None, "updated_at": at, **({"played_s": None} if HEARD else {})}  # fmt: skip
    roll = rng.random()
    reason, error = "", None
    if roll < 0.88:
        state = DeliveryStatus.DONE
        error = rng.uniform(1500, 90_000) if rng.random() < 0.05 else rng.gauss(0, 2.0)
        if rng.random() < 0.02:
            error = None  # an old agent that did not say
    elif roll < 0.94:
        state, reason = DeliveryStatus.FAILED, rng.choice(FAILURES)
    elif roll < 0.98:
        state, reason = DeliveryStatus.EXPIRED, rng.choice(MISSES)
    else:
        state = rng.choice([DeliveryStatus.SENT, DeliveryStatus.PLAYING, DeliveryStatus.DOWNLOADED])
    return {"broadcast_id": bid, "device_id": device_id, "status": state, "reason": reason,
            "start_error_ms": error, "updated_at": at, **({"played_s": None} if HEARD else {})}  # fmt: skip
