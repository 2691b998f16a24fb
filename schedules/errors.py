"""One error type with a stable machine code and a Vietnamese sentence an officer can act on.

The code is for programs (API responses, tests, the database); the sentence is this package's own
default. The values in the sentence are also given as `params`, and a code said in several ways names
which with `variant`, so an application with a message catalogue can say the same in other languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ErrorCode(StrEnum):
    END_BEFORE_START = "end_before_start"
    NEVER_FIRES = "never_fires"
    UNKNOWN_ZONE = "unknown_zone"
    BAD_ZONE = "bad_zone"
    WINDOW_TOO_SHORT = "window_too_short"
    UNKNOWN_WINDOW = "unknown_window"
    BAD_RELAY_URL = "bad_relay_url"
    IN_QUIET_HOURS = "in_quiet_hours"
    IN_PAST = "in_past"
    BAD_DURATION = "bad_duration"
    BAD_RECURRENCE = "bad_recurrence"
    BAD_PRIORITY = "bad_priority"
    DUPLICATE_ID = "duplicate_id"
    BAD_ID = "bad_id"
    ALREADY_ON_AIR = "already_on_air"
    # Conflicts a plan reports (nothing is wrong with the request, the timeline is full):
    NO_FREE_SLOT = "no_free_slot"
    PUSHED_OUT = "pushed_out"
    MISSED_AFTER_EMERGENCY = "missed_after_emergency"
    RELAY_PREEMPTED = "relay_preempted"


class ScheduleError(ValueError):
    """Raised for input that can never be planned, whatever else is on the timeline."""

    def __init__(
        self,
        code: ErrorCode | str,
        message_vi: str,
        params: Mapping[str, str | int | float] | None = None,
        *,
        variant: str = "",
    ) -> None:
        self.code = ErrorCode(code)
        self.message_vi = message_vi
        self.params = dict(params or {})
        self.variant = variant
        super().__init__(f"{self.code.value}: {message_vi}")
