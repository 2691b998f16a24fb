"""What was broadcast, as the commune reports it upwards."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
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


def report(svc: Services, start: datetime, end: datetime) -> dict[str, Any]:
    """What was broadcast in a period, as the commune reports it upwards: items and plays."""
    with svc.db.session() as session:
        plays = session.execute(
            select(Broadcast.announcement_id, Broadcast.programme_id, func.count())
            .join(Delivery, Delivery.broadcast_id == Broadcast.id)
            .join(Device, Delivery.device_id == Device.id)
            .where(
                Delivery.status == DeliveryStatus.DONE,
                Device.kind == DeviceKind.SPEAKER,
                Broadcast.start_at >= start,
                Broadcast.start_at < end,
                Broadcast.kind.in_(["notice", "emergency", "relay", "live"]),
            )
            .group_by(Broadcast.announcement_id, Broadcast.programme_id)
        ).all()
        items = {(a, p) for a, p, _ in plays}
        total = sum(n for _, _, n in plays)
        relays = sum(n for a, p, n in plays if a is None)
    period = f"{to_local(start):%d/%m/%Y}–{to_local(end - timedelta(seconds=1)):%d/%m/%Y}"
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "items": len(items),
        "plays": total,
        "relay_plays": relays,
        "text": f"{len(items)} mục, {total} lượt phát ({period})",
    }


# ---------------------------------------------------------------- "41/43 loa đã phát"


PLAYED = frozenset({DeliveryStatus.PLAYING, DeliveryStatus.DONE})


@dataclass
class DeliverySummary:
    """How one airing went, per kind of device: the line an officer reads after a bulletin."""

    speakers: int = 0
    speakers_played: int = 0
    boards: int = 0
    boards_shown: int = 0
    not_played: dict[str, int] = field(default_factory=dict)  # reason -> speakers
    pending: int = 0
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
    """'Played' is PLAYING or DONE: the speaker started on air. A cut (preempted) item is not counted,
    nor one still queued; LED boards are counted apart because they show rather than play.

    Several ids make one summary: the planner stores an airing as one broadcast per village, and the
    officer asked for one bulletin, so "41/43" counts every village of it.
    """
    ids = [broadcast_ids] if isinstance(broadcast_ids, int) else list(broadcast_ids)
    rows = session.execute(
        select(Device.kind, Delivery.status, Delivery.reason, Delivery.start_error_ms)
        .join(Device, Delivery.device_id == Device.id)
        .where(Delivery.broadcast_id.in_(ids))
    ).all()
    out = DeliverySummary()
    errors: list[float] = []
    reasons: Counter[str] = Counter()
    for kind, status, reason, error_ms in rows:
        if kind is DeviceKind.LED:
            out.boards += 1
            out.boards_shown += status in PLAYED
            continue
        out.speakers += 1
        if status in PLAYED:
            out.speakers_played += 1
            if error_ms is not None:
                errors.append(abs(error_ms))
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
