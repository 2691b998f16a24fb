"""Reading the start time an officer types, against a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schedules.clock import LOCAL_TZ
from schedules.when import WhenError, parse_when

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=LOCAL_TZ).astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17:30", datetime(2026, 11, 25, 17, 30, tzinfo=LOCAL_TZ)),
        ("17h", datetime(2026, 11, 25, 17, 0, tzinfo=LOCAL_TZ)),
        ("2026-11-26 06:00", datetime(2026, 11, 26, 6, 0, tzinfo=LOCAL_TZ)),
        ("26/11/2026 06:00", datetime(2026, 11, 26, 6, 0, tzinfo=LOCAL_TZ)),
        ("2026-11-25T03:00:00Z", datetime(2026, 11, 25, 10, 0, tzinfo=LOCAL_TZ)),
        ("+90s", NOW + timedelta(seconds=90)),
        ("+5m", NOW + timedelta(minutes=5)),
        ("+2 giờ", NOW + timedelta(hours=2)),
        ("+1d", NOW + timedelta(days=1)),
    ],
)
def test_readable_times(text: str, expected: datetime) -> None:
    got = parse_when(text, NOW)
    assert got == expected and got is not None and got.tzinfo is not None


@pytest.mark.parametrize("text", [None, "", "now", "ngay"])
def test_as_soon_as_possible(text: str | None) -> None:
    assert parse_when(text, NOW) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("08:59", "time_in_past"),
        ("25:00", "bad_time"),
        ("sáng mai", "bad_time"),
        ("0001-01-01 00:00", "bad_time"),  # before UTC's year 1 once moved from the commune's zone
        ("+99999999999d", "bad_time"),  # beyond what a calendar holds
        ("9999-12-31 23:59", "time_too_far"),
        ("+401d", "time_too_far"),
    ],
)
def test_bad_times_say_why(text: str, code: str) -> None:
    with pytest.raises(WhenError) as err:
        parse_when(text, NOW)
    assert err.value.code == code and err.value.message_vi
