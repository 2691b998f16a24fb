"""Recurring times of day, reasoned about in local time and handed out in UTC.

People say "06:00 and 17:00 every weekday" meaning the clock on the commune office wall,
so days and times of day are local (Asia/Ho_Chi_Minh); every instant returned is UTC
because that is what is stored and compared.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from schedules.clock import LOCAL_TZ, to_local, utc
from schedules.errors import ErrorCode, ScheduleError


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKDAYS = "weekdays"  # Monday to Friday, the days the commune office works
    WEEKLY = "weekly"  # on the days listed in `Recurrence.weekdays`
    EVERY_N_DAYS = "every_n_days"  # counted from `Recurrence.start`


WEEKDAY_NAMES_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")


@dataclass(frozen=True)
class Recurrence:
    """Which local days fire, and at which local times of day.

    `end` is inclusive: "until 31/5" means 31/5 still fires, as people expect.
    `weekdays` uses Python's numbering (Monday = 0 ... Sunday = 6).
    """

    times: tuple[time, ...]
    start: date
    end: date | None = None
    frequency: Frequency = Frequency.DAILY
    weekdays: frozenset[int] = field(default_factory=frozenset)
    interval: int = 1

    def __post_init__(self) -> None:
        if any(t.tzinfo is not None for t in self.times):
            raise ScheduleError(
                ErrorCode.BAD_RECURRENCE, "Giờ phát phải là giờ địa phương, không kèm múi giờ.", {}, variant="timezone"
            )
        object.__setattr__(self, "times", tuple(sorted(set(self.times))))
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        if not self.times:
            raise ScheduleError(ErrorCode.NEVER_FIRES, "Lịch lặp không có giờ phát nào.", {}, variant="no_times")
        if self.end is not None and self.end < self.start:
            raise ScheduleError(
                ErrorCode.END_BEFORE_START,
                f"Ngày kết thúc {self.end:%d/%m/%Y} trước ngày bắt đầu {self.start:%d/%m/%Y}.",
                {"start": f"{self.start:%d/%m/%Y}", "end": f"{self.end:%d/%m/%Y}"},
                variant="dates",
            )
        if self.interval < 1:
            raise ScheduleError(ErrorCode.BAD_RECURRENCE, "Khoảng lặp phải từ 1 ngày trở lên.", {}, variant="interval")
        if self.interval != 1 and self.frequency is not Frequency.EVERY_N_DAYS:
            raise ScheduleError(
                ErrorCode.BAD_RECURRENCE, "Chỉ lịch 'mỗi N ngày' mới có khoảng lặp khác 1.", {}, variant="interval_kind"
            )
        if any(d not in range(7) for d in self.weekdays):
            raise ScheduleError(
                ErrorCode.BAD_RECURRENCE, "Thứ trong tuần phải từ 0 (Thứ Hai) đến 6.", {}, variant="weekday"
            )
        if self.weekdays and self.frequency is not Frequency.WEEKLY:
            raise ScheduleError(
                ErrorCode.BAD_RECURRENCE, "Chỉ lịch hằng tuần mới chọn thứ trong tuần.", {}, variant="weekdays_kind"
            )
        if not self._fires_within_a_week():
            raise ScheduleError(ErrorCode.NEVER_FIRES, "Lịch lặp không có lần phát nào trong khoảng ngày đã chọn.", {})

    # Constructors that read like what an officer says.
    @classmethod
    def daily(cls, times: Iterable[time], start: date, end: date | None = None) -> Recurrence:
        return cls(tuple(times), start, end)

    @classmethod
    def for_days(cls, times: Iterable[time], start: date, days: int) -> Recurrence:
        """ "06:00 and 17:00 for 3 days": `days` consecutive days starting on `start`."""
        if days < 1:
            raise ScheduleError(ErrorCode.NEVER_FIRES, "Số ngày phát phải từ 1 trở lên.", {}, variant="days")
        return cls(tuple(times), start, start + timedelta(days=days - 1))

    @classmethod
    def on_weekdays(cls, times: Iterable[time], start: date, end: date | None = None) -> Recurrence:
        return cls(tuple(times), start, end, Frequency.WEEKDAYS)

    @classmethod
    def weekly(cls, days: Iterable[int], times: Iterable[time], start: date, end: date | None = None) -> Recurrence:
        return cls(tuple(times), start, end, Frequency.WEEKLY, frozenset(days))

    @classmethod
    def every_n_days(cls, n: int, times: Iterable[time], start: date, end: date | None = None) -> Recurrence:
        return cls(tuple(times), start, end, Frequency.EVERY_N_DAYS, interval=n)

    def fires_on(self, day: date) -> bool:
        if day < self.start or (self.end is not None and day > self.end):
            return False
        match self.frequency:
            case Frequency.DAILY:
                return True
            case Frequency.WEEKDAYS:
                return day.weekday() < 5
            case Frequency.WEEKLY:
                return day.weekday() in self.weekdays
            case Frequency.EVERY_N_DAYS:
                return (day - self.start).days % self.interval == 0
        return False  # pragma: no cover - the match is exhaustive

    def occurrences(self, start: datetime, end: datetime) -> list[datetime]:
        return occurrences(self, start, end)

    def _fires_within_a_week(self) -> bool:
        # Every frequency repeats with a period of at most a week (EVERY_N_DAYS fires on `start`).
        return any(self.fires_on(self.start + timedelta(days=i)) for i in range(7))


def local_instant(day: date, at: time) -> datetime:
    """The UTC instant when local clocks show `at` on `day`."""
    return datetime.combine(day, at, tzinfo=LOCAL_TZ).astimezone(UTC)


def occurrences(rule: Recurrence, start: datetime, end: datetime) -> list[datetime]:
    """Firings in [start, end), as aware UTC datetimes in order."""
    start, end = utc(start), utc(end)
    if end <= start:
        return []
    first = max(rule.start, to_local(start).date() - timedelta(days=1))
    last = to_local(end).date()
    if rule.end is not None:
        last = min(last, rule.end)
    found: list[datetime] = []
    day = first
    while day <= last:
        if rule.fires_on(day):
            found.extend(i for i in (local_instant(day, t) for t in rule.times) if start <= i < end)
        day += timedelta(days=1)
    return found


# --- A compact spec people can type --------------------------------------------------------

# The longest series a person may ask for in days ("trong N ngày", "mỗi N ngày"): ten years. Beyond it
# the calendar overflows long before any airing, so it is refused as a typo rather than computed.
MAX_SERIES_DAYS = 3660
_TIME = re.compile(r"\b([01]?\d|2[0-3])[:h]([0-5]\d)\b")
_DATE = r"(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4})"
_FROM = re.compile(r"\b(?:from|từ)\s+" + _DATE)
_UNTIL = re.compile(r"\b(?:until|to|đến)\s+" + _DATE)
_FOR_DAYS = re.compile(r"\b(?:for|trong)\s+(\d+)\s+(?:days?|ngày)")
_EVERY_N = re.compile(r"\b(?:every|mỗi|cách)\s+(\d+)\s+(?:days|ngày)")
_WEEKDAYS = re.compile(r"\b(?:weekdays|ngày thường|ngày làm việc)\b")
_WEEKLY = re.compile(r"\b(?:weekly|hằng tuần|hàng tuần|mỗi tuần)\b")
_DAY_WORDS: dict[str, int] = {
    "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
    "t2": 0, "t3": 1, "t4": 2, "t5": 3, "t6": 4, "t7": 5, "cn": 6,
    "thứ 2": 0, "thứ 3": 1, "thứ 4": 2, "thứ 5": 3, "thứ 6": 4, "thứ 7": 5,
    "thứ hai": 0, "thứ ba": 1, "thứ tư": 2, "thứ năm": 3, "thứ sáu": 4, "thứ bảy": 5,
    "chủ nhật": 6,
}  # fmt: skip
_DAY = re.compile(r"(?<!\w)(" + "|".join(sorted(map(re.escape, _DAY_WORDS), key=len, reverse=True)) + r")(?!\w)")


def _parse_date(text: str) -> date:
    if "-" in text:
        return date.fromisoformat(text)
    d, m, y = (int(x) for x in text.split("/"))
    return date(y, m, d)


def parse_recurrence(spec: str, *, today: date) -> Recurrence:
    """Read specs like "06:00 và 17:00 trong 3 ngày", "weekly mon,fri 17:30 from 2025-06-02",
    "mỗi 2 ngày 06:00 từ 30/05/2025 đến 10/06/2025" or "weekdays 06:30".

    Without "from"/"từ" the series starts `today` (a local date).
    """
    text = unicodedata.normalize("NFC", spec).lower().strip()
    try:
        start = _parse_date(m.group(1)) if (m := _FROM.search(text)) else today
        end = _parse_date(m.group(1)) if (m := _UNTIL.search(text)) else None
    except (ValueError, OverflowError) as e:
        raise ScheduleError(
            ErrorCode.BAD_RECURRENCE, f"Ngày không hợp lệ trong '{spec}'.", {"spec": spec}, variant="date"
        ) from e
    if any(abs((d - today).days) > MAX_SERIES_DAYS for d in (start, end) if d is not None):
        raise ScheduleError(  # a typo, and near year 9999 the calendar would overflow computing it
            ErrorCode.BAD_RECURRENCE, f"Ngày không hợp lệ trong '{spec}'.", {"spec": spec}, variant="date"
        )
    if m := _FOR_DAYS.search(text):
        if end is not None:
            raise ScheduleError(
                ErrorCode.BAD_RECURRENCE,
                "Chỉ dùng một trong hai: 'đến ngày' hoặc 'trong N ngày'.",
                {},
                variant="two_ends",
            )
        days = int(m.group(1))
        if days < 1:
            raise ScheduleError(ErrorCode.NEVER_FIRES, "Số ngày phát phải từ 1 trở lên.", {}, variant="days")
        if days > MAX_SERIES_DAYS:
            raise ScheduleError(
                ErrorCode.BAD_RECURRENCE,
                f"Một đợt phát dài nhất {MAX_SERIES_DAYS} ngày; với lịch không hạn, bỏ 'trong N ngày'.",
                {"max": MAX_SERIES_DAYS},
                variant="too_long",
            )
        end = start + timedelta(days=days - 1)
    times = tuple(time(int(h), int(mi)) for h, mi in _TIME.findall(text))
    if not times:
        raise ScheduleError(
            ErrorCode.NEVER_FIRES, f"Không thấy giờ phát (HH:MM) trong '{spec}'.", {"spec": spec}, variant="no_time_in"
        )
    if m := _EVERY_N.search(text):
        if int(m.group(1)) > MAX_SERIES_DAYS:
            raise ScheduleError(
                ErrorCode.BAD_RECURRENCE,
                f"Khoảng lặp dài nhất {MAX_SERIES_DAYS} ngày.",
                {"max": MAX_SERIES_DAYS},
                variant="interval_too_long",
            )
        return Recurrence.every_n_days(int(m.group(1)), times, start, end)
    if _WEEKDAYS.search(text):
        return Recurrence.on_weekdays(times, start, end)
    if _WEEKLY.search(text):
        days_named = frozenset(_DAY_WORDS[w] for w in _DAY.findall(text))
        if not days_named:
            raise ScheduleError(ErrorCode.NEVER_FIRES, "Lịch hằng tuần chưa chọn thứ nào.", {}, variant="no_weekday")
        return Recurrence.weekly(days_named, times, start, end)
    return Recurrence.daily(times, start, end)
