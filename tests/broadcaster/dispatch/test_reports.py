"""What a device may report, checked before the daemon acts on it: the gates, one by one, and their
agreement with the schemas firmware writers read in docs/protocol.md."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from broadcaster import protocol
from broadcaster.dispatch.reports import (
    MAX_DEPTH,
    Ack,
    BadReport,
    Status,
    Tele,
    check_report,
    parse_payload,
    too_deep,
)
from tests.broadcaster.protocol.test_doc import SCHEMAS

NEST = b"[" * 1000 + b"]" * 1000  # the 2,000-byte ack that killed the daemon's MQTT thread
CMD = "7d3c1a52-9a4e-4f0e-8a59-2c1b8f0d6e11"
AT = "2026-11-25T10:30:00.002Z"


def test_nesting_is_measured_on_the_bytes_before_any_parsing() -> None:
    with pytest.raises(RecursionError):
        json.loads(NEST)  # what the daemon used to do with it
    assert too_deep(NEST)
    assert too_deep(b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1))
    assert not too_deep(b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH)
    assert not too_deep(protocol.encode(protocol.make_ack(CMD, "done", protocol.parse_time(AT))))
    # brackets inside strings are text, escaped quotes included
    assert not too_deep(b'{"reason": "' + b"[" * 1000 + b'"}')
    assert not too_deep(b'{"reason": "\\"' + b"{" * 1000 + b'"}')
    with pytest.raises(BadReport) as refused:
        parse_payload(NEST)
    assert refused.value.code == "too_deep"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (NEST, "too_deep"),
        (b'{"v": 2, "x": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"}", "too_deep"),
        (b"x" * (protocol.MAX_PAYLOAD_BYTES + 1), "oversized_payload"),
        (b'{"v": 2, "reason": "' + b"a" * 1_000_000 + b'"}', "oversized_payload"),
        (b'{"v": 2, "signal": NaN}', "malformed_json"),
        (b'{"v": 2, "signal": -Infinity}', "malformed_json"),
        (b'{"v": 2, "start_error_ms": 1e999}', "malformed_json"),  # a float that is not finite
        (b'{"v": 2, "signal": ' + b"9" * 5000 + b"}", "malformed_json"),  # beyond Python's int parsing
        (b"\xff\xfe{}", "malformed_json"),
        (b"[]", "malformed_json"),
        (b'"online"', "malformed_json"),
        (b"{not json", "malformed_json"),
    ],
)
def test_a_payload_the_daemon_cannot_parse_safely_is_refused_with_its_code(payload: bytes, code: str) -> None:
    with pytest.raises(BadReport) as refused:
        parse_payload(payload)
    assert refused.value.code == code


def test_what_passes_is_a_typed_record_the_database_accepts() -> None:
    ack = check_report("ack", {"v": 2, "cmd": CMD, "state": "playing", "at": AT, "start_error_ms": 1.8})
    assert ack == Ack(CMD, "playing", "", 1.8)
    status = check_report("status", {"v": 2, "online": True, "firmware": "loa-agent/0.2", "volume": 80.0, "x": [1]})
    assert status == Status(True, "loa-agent/0.2", 80, None) and isinstance(status.volume, int)
    assert check_report("tele", {"v": 2, "at": AT, "signal": -71, "uptime_s": 86400}) == Tele(None, -71)


BAD = [
    ("ack", {"cmd": CMD, "state": "exploded"}),
    ("ack", {"cmd": 7, "state": "done"}),
    ("ack", {"cmd": "a" * 65, "state": "done"}),
    ("ack", {"cmd": "x\u0000", "state": "done"}),
    ("ack", {"state": "done"}),
    ("ack", {"cmd": CMD, "state": "done", "start_error_ms": 1e308}),
    ("ack", {"cmd": CMD, "state": "done", "start_error_ms": "12"}),
    ("ack", {"cmd": CMD, "state": "done", "start_error_ms": True}),
    ("ack", {"cmd": CMD, "state": "failed", "reason": "x" * 301}),
    ("ack", {"cmd": CMD, "state": "failed", "reason": "\u0000"}),
    ("ack", {"cmd": CMD, "state": "failed", "reason": "\ud800"}),  # from the JSON text "\ud800"
    ("ack", {"cmd": CMD, "state": "failed", "reason": "\x1b[2J"}),  # a terminal escape for `loa status`
    ("ack", {"cmd": CMD, "state": "failed", "reason": None}),
    ("status", {"online": "yes"}),
    ("status", {"firmware": "x"}),
    ("status", {"online": True, "signal": 2**70}),
    ("status", {"online": True, "volume": 101}),
    ("status", {"online": True, "volume": 50.5}),
    ("status", {"online": True, "firmware": "x" * 65}),
    ("status", {"online": True, "firmware": 2}),
    ("status", {"online": True, "kind": "toaster"}),
    ("tele", {"signal": 2**70}),
    ("tele", {"signal": -151}),
    ("tele", {"signal": 1}),
    ("tele", {"signal": "strong"}),
    ("tele", {"volume": -1}),
    ("tele", {"volume": False}),
]


@pytest.mark.parametrize(("kind", "data"), BAD, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD)])
def test_a_field_out_of_its_type_or_range_refuses_the_whole_report(kind: str, data: dict[str, Any]) -> None:
    with pytest.raises(BadReport) as refused:
        check_report(kind, data)
    assert refused.value.code == f"malformed_{kind}"


# Reports as firmware might send them, each complete for its schema (`v` and `at` where required), so
# that the daemon and the documented schema judge the same thing: the fields the daemon stores.
AGREEMENT = [
    *(("ack", {"v": 2, "cmd": CMD, "at": AT, **extra}) for extra in (
        {"state": "done"}, {"state": "failed", "reason": "hash_mismatch: expected 4f0c6e1d5b0b, got 9a1b2c3d4e5f"},
        {"state": "playing", "start_error_ms": -3}, {"state": "playing", "start_error_ms": 86_400_000},
        {"state": "playing", "start_error_ms": 86_400_000.5}, {"state": "received", "reason": "r" * 300},
        {"state": "received", "reason": "r" * 301}, {"state": "gone"}, {"state": "done", "cmd": "a b"},
        {"state": "done", "cmd": ""}, {"state": "done", "cmd": "c" * 64}, {"state": "done", "volume": 80},
    )),
    *(("status", {"v": 2, **extra}) for extra in (
        {"online": True, "kind": "speaker", "firmware": "loa-agent/0.2", "volume": 80, "sink": "file"},
        {"online": False}, {"online": 1}, {"online": True, "volume": 100}, {"online": True, "volume": 100.0},
        {"online": True, "volume": 101}, {"online": True, "signal": -150}, {"online": True, "signal": -151},
        {"online": True, "signal": 0}, {"online": True, "signal": 5}, {"online": True, "firmware": "f" * 64},
        {"online": True, "firmware": "f" * 65}, {"online": True, "kind": "led", "diacritics": False},
        {"online": True, "kind": "siren"},
    )),
    *(("tele", {"v": 2, "at": AT, **extra}) for extra in (
        {"volume": 80, "signal": -71, "uptime_s": 86400}, {"volume": 0}, {"volume": -1}, {"signal": -150},
        {"signal": 2**70}, {"signal": "-70"}, {"volume": 7.0}, {"volume": 7.5}, {"extra": {"firmware": "adds"}},
    )),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "data"), AGREEMENT, ids=[f"{k}-{i}" for i, (k, _) in enumerate(AGREEMENT)])
def test_the_daemon_accepts_exactly_what_the_documented_schema_accepts(kind: str, data: dict[str, Any]) -> None:
    valid = jsonschema.Draft202012Validator(SCHEMAS[kind]).is_valid(data)
    try:
        check_report(kind, data)
        accepted = True
    except BadReport:
        accepted = False
    assert accepted == valid, f"the schema says {valid}, the daemon {accepted}"
