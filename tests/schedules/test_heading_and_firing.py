from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from audio.normalize import normalize
from schedules import Firing, bulletin_heading, classify_firing
from tests.schedules.helpers import local


@pytest.mark.parametrize(
    ("when", "heading"),
    [
        (local(2025, 5, 25, 6), "Bản tin sáng ngày 25 tháng 5"),
        (local(2025, 5, 25, 10, 59), "Bản tin sáng ngày 25 tháng 5"),
        (local(2025, 5, 25, 11), "Bản tin trưa ngày 25 tháng 5"),
        (local(2025, 5, 25, 12, 59), "Bản tin trưa ngày 25 tháng 5"),
        (local(2025, 5, 25, 13), "Bản tin chiều ngày 25 tháng 5"),
        (local(2025, 5, 25, 17, 59), "Bản tin chiều ngày 25 tháng 5"),
        (local(2025, 5, 25, 18), "Bản tin tối ngày 25 tháng 5"),
        (local(2025, 4, 1, 19, 30), "Bản tin tối ngày 1 tháng 4"),
        # 23:30 UTC on the 24th is 06:30 on the 25th in Hanoi:
        (datetime(2025, 5, 24, 23, 30, tzinfo=UTC), "Bản tin sáng ngày 25 tháng 5"),
    ],
)
def test_bulletin_heading(when: datetime, heading: str) -> None:
    assert bulletin_heading(when) == heading


def test_headings_are_read_out_as_an_announcer_would() -> None:
    """The heading is spoken through the one number reader loa has, audio.normalize."""
    assert normalize(bulletin_heading(local(2025, 5, 25, 6))) == "Bản tin sáng ngày hai mươi lăm tháng năm"
    assert normalize(bulletin_heading(local(2025, 4, 1, 19))) == "Bản tin tối ngày mùng một tháng tư"
    start = local(2024, 1, 1)
    for hours in range(0, 366 * 24, 5):
        assert not re.search(r"\d", normalize(bulletin_heading(start + timedelta(hours=hours))))


START = local(2025, 5, 25, 17)
VALID = local(2025, 5, 25, 19)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (START - timedelta(seconds=1), Firing.ON_TIME),  # the timer woke a little early
        (START, Firing.ON_TIME),
        (START + timedelta(seconds=10), Firing.ON_TIME),  # tolerance boundary is inclusive
        (START + timedelta(seconds=10, microseconds=1), Firing.LATE),
        (VALID - timedelta(microseconds=1), Firing.LATE),
        (VALID, Firing.MISSED),  # validity end is exclusive
        (VALID + timedelta(days=1), Firing.MISSED),
    ],
)
def test_classify_firing_boundaries(now: datetime, expected: Firing) -> None:
    assert classify_firing(START, VALID, now) is expected


def test_classify_firing_with_duration_needs_a_whole_play() -> None:
    five = timedelta(minutes=5)
    assert classify_firing(START, VALID, VALID - five, duration=five) is Firing.LATE
    assert classify_firing(START, VALID, VALID - five + timedelta(seconds=1), duration=five) is Firing.MISSED


def test_classify_firing_stale_beats_tolerance_and_custom_tolerance() -> None:
    short = START + timedelta(seconds=5)
    assert classify_firing(START, short, START + timedelta(seconds=6)) is Firing.MISSED
    assert classify_firing(START, VALID, START + timedelta(seconds=3), tolerance=timedelta(seconds=2)) is Firing.LATE


def test_classify_firing_accepts_naive_utc() -> None:
    naive = START.astimezone(UTC).replace(tzinfo=None)
    assert classify_firing(naive, VALID, START + timedelta(minutes=1)) is Firing.LATE
