"""Commands, acks and status messages of the device protocol (docs/protocol.md), and how a device
decides to refuse a command. Pure functions and tiny classes: the daemon and the devices share them."""

from __future__ import annotations

import base64
import json
import unicodedata
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broadcaster.protocol.canonical import canonical
from broadcaster.protocol.signing import Signer, verify
from broadcaster.protocol.version import COMMAND_TYPES, PRIORITIES, PROTOCOL_VERSION, AckState, CommandType

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


# ---------------------------------------------------------------- commands


def _unsigned(
    type: CommandType,
    body: dict[str, Any],
    issued_at: datetime,
    start_at: datetime,
    expires_at: datetime,
    priority: str,
    command_id: str,
    to: str,
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
        "to": to,
        "body": body,
    }


def zone_recipient(zone_id: str) -> str:
    """The `to` of a command sent on a zone's topic (a device's is its own id)."""
    return f"zone/{zone_id}"


def make_command(
    signer: Signer,
    type: CommandType,
    body: dict[str, Any],
    *,
    to: str,
    issued_at: datetime,
    start_at: datetime,
    expires_at: datetime,
    priority: str = "normal",
    command_id: str | None = None,
) -> dict[str, Any]:
    """A signed command for `to`: a device id, or `zone_recipient(zone)` for a zone's topic."""
    cid = command_id or str(uuid.uuid4())
    return signer.sign(_unsigned(type, body, issued_at, start_at, expires_at, priority, cid, to))


class CommandStamp:
    """Signed commands that differ only in their id and recipient, as a bulletin's thousands do.

    The canonical form is serialized once around a placeholder id and recipient, and each command's
    signed bytes are spliced from it, so only the signature itself is computed per command. The wire
    payload is those canonical bytes with `"sig"` added last: a device parses it and checks the
    signature over the canonical form, exactly as for `make_command`. (Canonical keys are sorted, so
    `"id"` always comes before `"to"`.)
    """

    _PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
    _TO = "00000000-recipient-placeholder"

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
        unsigned = _unsigned(type, body, issued_at, start_at, expires_at, priority, self._PLACEHOLDER, self._TO)
        unsigned["kid"] = signer.kid
        text = canonical(unsigned)
        head, *rest = text.split(f'"id":"{self._PLACEHOLDER}"'.encode("ascii"))
        if len(rest) != 1:  # the placeholder also occurs in the body: splicing would be ambiguous
            raise ValueError("command body contains the id placeholder")
        middle, *tail = rest[0].split(f'"to":"{self._TO}"'.encode("ascii"))
        if len(tail) != 1 or self._TO.encode("ascii") in head:
            raise ValueError("command body contains the recipient placeholder")
        self._head, self._middle, self._tail = head + b'"id":"', b'"' + middle + b'"to":"', b'"' + tail[0]

    def __call__(self, to: str, command_id: str | None = None) -> tuple[str, bytes]:
        """(command id, wire payload) of one more command, for the recipient `to`."""
        cid = command_id or str(uuid.uuid4())
        for value in (cid, to):
            if json.dumps(value) != f'"{value}"':
                raise ValueError(f"{value!r} needs JSON escaping")
        signed = self._head + cid.encode("ascii") + self._middle + to.encode("ascii") + self._tail
        sig = base64.b64encode(self.signer.private.sign(signed))
        return cid, signed[:-1] + b',"sig":"' + sig + b'"}'


class Refusal(Exception):
    """Why a device refuses a command; the reason code goes back in a `rejected` ack."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def check_command(
    command: dict[str, Any],
    keys: dict[str, Ed25519PublicKey],
    now: datetime,
    seen: set[str] | None = None,
    *,
    recipients: Collection[str] | None = None,
) -> None:
    """What every device does before acting: signature, recipient, freshness, no replay. Raises
    Refusal. `recipients`: what this device answers to (its id, `zone/<zone>` for each zone it reads);
    a genuine command captured on another device's topic names that device, and is refused."""
    if command.get("v") != PROTOCOL_VERSION:
        raise Refusal("bad_version")
    if not verify(command, keys):
        raise Refusal("bad_signature")
    if recipients is not None and command.get("to") not in recipients:
        raise Refusal("wrong_recipient")
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
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
