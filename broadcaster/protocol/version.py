"""The protocol's version and vocabularies, shared by every other module of the wire format."""

from __future__ import annotations

from typing import Literal

# 2: the signed bytes are RFC 8785 (JCS), so firmware in any language reproduces them; v1 is retired.
PROTOCOL_VERSION = 2
DEFAULT_PREFIX = "pa/v2"
MAX_PAYLOAD_BYTES = 64 * 1024  # anything larger from a device is dropped unread

CommandType = Literal["play", "stop", "volume", "led.show", "led.clear", "ping", "config"]
COMMAND_TYPES: tuple[str, ...] = ("play", "stop", "volume", "led.show", "led.clear", "ping", "config")
AckState = Literal["received", "downloaded", "playing", "done", "failed", "expired", "rejected"]
ACK_STATES: tuple[str, ...] = ("received", "downloaded", "playing", "done", "failed", "expired", "rejected")
PRIORITIES: tuple[str, ...] = ("background", "normal", "priority", "emergency")
