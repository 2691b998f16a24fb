"""The heading of a bulletin: "Bản tin sáng ngày 25 tháng 5".

It is written the way a person writes it, with digits, because it is both shown on LED boards and
spoken; reading numbers aloud is the job of `audio.normalize`, which reads it "ngày hai mươi lăm
tháng năm" like any other text, so there is one number reader in loa, not two.
"""

from __future__ import annotations

from datetime import datetime

from schedules.clock import to_local, utc


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
    """ "Bản tin sáng ngày 25 tháng 5" for a bulletin starting at `when`.

    `when` is an instant (naive means UTC, as everywhere in loa); the words follow the local
    clock, so 23:30 UTC on the 24th is the morning bulletin of the 25th.
    """
    local = to_local(utc(when))
    return f"Bản tin {part_of_day(when)} ngày {local.day} tháng {local.month}"
