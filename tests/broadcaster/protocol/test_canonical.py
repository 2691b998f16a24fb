"""The signed bytes are RFC 8785 (JCS), byte for byte: the RFC's own examples, the fast path proven
identical to the `rfc8785` reference, and what JCS cannot write refused before anything is signed."""

from __future__ import annotations

import base64
import json
import struct
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import example, given, settings
from hypothesis import strategies as st

from broadcaster import protocol

# The module, not the function `broadcaster.protocol.canonical` re-exported under the same name.
jcs = sys.modules["broadcaster.protocol.canonical"]

NOW = datetime(2026, 11, 25, 10, 29, 30, tzinfo=UTC)
TO = "thon-1-loa"
TIMES: dict[str, Any] = {
    "issued_at": NOW,
    "start_at": NOW + timedelta(seconds=30),
    "expires_at": NOW + timedelta(minutes=15),
}
SIGNER = protocol.Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
KEYS = {SIGNER.kid: SIGNER.private.public_key()}


def _value(number: float) -> bytes:
    return protocol.canonical({"n": number})[len(b'{"n":') : -1]


# ---------------------------------------------------------------- RFC 8785, its own examples

# RFC 8785 section 3.2.2: the input as JSON text, and section 3.2.4: the UTF-8 of its canonical form.
RFC_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC_OUTPUT_HEX = """
7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72
75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a
5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31
65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37
5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30
30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d
"""


def test_the_rfc_example_canonicalizes_to_the_rfc_bytes() -> None:
    out = protocol.canonical(json.loads(RFC_INPUT))
    assert out == bytes.fromhex(RFC_OUTPUT_HEX)
    assert out.decode() == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )


def test_keys_sort_by_utf16_code_units_as_in_the_rfc() -> None:
    """RFC 8785 section 3.2.3: the emoji (a surrogate pair, D83D DE00) sorts before U+FB33, although its
    code point is larger; Python's own sort would put it last."""
    rfc = json.loads(r"""{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }""")
    out = protocol.canonical(rfc)
    assert [v for v in json.loads(out).values()] == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]
    assert out.startswith(b'{"\\r":"Carriage Return","1":"One","\xc2\x80":"Control"')


# RFC 8785 Appendix B: IEEE 754 doubles (hex) and how JCS writes them, as ECMAScript does.
RFC_NUMBERS = [
    ("0000000000000000", "0"),  # zero
    ("8000000000000000", "0"),  # minus zero
    ("0000000000000001", "5e-324"),  # min pos number
    ("8000000000000001", "-5e-324"),  # min neg number
    ("7fefffffffffffff", "1.7976931348623157e+308"),  # max pos number
    ("ffefffffffffffff", "-1.7976931348623157e+308"),  # max neg number
    ("4340000000000000", "9007199254740992"),  # max pos int
    ("c340000000000000", "-9007199254740992"),  # max neg int
    ("4430000000000000", "295147905179352830000"),  # ~2**68
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),  # round to even
]


@pytest.mark.parametrize(("ieee", "written"), RFC_NUMBERS)
def test_numbers_are_written_as_in_the_rfc_table(ieee: str, written: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee))
    assert _value(number) == written.encode()
    assert float(written) == number  # the text, parsed, is that double again


@pytest.mark.parametrize(("ieee", "why"), [("7fffffffffffffff", "NaN"), ("7ff0000000000000", "Infinity")])
def test_what_is_not_a_json_number_is_refused(ieee: str, why: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee))
    for value in (number, -number):
        with pytest.raises(ValueError):
            protocol.canonical({"n": value})
        with pytest.raises(ValueError):  # and so never signed
            protocol.make_command(SIGNER, "config", {"n": value}, to=TO, **TIMES)


def test_the_numbers_the_daemon_sends() -> None:
    assert _value(1800.0) == b"1800"  # a relay's duration_s: the reason for version 2
    assert _value(1800) == b"1800"
    assert _value(12.5) == b"12.5"
    assert _value(-0.0) == b"0"
    assert _value(0.1 + 0.2) == b"0.30000000000000004"
    assert _value(1e-5) == b"0.00001"  # Python's repr says 1e-05
    assert _value(1e16) == b"10000000000000000"  # Python's repr says 1e+16
    assert _value(2**53 - 1) == b"9007199254740991"


@pytest.mark.parametrize("number", [2**53, -(2**53), 10**30])
def test_integers_json_cannot_carry_exactly_are_refused(number: int) -> None:
    with pytest.raises(ValueError):
        protocol.canonical({"n": number})


def test_strings_escape_only_what_json_requires() -> None:
    """Short escapes for \\b \\t \\n \\f \\r, lower-case \\u00xx for the other controls, and nothing
    else: not '/', not DEL, not U+2028, not Vietnamese, not emoji."""
    controls = "".join(chr(c) for c in range(0x20))
    expected = (
        "\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
        "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f"
    )
    assert protocol.canonical({"s": controls}) == f'{{"s":"{expected}"}}'.encode()
    plain = '/\x7f\u2028\u2029Họp thôn Đảng 📢 €'
    assert protocol.canonical({"s": plain}) == f'{{"s":"{plain}"}}'.encode()
    assert protocol.canonical({"s": 'Trích "Luật" \\ 100%'}) == b'{"s":"Tr\xc3\xadch \\"Lu\xe1\xba\xadt\\" \\\\ 100%"}'


