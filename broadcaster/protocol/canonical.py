"""The bytes a signature covers, and the bytes put on the wire.

The signed bytes are RFC 8785 (the JSON Canonicalization Scheme, JCS), not whatever Python's `json`
happens to write: firmware in C or JavaScript re-encodes the command it parsed and must get the very
same bytes, so numbers are written as ECMAScript writes them (`1800`, never `1800.0`) and keys are
sorted by UTF-16 code units. The `rfc8785` package is the reference. A command as the daemon builds
it takes a fast path through the C json encoder instead, which writes identical bytes for what it
accepts (tests/broadcaster/protocol/test_canonical.py proves it against `rfc8785`) at under a third of
the cost: every simulated device verifies every command it receives, thousands per bulletin.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

# Beyond this a JSON number (an IEEE 754 double on every other device) is no longer exact; JCS refuses it.
_SAFE_INTEGER = 2**53 - 1
# Keys made of characters below this sort the same by code point (Python) and by UTF-16 code unit (JCS).
_FIRST_ASTRAL = "\U00010000"
# Fractions in this range are written by `repr` in the same digits and notation as by ECMAScript.
_PLAIN_FLOATS = (1e-4, 1e16)

_SORTED = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)


class _Unusual(Exception):
    """Something `json` would not write as JCS does: the reference implementation takes over."""


def canonical(obj: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes of `obj`. ValueError for what JCS cannot write, so it is never signed and a
    device's check fails cleanly: NaN, infinities, lone surrogates, integers beyond 2**53 - 1, keys that
    are not strings, types JSON lacks, and nesting deeper than Python's recursion allows."""
    try:
        try:
            return _fast(obj)
        except _Unusual:
            return rfc8785.dumps(obj)
    except RecursionError as exc:
        raise ValueError("nested too deeply to canonicalize") from exc


def _fast(obj: dict[str, Any]) -> bytes:
    """JCS through the C json encoder, for values it writes as JCS does once integral floats are ints."""
    text = _SORTED.encode(_jcs_ready(obj))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("a lone surrogate cannot be canonicalized (RFC 8785)") from exc


def _jcs_ready(value: object) -> object:
    """`value` itself when `json` writes it as JCS does, else a copy with integral floats made ints;
    _Unusual for anything else. Exact type checks: subclasses (enums) are left to `rfc8785`. Strings,
    booleans and safe integers are passed over in the loops, without a call each: this walk is most of
    what the fast path adds to `json`."""
    if type(value) is dict:
        copy: dict[str, object] | None = None
        for k, v in value.items():
            if type(k) is not str or not (k.isascii() or max(k) < _FIRST_ASTRAL):
                raise _Unusual
            t = type(v)
            if t is str or t is bool or v is None or (t is int and -_SAFE_INTEGER <= v <= _SAFE_INTEGER):
                continue
            w = _jcs_ready(v)
            if w is not v:
                if copy is None:
                    copy = dict(value)
                copy[k] = w
        return value if copy is None else copy
    if type(value) is list:
        items: list[object] | None = None
        for i, v in enumerate(value):
            t = type(v)
            if t is str or t is bool or v is None or (t is int and -_SAFE_INTEGER <= v <= _SAFE_INTEGER):
                continue
            w = _jcs_ready(v)
            if w is not v:
                if items is None:
                    items = list(value)
                items[i] = w
        return value if items is None else items
    if type(value) is float:
        if value.is_integer():
            if -_SAFE_INTEGER <= value <= _SAFE_INTEGER:
                return int(value)  # 1800.0 -> 1800, and -0.0 -> 0, as ECMAScript writes them
        elif _PLAIN_FLOATS[0] <= abs(value) < _PLAIN_FLOATS[1]:
            return value
        raise _Unusual
    if type(value) is str or type(value) is bool or value is None:
        return value
    if type(value) is int and -_SAFE_INTEGER <= value <= _SAFE_INTEGER:
        return value
    raise _Unusual


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
