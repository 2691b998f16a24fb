"""The device protocol, v1: topics, payloads and signatures (documented in docs/protocol.md).

This module is shared by the daemon and the reference device agents, so it holds only pure functions
and tiny dataclasses: what a command looks like, how it is signed, and how a device decides to refuse it.
Signatures are Ed25519 over a canonical JSON encoding (sorted keys, no spaces, UTF-8), so any language
on a speaker's firmware can verify them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PROTOCOL_VERSION = 1
DEFAULT_PREFIX = "pa/v1"
MAX_PAYLOAD_BYTES = 64 * 1024  # anything larger from a device is dropped unread

CommandType = Literal["play", "stop", "volume", "led.show", "led.clear", "ping", "config"]
COMMAND_TYPES: tuple[str, ...] = ("play", "stop", "volume", "led.show", "led.clear", "ping", "config")
AckState = Literal["received", "downloaded", "playing", "done", "failed", "expired", "rejected"]
ACK_STATES: tuple[str, ...] = ("received", "downloaded", "playing", "done", "failed", "expired", "rejected")
PRIORITIES: tuple[str, ...] = ("background", "normal", "priority", "emergency")


# ---------------------------------------------------------------- topics


@dataclass(frozen=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    def cmd(self, device_id: str) -> str:
        return f"{self.prefix}/dev/{device_id}/cmd"

    def ack(self, device_id: str) -> str:
        return f"{self.prefix}/dev/{device_id}/ack"

    def status(self, device_id: str) -> str:
        return f"{self.prefix}/dev/{device_id}/status"

    def tele(self, device_id: str) -> str:
        return f"{self.prefix}/dev/{device_id}/tele"

    def group_cmd(self, zone_id: str) -> str:
        return f"{self.prefix}/zone/{zone_id}/cmd"

    def all_acks(self) -> str:
        return f"{self.prefix}/dev/+/ack"

    def all_status(self) -> str:
        return f"{self.prefix}/dev/+/status"

    def all_tele(self) -> str:
        return f"{self.prefix}/dev/+/tele"

    def device_of(self, topic: str) -> tuple[str, str] | None:
        """('device-id', 'ack') for a device topic under this prefix, else None."""
        head = f"{self.prefix}/dev/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 2 or not parts[0]:
            return None
        return parts[0], parts[1]


# ---------------------------------------------------------------- time on the wire


def format_time(when: datetime) -> str:
    """RFC 3339 UTC with milliseconds: the precision synchronized start needs, readable in a log."""
    if when.tzinfo is None:
        raise ValueError("aware datetime required")
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"time without zone: {text!r}")
    return when.astimezone(UTC)


# ---------------------------------------------------------------- signing


def canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_b64(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey

    @functools.cached_property
    def kid(self) -> str:  # cached: it is part of every command signed
        return key_id(self.private.public_key())

    @property
    def public_b64(self) -> str:
        return public_key_b64(self.private.public_key())

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        unsigned = {k: v for k, v in body.items() if k != "sig"}
        unsigned["kid"] = self.kid
        sig = self.private.sign(canonical(unsigned))
        return {**unsigned, "sig": base64.b64encode(sig).decode("ascii")}


def load_or_create_signer(path: Path) -> Signer:
    """The daemon's signing key, created once with owner-only permissions; it never leaves the server."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return Signer(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(pem)
    tmp.replace(path)
    return Signer(key)


def verify(command: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> bool:
    """True when the command carries a valid signature from one of the trusted keys (by key id)."""
    sig = command.get("sig")
    kid = command.get("kid")
    if not isinstance(sig, str) or not isinstance(kid, str) or kid not in keys:
        return False
    try:
        keys[kid].verify(
            base64.b64decode(sig, validate=True), canonical({k: v for k, v in command.items() if k != "sig"})
        )
    except (InvalidSignature, ValueError):
        return False
    return True


# ---------------------------------------------------------------- commands


def _unsigned(
    type: CommandType,
    body: dict[str, Any],
    issued_at: datetime,
    start_at: datetime,
    expires_at: datetime,
    priority: str,
    command_id: str,
) -> dict[str, Any]:
    if type not in COMMAND_TYPES:
        raise ValueError(f"unknown command type {type!r}")
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}")
    return {
        "v": PROTOCOL_VERSION,
        "id": command_id,
        "type": type,
        "issued_at": format_time(issued_at),
        "start_at": format_time(start_at),
        "expires_at": format_time(expires_at),
        "priority": priority,
        "body": body,
    }