@pytest.mark.parametrize(
    "obj",
    [{"s": "\ud800"}, {"s": "a\udfffb"}, {"\udc00": 1}, {"k\ud83d": 1}, {"s": ["ok", "\ud83d"]}],
    ids=["lone-high", "lone-low", "key-low", "key-high", "in-list"],
)
def test_lone_surrogates_are_refused(obj: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        protocol.canonical(obj)


@pytest.mark.parametrize("obj", [{1: "x"}, {"s": b"bytes"}, {"s": {1, 2}}, {"t": datetime(2026, 1, 1)}])
def test_what_json_lacks_is_refused(obj: dict[Any, Any]) -> None:
    with pytest.raises(ValueError):
        protocol.canonical(obj)


def test_a_payload_nested_too_deeply_fails_verification_cleanly() -> None:
    """A device verifies whatever arrives: a hostile payload must cost it a refusal, not its handler."""
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit() + 10):
        deep = [deep]
    for body in ({"x": deep}, {"y": 1e-300, "x": deep}):  # the fast path, and the reference (1e-300 first)
        with pytest.raises(ValueError):
            protocol.canonical(body)
        command = {**protocol.make_command(SIGNER, "config", {}, to=TO, **TIMES), "body": body}
        assert not protocol.verify(command, KEYS)


# ---------------------------------------------------------------- the fast path is JCS

_KEY_CHARS = st.sampled_from(["a", "b", "1", "\r", "\u0080", "\u00f6", "\u20ac", "\ud7ff", "\ue000", "\ufb33",
                              "\uffff", "\U00010000", "\U0001f600", "ạ", "đ"])  # fmt: skip
_KEYS = st.text(_KEY_CHARS, max_size=4) | st.text(max_size=6)
_FLOATS = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**60), 2**60).map(float)
    | st.integers(0, 10**8).map(lambda ms: ms / 1000)  # durations, as bodies.py computes them
    | st.sampled_from([1e-4, 9.999999999999999e-5, 1e16, 9999999999999998.0, 1e21, 5e-324, -0.0])
)
_SCALARS = (
    st.none() | st.booleans() | st.text() | _FLOATS
    | st.integers(-(2**53) + 1, 2**53 - 1) | st.integers(-(2**64), 2**64)
)  # fmt: skip
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5))


@settings(max_examples=250, deadline=None)  # was 600: a minute under the suite's load, for its 15-minute limit
@given(st.dictionaries(_KEYS, _JSON, max_size=6))
@example({"stream": {"url": "http://x/vov1", "duration_s": 1800.0}, "v": 2})
@example({"\ufb33": 1, "\U0001f600": 2, "\ue000": [1.5, {"\U00010000": None}]})
def test_canonical_is_the_rfc8785_reference_byte_for_byte(obj: dict[str, Any]) -> None:
    try:
        reference = rfc8785.dumps(obj)
    except ValueError:
        with pytest.raises(ValueError):
            protocol.canonical(obj)
        return
    assert protocol.canonical(obj) == reference
    try:
        fast = jcs._fast(obj)
    except jcs._Unusual:
        return
    assert fast == reference


def test_what_the_daemon_signs_takes_the_fast_path() -> None:
    """Play, relay and LED bodies never fall back to the slower reference (a quarter of the speed)."""
    bodies: list[dict[str, Any]] = [
        {"title": "Họp thôn", "audio": {"url": "http://h/a.mp3", "sha256": "a" * 64, "size": 10,
                                        "duration_ms": 1000, "format": "mp3"}},
        {"title": "Thời sự VOV1", "stream": {"url": "http://h/vov1", "duration_s": 12.5}},
        {"text": "Hop thon", "duration_s": 1800, "scroll_speed": 2, "diacritics": False},
    ]  # fmt: skip
    for body in bodies:
        command = protocol.make_command(SIGNER, "play", body, to=TO, **TIMES)
        unsigned = {k: v for k, v in command.items() if k != "sig"}
        assert jcs._fast(unsigned) == rfc8785.dumps(unsigned)


# ---------------------------------------------------------------- relays, the reason for version 2


def _relay(duration_s: float) -> dict[str, Any]:
    return {"title": "Thời sự VOV1", "stream": {"url": "http://h/vov1", "duration_s": duration_s}}


@pytest.mark.parametrize("duration_s", [1800.0, 12.5])
def test_a_stamped_relay_is_canonical_on_the_wire_and_verifies(duration_s: float) -> None:
    stamp = protocol.CommandStamp(SIGNER, "play", _relay(duration_s), priority="background", **TIMES)
    cid, payload = stamp(TO)
    signed, _sig = payload.rsplit(b',"sig":', 1)
    wire = json.loads(payload)
    assert signed + b"}" == protocol.canonical({k: v for k, v in wire.items() if k != "sig"})
    assert f'"duration_s":{duration_s:g}'.encode() in signed and b"1800.0" not in payload
    assert wire == protocol.make_command(SIGNER, "play", _relay(duration_s), priority="background",
                                         command_id=cid, to=TO, **TIMES)  # fmt: skip
    protocol.check_command(wire, KEYS, NOW, seen=set())


def test_a_command_signed_over_version_1_bytes_is_refused() -> None:
    """What a v1 daemon signed: Python's `1800.0`. A device re-encodes it as `1800` and refuses it."""
    command = protocol.make_command(SIGNER, "play", _relay(1800.0), to=TO, **TIMES)
    unsigned = {k: v for k, v in command.items() if k != "sig"}
    v1_bytes = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert b'"duration_s":1800.0' in v1_bytes
    forged = {**unsigned, "sig": base64.b64encode(SIGNER.private.sign(v1_bytes)).decode()}
    assert not protocol.verify(forged, KEYS)
    assert protocol.verify(command, KEYS)
