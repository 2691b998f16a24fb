"""The spoken heading of a bulletin, written out in words.

Text-to-speech engines read "25/5" unpredictably ("hai lăm trên năm"), so the heading carries
no digits at all. The reader is local on purpose: `schedules` must not depend on `audio`.
"""

from __future__ import annotations

from datetime import datetime

from schedules.clock import to_local, utc

_UNITS = ("", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_MONTHS = (
    "", "một", "hai", "ba", "tư", "năm", "sáu", "bảy", "tám", "chín", "mười", "mười một", "mười hai",
)  # fmt: skip


def read_day_number(n: int) -> str:
    """1–31 as spoken: 15 "mười lăm", 21 "hai mươi mốt", 24 "hai mươi tư", 25 "hai mươi lăm"."""
    if not 1 <= n <= 31:
        raise ValueError(f"day of month out of range: {n}")
    tens, unit = divmod(n, 10)
    if tens == 0:
        return _UNITS[unit]
    head = "mười" if tens == 1 else f"{_UNITS[tens]} mươi"
    if unit == 0:
        return head
    if unit == 5:
        tail = "lăm"
    elif unit == 1 and tens >= 2:
        tail = "mốt"
    elif unit == 4 and tens >= 2:
        tail = "tư"
    else:
        tail = _UNITS[unit]
    return f"{head} {tail}"


def read_date(day: int, month: int) -> str:
    """ "ngày mồng năm tháng sáu": days 1–10 take "mồng", as announcers say them."""
    if not 1 <= month <= 12:
        raise ValueError(f"month out of range: {month}")
    prefix = "mồng " if day <= 10 else ""
    return f"ngày {prefix}{read_day_number(day)} tháng {_MONTHS[month]}"


def part_of_day(when: datetime) -> str:
    """sáng before 11:00, trưa 11–13, chiều 13–18, tối from 18:00 (local clock)."""
    hour = to_local(utc(when)).hour
    if hour < 11:
        return "sáng"
    if hour < 13:
        return "trưa"
    if hour < 18:
        return "chiều"
    return "tối"


def bulletin_heading(when: datetime) -> str:
    """ "Bản tin sáng ngày hai mươi lăm tháng năm" for a bulletin starting at `when`.

    `when` is an instant (naive means UTC, as everywhere in loa); the words follow the local
    clock, so 23:30 UTC on the 24th is the morning bulletin of the 25th.
    """
    local = to_local(utc(when))
    return f"Bản tin {part_of_day(when)} {read_date(local.day, local.month)}"