def make_command(
    signer: Signer,
    type: CommandType,
    body: dict[str, Any],
    *,
    issued_at: datetime,
    start_at: datetime,
    expires_at: datetime,
    priority: str = "normal",
    command_id: str | None = None,
) -> dict[str, Any]:
    cid = command_id or str(uuid.uuid4())
    return signer.sign(_unsigned(type, body, issued_at, start_at, expires_at, priority, cid))


class CommandStamp:
    """Signed commands that differ only in their id, as a bulletin's thousands of commands do.

    The canonical form is serialized once around a placeholder id, and each command's signed
    bytes are spliced from it, so only the signature itself is computed per command. The wire
    payload is those canonical bytes with `"sig"` added last: a device parses it and checks the
    signature over the canonical form, exactly as for `make_command`.
    """

    _PLACEHOLDER = "00000000-0000-4000-8000-000000000000"

    def __init__(
        self,
        signer: Signer,
        type: CommandType,
        body: dict[str, Any],
        *,
        issued_at: datetime,
        start_at: datetime,
        expires_at: datetime,
        priority: str = "normal",
    ) -> None:
        self.signer = signer
        unsigned = _unsigned(type, body, issued_at, start_at, expires_at, priority, self._PLACEHOLDER)
        unsigned["kid"] = signer.kid
        text = canonical(unsigned)
        head, *tail = text.split(f'"id":"{self._PLACEHOLDER}"'.encode("ascii"))
        if len(tail) != 1:  # the placeholder also occurs in the body: splicing would be ambiguous
            raise ValueError("command body contains the id placeholder")
        self._head, self._tail = head + b'"id":"', b'"' + tail[0]

    def __call__(self, command_id: str | None = None) -> tuple[str, bytes]:
        """(command id, wire payload) of one more command."""
        cid = command_id or str(uuid.uuid4())
        if json.dumps(cid) != f'"{cid}"':
            raise ValueError(f"command id {cid!r} needs JSON escaping")
        signed = self._head + cid.encode("ascii") + self._tail
        sig = base64.b64encode(self.signer.private.sign(signed))
        return cid, signed[:-1] + b',"sig":"' + sig + b'"}'


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Refusal(Exception):
    """Why a device refuses a command; the reason code goes back in a `rejected` ack."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def check_command(
    command: dict[str, Any], keys: dict[str, Ed25519PublicKey], now: datetime, seen: set[str] | None = None
) -> None:
    """What every device does before acting: signature, freshness, no replay. Raises Refusal."""
    if command.get("v") != PROTOCOL_VERSION:
        raise Refusal("bad_version")
    if not verify(command, keys):
        raise Refusal("bad_signature")
    try:
        expires_at = parse_time(command["expires_at"])
        parse_time(command["start_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Refusal("bad_time") from exc
    if now >= expires_at:
        raise Refusal("expired")
    if seen is not None and command.get("id") in seen:
        raise Refusal("replay")


def make_ack(command_id: str, state: AckState, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "cmd": command_id, "state": state, "at": format_time(at), **extra}


def make_status(online: bool, at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"v": PROTOCOL_VERSION, "online": online, **extra}
    if at is not None:
        out["at"] = format_time(at)
    return out


def strip_diacritics(text: str) -> str:
    """For LED boards whose font has no Vietnamese marks: 'Thông báo' -> 'Thong bao', 'đ' -> 'd'."""
    import unicodedata

    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
