"""What a device may report, checked before anything of the daemon acts on it.

Every byte on the `ack`, `status` and `tele` topics comes from a device, and a device may be stolen,
buggy or hostile. One bad message once killed the daemon's MQTT thread (a nest of brackets that made
`json.loads` recurse past Python's limit) and one out-of-range number made the database refuse a whole
batch of other devices' acks. So a report passes three gates, cheapest first: its size and nesting
depth, read from the bytes before any parsing; strict JSON (no NaN or Infinity, no number that would not
fit); then the fields the daemon stores, each with its type and range (docs/protocol.md, "What the
daemon does with bad input from devices"). What fails is refused whole as a `BadReport`, whose `code` is
the counter it goes under in `Metrics`; what passes becomes a small typed record that the database
always accepts.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from broadcaster.protocol import ACK_STATES, MAX_PAYLOAD_BYTES

MAX_DEPTH = 8  # reports are flat objects; room for what firmware adds, far below json's recursion limit
MAX_COMMAND_ID = 64
MAX_REASON = 300  # the width of the `reason` column
MAX_FIRMWARE = 64  # the width of the `firmware` column
SIGNAL_DBM = (-150, 0)  # RSSI/RSRP of any radio a speaker carries
VOLUME = (0, 100)
START_ERROR_MS = 86_400_000.0  # a day either way: a start later than that is not a start
PLAYED_S = 86_400.0  # a play's seconds heard: no item or relay lasts a day
# A clock offset is stored whatever it is (a speaker whose clock never got set says 1970: the one to
# warn about), up to what any clock can be off; a round trip over a second is not kept by a device.
CLOCK_OFFSET_MS = 1e13
CLOCK_DELAY_MS = 60_000.0
DEVICE_KINDS = ("speaker", "led")

_BRACKET = re.compile(rb"[\[\]{}]")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_COMMAND_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_COMMAND_ID}}}")
# C0 controls and DEL would reach an officer's terminal through `loa status`; U+0000 and unpaired
# surrogates are refused by PostgreSQL and SQLite, and one of them used to fail a whole batch.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class BadReport(ValueError):
    """A device message refused whole; `code` names its counter (GET /api/v1/metrics)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Ack:
    cmd: str
    state: str
    reason: str = ""
    start_error_ms: float | None = None
    played_s: float | None = None


@dataclass(frozen=True, slots=True)
class Status:
    online: bool
    firmware: str | None = None
    volume: int | None = None
    signal: int | None = None
    clock_offset_ms: float | None = None  # the daemon's clock minus the device's (docs/protocol.md)
    clock_delay_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Tele:
    volume: int | None = None
    signal: int | None = None


Report = Ack | Status | Tele


def too_deep(payload: bytes | bytearray, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than `limit`, read from the bytes without parsing: Python's
    json recurses once per level and a 2 kB nest of brackets raises RecursionError. Nearly every report
    has fewer brackets than the limit and is answered by two counts; only the rest are scanned, with
    strings blanked out first so a bracket inside a reason does not count."""
    if payload.count(b"[") + payload.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', payload)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit a float")
    return value


def parse_payload(payload: bytes | bytearray) -> dict[str, Any]:
    """The JSON object in a device message, or BadReport: over 64 KiB (`oversized_payload`), nested
    deeper than MAX_DEPTH (`too_deep`), or not strict UTF-8 JSON with an object at the top, NaN,
    Infinity and numbers beyond a float or 4,300 digits included (`malformed_json`)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadReport("oversized_payload", f"{len(payload)} bytes")
    if too_deep(payload):
        raise BadReport("too_deep", f"nested deeper than {MAX_DEPTH}")
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise BadReport("malformed_json", str(exc)[:100]) from None
    if not isinstance(data, dict):
        raise BadReport("malformed_json", f"a JSON {type(data).__name__}, not an object")
    return data


def check_report(kind: str, data: dict[str, Any]) -> Report:
    """The fields the daemon stores, checked (the rest is ignored: firmware may add fields)."""
    if kind == "ack":
        return _ack(data)
    if kind == "status":
        return _status(data)
    if kind == "tele":
        return _tele(data)
    raise ValueError(f"not a device report: {kind!r}")


def _ack(data: dict[str, Any]) -> Ack:
    cmd, state = data.get("cmd"), data.get("state")
    if not isinstance(cmd, str) or not _COMMAND_ID.fullmatch(cmd):
        raise BadReport("malformed_ack", "cmd")
    if state not in ACK_STATES:
        raise BadReport("malformed_ack", "state")
    error = _number(data, "start_error_ms", "malformed_ack", -START_ERROR_MS, START_ERROR_MS)
    played = _number(data, "played_s", "malformed_ack", 0.0, PLAYED_S)
    return Ack(cmd, state, _text(data, "reason", MAX_REASON, "malformed_ack") or "", error, played)


def _status(data: dict[str, Any]) -> Status:
    online = data.get("online")
    if not isinstance(online, bool):
        raise BadReport("malformed_status", "online")
    if "kind" in data and data["kind"] not in DEVICE_KINDS:
        raise BadReport("malformed_status", "kind")
    return Status(
        online,
        _text(data, "firmware", MAX_FIRMWARE, "malformed_status"),
        _integer(data, "volume", "malformed_status", *VOLUME),
        _integer(data, "signal", "malformed_status", *SIGNAL_DBM),
        _number(data, "clock_offset_ms", "malformed_status", -CLOCK_OFFSET_MS, CLOCK_OFFSET_MS),
        _number(data, "clock_delay_ms", "malformed_status", 0.0, CLOCK_DELAY_MS),
    )


def _tele(data: dict[str, Any]) -> Tele:
    return Tele(
        _integer(data, "volume", "malformed_tele", *VOLUME),
        _integer(data, "signal", "malformed_tele", *SIGNAL_DBM),
    )


def _number(data: dict[str, Any], key: str, code: str, low: float, high: float) -> float | None:
    if key not in data:
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadReport(code, key)
    return float(value)


def _integer(data: dict[str, Any], key: str, code: str, low: int, high: int) -> int | None:
    value = _number(data, key, code, low, high)
    if value is None:
        return None
    if not value.is_integer():  # 80.0 is an integer to JSON Schema, and to us
        raise BadReport(code, key)
    return int(value)


def _text(data: dict[str, Any], key: str, limit: int, code: str) -> str | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str) or len(value) > limit or _UNSAFE_TEXT.search(value):
        raise BadReport(code, key)
    return value
