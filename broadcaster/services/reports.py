"""What was broadcast, as the commune reports it upwards."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from broadcaster.db import (
    Broadcast,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
)
from broadcaster.messages import reason_label
from broadcaster.services import Services
from schedules.clock import to_local

# ---------------------------------------------------------------- what was heard

STREAM_KINDS = ("relay", "live")  # played from a stream: heard for as long as the stream came through


def heard(status: DeliveryStatus, played_s: float | None, kind: str) -> bool:
    """Whether a speaker's delivery was heard, by one rule for every count an officer reads (the
    summaries, the timeline's airings, the report): an item played to its end (`done`; a device that
    says it played 0 s played nothing), or a stream that relayed some seconds, however it ended (a relay
    cut by an emergency was heard until then). A device that does not say `played_s` (older firmware) is
    taken at its word: `done` is heard."""
    if status is DeliveryStatus.DONE and (played_s is None or played_s > 0):
        return True
    return kind in STREAM_KINDS and played_s is not None and played_s > 0


def heard_sql() -> ColumnElement[bool]:
    """`heard`, in SQL, over Delivery joined to Broadcast."""
    said = Delivery.played_s
    return or_(
        and_(Delivery.status == DeliveryStatus.DONE, or_(said.is_(None), said > 0)),
        and_(Broadcast.kind.in_(STREAM_KINDS), said > 0),
    )


def report(svc: Services, start: datetime, end: datetime) -> dict[str, Any]:
    """What was broadcast in a period, as the commune reports it upwards: items and the plays heard;
    relays with the seconds they really relayed (a relay whose stream never opened counts for nothing)."""
    relay = Broadcast.announcement_id.is_(None)
    with svc.db.session() as session:
        plays = session.execute(
            select(
                Broadcast.announcement_id,
                Broadcast.programme_id,
                func.count(),
                func.coalesce(func.sum(case((relay, Delivery.played_s), else_=0.0)), 0.0),
            )
            .join(Delivery, Delivery.broadcast_id == Broadcast.id)
            .join(Device, Delivery.device_id == Device.id)
            .where(
                heard_sql(),
                Device.kind == DeviceKind.SPEAKER,
                Broadcast.start_at >= start,
                Broadcast.start_at < end,
                Broadcast.kind.in_(["notice", "emergency", "relay", "live"]),
            )
            .group_by(Broadcast.announcement_id, Broadcast.programme_id)
        ).all()
        items = {(a, p) for a, p, _, _ in plays}
        total = sum(n for _, _, n, _ in plays)
        relays = sum(n for a, _, n, _ in plays if a is None)
        relayed_s = round(sum(float(s) for a, _, _, s in plays if a is None), 1)
    period = f"{to_local(start):%d/%m/%Y}–{to_local(end - timedelta(seconds=1)):%d/%m/%Y}"
    text = f"{len(items)} mục, {total} lượt phát"
    if relays:
        text += f", trong đó {relays} lượt tiếp sóng ({_seconds_vi(relayed_s)})"
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "items": len(items),
        "plays": total,
        "relay_plays": relays,
        "relay_seconds": relayed_s,
        "text": f"{text} ({period})",
    }


def _seconds_vi(seconds: float) -> str:
    """'45 giây', '12 phút 5 giây', '2 giờ 3 phút': how long something was heard."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "giờ"), (minutes, "phút"), (secs, "giây")) if n]
    return " ".join(parts[:2]) if parts else "0 giây"


# ---------------------------------------------------------------- "41/43 loa đã phát"


PLAYED = frozenset({DeliveryStatus.PLAYING, DeliveryStatus.DONE})  # on air, or was (see `heard`)


@dataclass
class DeliverySummary:
    """How one airing went, per kind of device: the line an officer reads after a bulletin."""

    speakers: int = 0
    speakers_played: int = 0
    boards: int = 0
    boards_shown: int = 0
    not_played: dict[str, int] = field(default_factory=dict)  # reason -> speakers
    pending: int = 0
    relayed_s: float | None = None  # a stream's seconds heard, summed over its speakers (None: no stream)
    start_error_p50_ms: float | None = None
    start_error_p99_ms: float | None = None
    start_error_max_ms: float | None = None

    def text_vi(self) -> str:
        parts = [f"{self.speakers_played}/{self.speakers} loa đã phát"]
        if self.boards:
            parts.append(f"{self.boards_shown}/{self.boards} bảng LED đã hiển thị")
        if self.pending:
            parts.append(f"{self.pending} loa chưa phát")
        if self.not_played:
            reasons = sorted(self.not_played.items())
            parts.append("không phát: " + ", ".join(f"{n} {reason_label(r, 'vi')}" for r, n in reasons))
        if self.relayed_s is not None:
            parts.append(f"đã tiếp sóng {_seconds_vi(self.relayed_s)}")
        if self.start_error_p99_ms is not None:
            parts.append(f"lệch khởi phát p99 {self.start_error_p99_ms:.1f} ms")
        return "; ".join(parts)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile: with 500 speakers, p99 is the 5th worst, a real device's number."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def delivery_summary(session: Session, broadcast_ids: int | Collection[int]) -> DeliverySummary:
    """'Played' is on air now (PLAYING) or heard (`heard`: played to its end, or a stream that relayed
    something). A cut (preempted) item is not counted, nor a relay whose stream never opened, nor one
    still queued; LED boards are counted apart because they show rather than play.

    Several ids make one summary: the planner stores an airing as one broadcast per village, and the
    officer asked for one bulletin, so "41/43" counts every village of it.
    """
    ids = [broadcast_ids] if isinstance(broadcast_ids, int) else list(broadcast_ids)
    rows = session.execute(
        select(
            Device.kind, Delivery.status, Delivery.reason, Delivery.start_error_ms, Delivery.played_s, Broadcast.kind
        )
        .join(Device, Delivery.device_id == Device.id)
        .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
        .where(Delivery.broadcast_id.in_(ids))
    ).all()
    out = DeliverySummary()
    errors: list[float] = []
    reasons: Counter[str] = Counter()
    for kind, status, reason, error_ms, played_s, what in rows:
        if kind is DeviceKind.LED:
            out.boards += 1
            out.boards_shown += status in PLAYED
            continue
        out.speakers += 1
        if what in STREAM_KINDS and played_s is not None:
            out.relayed_s = (out.relayed_s or 0.0) + played_s
        if status is DeliveryStatus.PLAYING or heard(status, played_s, what):
            out.speakers_played += 1
            if error_ms is not None:
                errors.append(abs(error_ms))
        elif status is DeliveryStatus.DONE:
            reasons["nothing_played"] += 1  # `done`, but the device says not a second came out
        elif status in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED):
            reasons[_reason_key(status, reason)] += 1
        else:
            out.pending += 1
    out.not_played = dict(reasons)
    out.start_error_p50_ms = percentile(errors, 50)
    out.start_error_p99_ms = percentile(errors, 99)
    out.start_error_max_ms = max(errors) if errors else None
    return out


def _reason_key(status: DeliveryStatus, reason: str) -> str:
    """Group free-text reasons by their code ('download_failed: HTTP 404' -> 'download_failed')."""
    code = (reason or status.value).split(":", 1)[0].strip()
    return code if code else status.value
