"""Reading the start time a person typed ("17:30", "2026-11-25 06:00", "+5m", "now").

Wall-clock forms are Asia/Ho_Chi_Minh, because that is the clock on the commune office's wall; the
result is always aware UTC. A bare "17:30" means today: if today's 17:30 has passed it is an error
rather than a silent "tomorrow", so an officer never schedules a notice a day late by accident.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from schedules.clock import LOCAL_TZ


class WhenError(ValueError):
    """`code` for programs, `message_vi` to show; `params` are the values in it and `variant` tells
    apart the ways one code is said, for an application that speaks other languages too."""

    def __init__(
        self, code: str, message_vi: str, params: Mapping[str, str | int] | None = None, *, variant: str = ""
    ) -> None:
        super().__init__(f"{code}: {message_vi}")
        self.code = code
        self.message_vi = message_vi
        self.params = dict(params or {})
        self.variant = variant


# The furthest ahead a start may be: what a commune plans (a year's holidays) with room to spare. Further
# is a typo, and past year 9999 the calendar itself overflows.
MAX_AHEAD = timedelta(days=400)
_RELATIVE = re.compile(r"^\+\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|giây|phút|giờ|ngày)?$")
_CLOCK = re.compile(r"^(\d{1,2})[:hH](\d{2})?(?::(\d{2}))?$")
_UNITS = {"s": 1, "giây": 1, "m": 60, "phút": 60, "h": 3600, "giờ": 3600, "d": 86400, "ngày": 86400, None: 60}


def parse_when(text: str | None, now: datetime, *, allow_past_s: float = 0.0) -> datetime | None:
    """None for "as soon as possible" (no text, "now", "ngay"); otherwise an aware UTC datetime."""
    if text is None:
        return None
    raw = text.strip()
    if raw.lower() in ("", "now", "asap", "ngay", "ngay lập tức"):
        return None
    try:
        when = _parse(raw, now)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, WhenError):
            raise
        # a date the calendar cannot hold in this zone (0001-01-01), a relative time beyond it (+99999999999d)
        raise WhenError(
            "bad_time",
            f"Không hiểu thời điểm {raw!r}. Ví dụ hợp lệ: 17:30, 2026-11-25 06:00, +5m, now.",
            {"text": raw},
        ) from exc
    if when > now + MAX_AHEAD:
        local = when.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")
        raise WhenError(
            "time_too_far",
            f"Thời điểm {local} quá xa; chỉ hẹn trước được tối đa {MAX_AHEAD.days} ngày.",
            {"time": local, "days": MAX_AHEAD.days},
        )
    if when < now - timedelta(seconds=allow_past_s):
        local = when.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")
        raise WhenError(
            "time_in_past", f"Thời điểm {local} đã qua; hãy chọn một thời điểm trong tương lai.", {"time": local}
        )
    return when


def _parse(raw: str, now: datetime) -> datetime:
    if m := _RELATIVE.match(raw):
        return now + timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    if m := _CLOCK.match(raw):
        hour, minute, second = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise WhenError("bad_time", f"Giờ không hợp lệ: {raw!r}.", {"text": raw}, variant="clock")
        local_now = now.astimezone(LOCAL_TZ)
        local = local_now.replace(hour=hour, minute=minute, second=second, microsecond=0)
        return local.astimezone(UTC)
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%H:%M %d/%m/%Y"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=LOCAL_TZ).astimezone(UTC)
        except ValueError:
            pass
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WhenError(
            "bad_time",
            f"Không hiểu thời điểm {raw!r}. Ví dụ hợp lệ: 17:30, 2026-11-25 06:00, +5m, now.",
            {"text": raw},
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=LOCAL_TZ)
    return when.astimezone(UTC)
