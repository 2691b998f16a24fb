"""What every value a person sends must be before a service uses it: text that can be stored and read
out, numbers within what the database and the calendar hold.

Checked at the services, not only at the API, because the CLI and the web desk come through the same
door. Each refusal is a LoaError with a code; nothing has been written when it is raised.
"""

from __future__ import annotations

import math

from broadcaster.errors import LoaError

MAX_TEXT_CHARS = 20_000  # about 40 minutes read out: longer is an article for a bulletin, not a notice
MAX_TITLE_CHARS = 200  # shown on LED boards and in lists; the column holds 300
MAX_SQL_INT = 2**63 - 1  # what PostgreSQL's BIGINT and SQLite's INTEGER hold
MAX_ORDER = 10**9  # an officer's order among clashing items: any number a person would type
MAX_PROGRAMME_S = 24 * 3600.0  # a relay or bulletin longer than a day is a typo


def check_text(value: str, field: str, max_chars: int) -> str:
    """Text that UTF-8 can hold (a lone surrogate cannot be stored, spoken or signed) and not too long."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LoaError("bad_text", {"field": field, "position": exc.start}) from exc
    if len(value) > max_chars:
        if field == "title":
            raise LoaError("title_too_long", {"max": max_chars})
        if field == "recurrence":
            raise LoaError("recurrence_too_long", {"max": max_chars})
        raise LoaError("text_too_long", {"max": max_chars})
    return value


def check_order(order: int | None) -> int | None:
    if order is not None and not -MAX_ORDER <= order <= MAX_ORDER:
        raise LoaError("bad_order", {"max": MAX_ORDER})
    return order


def fits_sql_int(value: int) -> bool:
    """Whether an id a person typed can be looked up at all (a larger one names nothing)."""
    return -MAX_SQL_INT <= value <= MAX_SQL_INT


def check_seconds(value: float, max_s: float = MAX_PROGRAMME_S) -> float:
    """A duration in seconds: finite, above zero, at most `max_s`."""
    if not math.isfinite(value) or not 0 < value <= max_s:
        raise LoaError("bad_duration.programme", {"max": int(max_s)})
    return value
