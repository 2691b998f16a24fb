"""Reading the start time an officer types, against a fixed clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from schedules.clock import LOCAL_TZ
from schedules.when import FORMS, Reading, WhenError, parse_when, read_time

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


# ---------------------------------------------------------------- what officers type

SATURDAY = datetime(2026, 12, 26, 9, 0, tzinfo=LOCAL_TZ)  # the day after Christmas, 09:00 on the office wall
MONDAY_EARLY = datetime(2026, 11, 23, 7, 0, tzinfo=LOCAL_TZ)
MONDAY_LATE = datetime(2026, 11, 23, 9, 0, tzinfo=LOCAL_TZ)


def _at(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=LOCAL_TZ)


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("17:30", SATURDAY, _at(2026, 12, 26, 17, 30)),
        ("7:30", MONDAY_EARLY, _at(2026, 11, 23, 7, 30)),
        ("7h30 tối", SATURDAY, _at(2026, 12, 26, 19, 30)),
        ("7 giờ rưỡi tối", SATURDAY, _at(2026, 12, 26, 19, 30)),
        ("5h chiều", SATURDAY, _at(2026, 12, 26, 17, 0)),
        ("12h trưa", SATURDAY, _at(2026, 12, 26, 12, 0)),
        ("27/12 7h30", SATURDAY, _at(2026, 12, 27, 7, 30)),
        ("7h30 27/12", SATURDAY, _at(2026, 12, 27, 7, 30)),
        ("lúc 7h ngày 28/12", SATURDAY, _at(2026, 12, 28, 7, 0)),
        ("28 tháng 12 7h", SATURDAY, _at(2026, 12, 28, 7, 0)),
        ("25/12/2027 7h30", SATURDAY, _at(2027, 12, 25, 7, 30)),
        ("5/1 7h", SATURDAY, _at(2027, 1, 5, 7, 0)),  # this year's 5/1 is long past: next year's
        ("ngày mai 7h", SATURDAY, _at(2026, 12, 27, 7, 0)),
        ("Ngay mai 7h", SATURDAY, _at(2026, 12, 27, 7, 0)),  # typed on a phone without diacritics
        ("7h sáng mai", SATURDAY, _at(2026, 12, 27, 7, 0)),
        ("sáng mai 7h30", SATURDAY, _at(2026, 12, 27, 7, 30)),
        ("ngày kia 8h", SATURDAY, _at(2026, 12, 28, 8, 0)),
        ("thứ hai 7h30", SATURDAY, _at(2026, 12, 28, 7, 30)),
        ("thu hai 7h30", SATURDAY, _at(2026, 12, 28, 7, 30)),
        ("T2 7h30", SATURDAY, _at(2026, 12, 28, 7, 30)),
        ("thứ bảy 10h", SATURDAY, _at(2026, 12, 26, 10, 0)),  # today, its hour still ahead
        ("thứ bảy 8h", SATURDAY, _at(2027, 1, 2, 8, 0)),  # today's 8:00 has passed: next Saturday
        ("chủ nhật 8h", SATURDAY, _at(2026, 12, 27, 8, 0)),
        ("thứ hai 7h30", MONDAY_EARLY, _at(2026, 11, 23, 7, 30)),  # on a Monday, before 7:30: today
        ("thứ hai 7h30", MONDAY_LATE, _at(2026, 11, 30, 7, 30)),  # on a Monday, after 7:30: next week
        ("thứ hai tuần sau 7h", MONDAY_EARLY, _at(2026, 11, 30, 7, 0)),
        ("7h thứ hai 28/12", SATURDAY, _at(2026, 12, 28, 7, 0)),  # weekday and date agree
        ("2026-12-27 07:30", SATURDAY, _at(2026, 12, 27, 7, 30)),
        ("2026-12-27T00:30:00Z", SATURDAY, _at(2026, 12, 27, 7, 30)),
        ("2026-12-27T07:30:00+07:00", SATURDAY, _at(2026, 12, 27, 7, 30)),
        ("10 phút nữa", SATURDAY, SATURDAY + timedelta(minutes=10)),
        ("sau 2 tiếng", SATURDAY, SATURDAY + timedelta(hours=2)),
    ],
)
def test_what_officers_type_is_read_on_the_communes_clock(text: str, now: datetime, expected: datetime) -> None:
    got = parse_when(text, now.astimezone(UTC))
    assert got == expected and got is not None and got.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "now", "day", "guessed"),
    [
        ("25/12", SATURDAY, date(2026, 12, 25), True),  # yesterday, this year's: see the refusal below
        ("5/1", SATURDAY, date(2027, 1, 5), True),
        ("29/2", datetime(2027, 12, 1, tzinfo=LOCAL_TZ), date(2028, 2, 29), True),  # none in 2027
        ("ngày mai", SATURDAY, date(2026, 12, 27), False),
        ("sáng mai", SATURDAY, date(2026, 12, 27), False),
        ("thứ hai", MONDAY_LATE, date(2026, 11, 23), False),  # a day: today is a Monday
        ("2026-12-27", SATURDAY, date(2026, 12, 27), False),
    ],
)
def test_a_day_without_an_hour_names_the_whole_day(text: str, now: datetime, day: date, guessed: bool) -> None:
    assert read_time(text, now) == Reading(None, day, guessed)


@pytest.mark.parametrize(
    ("text", "now", "key", "says"),
    [
        # 25/12 asked on 26/12: refused as past with next year spelled out, never silently a year late
        ("25/12 7h30", SATURDAY, "time_in_past.year", "25/12/2027"),
        ("7h", SATURDAY, "time_in_past", "07:00 26/12/2026"),  # not moved to tomorrow
        ("25/12", SATURDAY, "bad_time.no_clock", "25/12 7h30"),  # the example adds an hour
        ("ngày mai", SATURDAY, "bad_time.no_clock", "ngày mai 7h30"),
        ("17h sáng", SATURDAY, "bad_time.clock", "17h sáng"),
        ("2h tối", SATURDAY, "bad_time.clock", "2h tối"),
        ("31/2 7h", SATURDAY, "bad_time.date", "31/02"),
        ("thứ ba 28/12 7h", SATURDAY, "bad_time.weekday", "28/12/2026"),
        ("ngày mai thứ hai 7h", SATURDAY, "bad_time", "thứ hai 7h30"),
        ("tuần sau 7h", SATURDAY, "bad_time", "thứ hai 7h30"),
        ("7h 8h", SATURDAY, "bad_time", "thứ hai 7h30"),
        ("mai nhé", SATURDAY, "bad_time", "thứ hai 7h30"),
        ("sáng", SATURDAY, "bad_time", "ngày mai 7h"),
    ],
)
def test_what_cannot_be_a_start_is_refused_with_what_to_type(text: str, now: datetime, key: str, says: str) -> None:
    with pytest.raises(WhenError) as err:
        parse_when(text, now.astimezone(UTC))
    code, _, variant = key.partition(".")
    assert (err.value.code, err.value.variant) == (code, variant)
    assert says in err.value.message_vi


def test_an_unreadable_time_lists_every_form_understood() -> None:
    with pytest.raises(WhenError) as err:
        parse_when("chiều thứ mười", SATURDAY)
    assert err.value.params == {"text": "chiều thứ mười"}
    assert all(form in err.value.message_vi for form in FORMS)


def test_every_form_shown_to_officers_is_read() -> None:
    early = datetime(2026, 12, 20, 6, 0, tzinfo=LOCAL_TZ)  # before every hour the examples name
    readings = {form: read_time(form, early) for form in FORMS}
    assert readings.pop("now") is None
    assert all(r is not None and r.at is not None and r.at >= early for r in readings.values()), readings
