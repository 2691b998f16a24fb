"""Reading the time a person typed: "17:30", "7h30 tối", "25/12 7h30", "ngày mai 7h", "thứ hai 7h30",
"10 phút nữa", "+5m", "now", or ISO 8601 as a program sends it.

Wall-clock forms are Asia/Ho_Chi_Minh, because that is the clock on the commune office's wall; an
instant returned is always aware UTC. Officers type on phones, often without diacritics ("thu hai
7h30", "ngay mai 7h") and with whichever word order comes to mind ("7h sáng mai", "sáng mai 7h"):
both are read. What each form means, decided here once so the CLI, the API and the web desk agree:

- A bare hour ("17:30", "7h") is today. If today's 17:30 has passed it is refused, not moved to
  tomorrow, so an officer never schedules a notice a day late by accident.
- "thứ hai 7h30" is the next Monday whose 7:30 is still ahead: on a Monday before 7:30 that is today,
  after it a week later. "thứ hai tuần sau" is the Monday of next week (weeks start on Monday).
- A day and month without a year ("25/12") is this year's, unless this year's passed more than half a
  year ago, then next year's ("5/1" typed on 28/12 is January next year). One that passed within the
  last half year ("25/12" typed on 26/12) is refused as past with a hint to write the year: it is far
  more often a slip of the finger than a plan a year ahead, and airing a year late is not a fix.
- A day without an hour ("25/12", "ngày mai", "thứ hai") names the whole day: a range (a timeline
  from/to) takes it as is, a start time is refused with an example that adds the hour.

Pure: no I/O, no clock of its own (`now` is handed in).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

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


# What the reader understands, one example of each, as a person would type them: the examples an error
# points to, and what a form on the web desk can show under its time field.
FORMS: tuple[str, ...] = (
    "17:30",
    "7h30",
    "7h tối",
    "25/12 7h30",
    "ngày mai 7h",
    "thứ hai 7h30",
    "2026-12-25 07:30",
    "+10m",
    "10 phút nữa",
    "now",
)
FORMS_TEXT = ", ".join(FORMS)

# The furthest ahead a start may be: what a commune plans (a year's holidays) with room to spare. Further
# is a typo, and past year 9999 the calendar itself overflows.
MAX_AHEAD = timedelta(days=400)
# How long ago a day and month without a year may have passed and still be taken as this year's (then
# refused as past) rather than next year's.
HALF_YEAR = timedelta(days=183)


@dataclass(frozen=True)
class Reading:
    """What a typed time names: an instant, or (no hour in it) a whole local day.

    `year_guessed`: the text gave a day and month but no year; `day` or `at` carry the year chosen.
    """

    at: datetime | None  # aware UTC; None when only a day was named
    day: date | None = None  # the local day, when no hour was given
    year_guessed: bool = False


_ASAP = {"now", "asap", "ngay", "ngay lập tức", "ngay lap tuc", "bây giờ", "bay gio", "ngay bây giờ", "ngay bay gio"}
_RELATIVE = re.compile(r"^\+\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|giây|phút|giờ|ngày)?$")
_UNITS = {"s": 1, "giây": 1, "m": 60, "phút": 60, "h": 3600, "giờ": 3600, "d": 86400, "ngày": 86400, None: 60}
# "10 phút nữa", "sau 2 tiếng", on the text without diacritics
_LATER = re.compile(r"^(sau\s+)?(\d+)\s*(giay|phut|gio|tieng|ngay)(\s+nua)?$")
_LATER_UNITS = {"giay": 1, "phut": 60, "gio": 3600, "tieng": 3600, "ngay": 86400}
_ISO_DAY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")

# The officer's words, on the text lowercased and without diacritics; each token must end where a word
# ends. Longer alternatives first, so "thu hai" is not read as "t" + ...
_END = r"(?![a-z0-9])"
_CLOCK = re.compile(
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?" + _END  # 7:30, 07:30:15
    + r"|(\d{1,2})\s*(?:h|g|gio)(?:\s*(\d{1,2})\s*(?:phut|p)?|\s*(ruoi))?" + _END  # 7h, 7h30, 7 giờ 30 phút, 7h rưỡi
)  # fmt: skip
_DATE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})" + _END  # 2026-12-25
    + r"|(\d{1,2})[/-](\d{1,2})(?:[/-](\d{4}|\d{2}))?" + _END  # 25/12, 25/12/2026, 25-12-26 (not "17.30")
    + r"|(\d{1,2})\s+thang\s+(\d{1,2})(?:\s+nam\s+(\d{4}))?" + _END  # 25 tháng 12 (năm 2026)
)  # fmt: skip
_WEEKDAYS = {
    "thu hai": 0, "thu 2": 0, "t2": 0, "thu ba": 1, "thu 3": 1, "t3": 1, "thu tu": 2, "thu 4": 2, "t4": 2,
    "thu nam": 3, "thu 5": 3, "t5": 3, "thu sau": 4, "thu 6": 4, "t6": 4, "thu bay": 5, "thu 7": 5, "t7": 5,
    "chu nhat": 6, "cn": 6,
}  # fmt: skip
_DAY_WORDS = {"hom nay": 0, "nay": 0, "ngay mai": 1, "mai": 1, "ngay kia": 2, "ngay mot": 2, "mot": 2, "kia": 2}
_WEEK_WORDS = {"tuan nay": 0, "tuan sau": 1, "tuan toi": 1}
# sáng, trưa, chiều, tối: the hours typed that the word puts in the afternoon (+12), and those it leaves as
# typed; any other hour contradicts it.
_PERIOD_HOURS = {
    "sang": (range(0), range(0, 13)),
    "trua": (range(1, 4), range(10, 15)),
    "chieu": (range(1, 12), range(12, 19)),
    "toi": (range(5, 12), range(17, 24)),
}
_FILLER = ("luc", "vao", "ngay")  # "lúc 7h", "vào thứ hai", "ngày 25/12"


def _words(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted(map(re.escape, names), key=len, reverse=True)
    return re.compile("(" + "|".join(alternatives) + ")" + _END)


_WEEKDAY = _words(_WEEKDAYS)
_DAY_WORD = _words(_DAY_WORDS)
_WEEK_WORD = _words(_WEEK_WORDS)
_PERIOD = _words(_PERIOD_HOURS)
_FILL = _words(_FILLER)


def _fold(text: str) -> str:
    """Lowercase, without diacritics ("Thứ Hai" -> "thu hai"), one space between words."""
    out = []
    for ch in unicodedata.normalize("NFC", text).lower():
        ch = "d" if ch == "đ" else unicodedata.normalize("NFD", ch)[0]
        out.append(ch)
    return " ".join("".join(out).replace(",", " ").split())


def _unreadable(raw: str) -> WhenError:
    return WhenError("bad_time", f"Không hiểu thời điểm '{raw}'. Các cách viết được: {FORMS_TEXT}.", {"text": raw})


def read_time(text: str | None, now: datetime) -> Reading | None:
    """What `text` names, against `now` (an aware datetime; the commune's wall clock is read from it):
    None for "as soon as possible" (no text, "now", "ngay"), else a Reading. Raises WhenError
    `bad_time` (its sentence lists FORMS) for text it cannot read or a day or hour that does not exist.
    Nothing is refused for being past or far here: that depends on what the time is for."""
    if text is None:
        return None
    raw = " ".join(unicodedata.normalize("NFC", text).split())
    if raw.lower() in ("", *_ASAP):
        return None
    try:
        return _read(raw, now)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, WhenError):
            raise
        # a date the calendar cannot hold in this zone (0001-01-01), a relative time beyond it (+99999999999d)
        raise _unreadable(raw) from exc


def parse_when(text: str | None, now: datetime, *, allow_past_s: float = 0.0) -> datetime | None:
    """A start time: None for "as soon as possible", otherwise an aware UTC instant, neither past
    (beyond `allow_past_s`) nor more than MAX_AHEAD away, and with an hour in it."""
    reading = read_time(text, now)
    if reading is None:
        return None
    raw = " ".join(unicodedata.normalize("NFC", text or "").split())
    if reading.at is None:
        raise WhenError(
            "bad_time",
            f"'{raw}' là một ngày, chưa có giờ phát; hãy thêm giờ, ví dụ: {raw} 7h30.",
            {"text": raw},
            variant="no_clock",
        )
    when = reading.at
    if when > now + MAX_AHEAD:
        local = when.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")
        raise WhenError(
            "time_too_far",
            f"Thời điểm {local} quá xa; chỉ hẹn trước được tối đa {MAX_AHEAD.days} ngày.",
            {"time": local, "days": MAX_AHEAD.days},
        )
    if when < now - timedelta(seconds=allow_past_s):
        local_when = when.astimezone(LOCAL_TZ)
        local = local_when.strftime("%H:%M %d/%m/%Y")
        if reading.year_guessed:
            later = f"{local_when:%d/%m}/{local_when.year + 1}"
            raise WhenError(
                "time_in_past",
                f"Thời điểm {local} đã qua. Nếu định phát vào năm sau, hãy ghi cả năm, ví dụ: {later}.",
                {"time": local, "next": later},
                variant="year",
            )
        raise WhenError(
            "time_in_past", f"Thời điểm {local} đã qua; hãy chọn một thời điểm trong tương lai.", {"time": local}
        )
    return when


def _read(raw: str, now: datetime) -> Reading:
    if m := _RELATIVE.match(raw.lower()):
        return Reading(now + timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)]))
    folded = _fold(raw)
    if (m := _LATER.match(folded)) and (m.group(1) or m.group(4)):
        return Reading(now + timedelta(seconds=int(m.group(2)) * _LATER_UNITS[m.group(3)]))
    iso = _iso(raw)
    if iso is not None:
        return iso
    return _officer(raw, folded, now)


def _iso(raw: str) -> Reading | None:
    """ISO 8601 as programs send it; an offset-less one is the commune's wall clock."""
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if _ISO_DAY.match(raw):
        return Reading(None, when.date())
    if when.tzinfo is None:
        when = when.replace(tzinfo=LOCAL_TZ)
    return Reading(when.astimezone(UTC))


@dataclass
class _Parts:
    """The pieces found in the officer's words, each at most once."""

    clock: tuple[int, int, int] | None = None
    period: str | None = None
    date: tuple[int, int, int | None] | None = None  # day, month, year (None: not typed)
    offset: int | None = None  # days from today ("ngày mai")
    weekday: int | None = None
    week: int | None = None  # 0 this week, 1 next week


def _officer(raw: str, folded: str, now: datetime) -> Reading:
    parts = _Parts()
    pos = 0
    while pos < len(folded):
        if folded[pos] == " ":
            pos += 1
            continue
        end = _token(folded, pos, parts, raw)
        if end is None:
            raise _unreadable(raw)
        pos = end
    return _resolve(parts, raw, now.astimezone(LOCAL_TZ))


def _once(parts: _Parts, name: str, value: object, raw: str) -> None:
    if getattr(parts, name) is not None:
        raise _unreadable(raw)  # two hours, two days: which one?
    setattr(parts, name, value)


def _token(s: str, pos: int, parts: _Parts, raw: str) -> int | None:
    """Read one piece at `pos` into `parts`; returns where it ends, or None for a word we do not know."""
    if m := _CLOCK.match(s, pos):
        if m.group(1) is not None:
            clock = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
        else:
            clock = (int(m.group(4)), 30 if m.group(6) else int(m.group(5) or 0), 0)
        _once(parts, "clock", clock, raw)
        return m.end()
    if m := _DATE.match(s, pos):
        g = m.groups()
        if g[0] is not None:
            day: tuple[int, int, int | None] = (int(g[2]), int(g[1]), int(g[0]))
        elif g[3] is not None:
            year = None if g[5] is None else int(g[5]) + (2000 if len(g[5]) == 2 else 0)
            day = (int(g[3]), int(g[4]), year)
        else:
            day = (int(g[6]), int(g[7]), None if g[8] is None else int(g[8]))
        _once(parts, "date", day, raw)
        return m.end()
    for pattern, name, table in (
        (_WEEKDAY, "weekday", _WEEKDAYS),
        (_WEEK_WORD, "week", _WEEK_WORDS),
        (_DAY_WORD, "offset", _DAY_WORDS),
    ):
        if m := pattern.match(s, pos):
            _once(parts, name, table[m.group(1)], raw)
            return m.end()
    if m := _PERIOD.match(s, pos):
        _once(parts, "period", m.group(1), raw)
        return m.end()
    if m := _FILL.match(s, pos):
        return m.end()
    return None


def _resolve(parts: _Parts, raw: str, local_now: datetime) -> Reading:
    if (parts.offset is not None and (parts.date or parts.weekday is not None)) or (
        parts.week is not None and (parts.weekday is None or parts.date is not None)
    ):
        raise _unreadable(raw)  # "25/12 ngày mai", "tuần sau" alone: which day?
    if parts.clock is None and parts.date is None and parts.offset is None and parts.weekday is None:
        raise _unreadable(raw)  # "sáng", or nothing we know
    at = _time_of_day(parts, raw)
    today = local_now.date()
    guessed = False
    if parts.date is not None:
        day_no, month, year = parts.date
        guessed = year is None
        day = _calendar_day(raw, day_no, month, year, today)
        if parts.weekday is not None and day.weekday() != parts.weekday:
            shown = f"{day:%d/%m/%Y}"
            raise WhenError(  # "thứ hai 25/12" when 25/12 is a Friday: which of the two was meant?
                "bad_time",
                f"Ngày {shown} không rơi vào thứ đã ghi trong '{raw}'; hãy sửa lại ngày hoặc thứ.",
                {"text": raw, "date": shown},
                variant="weekday",
            )
    elif parts.offset is not None:
        day = today + timedelta(days=parts.offset)
    elif parts.weekday is not None:
        if parts.week is not None:
            monday = today - timedelta(days=today.weekday()) + timedelta(weeks=parts.week)
            day = monday + timedelta(days=parts.weekday)
        else:
            day = today + timedelta(days=(parts.weekday - today.weekday()) % 7)
            if at is not None and datetime.combine(day, at, LOCAL_TZ) <= local_now:
                day += timedelta(weeks=1)  # this weekday's hour has passed: next week's
    else:
        day = today
    if at is None:
        return Reading(None, day, guessed)
    return Reading(datetime.combine(day, at, LOCAL_TZ).astimezone(UTC), None, guessed)


def _calendar_day(raw: str, day: int, month: int, year: int | None, today: date) -> date:
    """The date typed; without a year, this year's unless it passed more than half a year ago (or
    does not exist this year: 29/2), then next year's."""
    years = [year] if year is not None else [today.year, today.year + 1]
    for y in years:
        try:
            found = date(y, month, day)
        except ValueError:
            continue
        if year is not None or y != today.year or found >= today - HALF_YEAR:
            return found
    shown = f"{day:02d}/{month:02d}" + (f"/{year}" if year is not None else "")
    raise WhenError(
        "bad_time", f"'{raw}': không có ngày {shown} trong lịch.", {"text": raw, "date": shown}, variant="date"
    )


def _time_of_day(parts: _Parts, raw: str) -> time | None:
    """The hour on the wall clock; "7h tối" is 19:00, and a period that contradicts the hour
    ("17h sáng", "2h tối") is refused rather than guessed."""
    if parts.clock is None:
        return None
    hour, minute, second = parts.clock
    if parts.period is not None and hour <= 23:
        afternoon, as_typed = _PERIOD_HOURS[parts.period]
        hour = hour + 12 if hour in afternoon else hour if hour in as_typed else 24
    if hour > 23 or minute > 59 or second > 59:
        raise WhenError("bad_time", f"Giờ không hợp lệ: '{raw}'.", {"text": raw}, variant="clock")
    return time(hour, minute, second)
