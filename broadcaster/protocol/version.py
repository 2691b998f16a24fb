"""The protocol's version and vocabularies, shared by every other module of the wire format."""

from __future__ import annotations

from typing import Literal

PROTOCOL_VERSION = 1
DEFAULT_PREFIX = "pa/v1"
MAX_PAYLOAD_BYTES = 64 * 1024  # anything larger from a device is dropped unread

CommandType = Literal["play", "stop", "volume", "led.show", "led.clear", "ping", "config"]
COMMAND_TYPES: tuple[str, ...] = ("play", "stop", "volume", "led.show", "led.clear", "ping", "config")
AckState = Literal["received", "downloaded", "playing", "done", "failed", "expired", "rejected"]
ACK_STATES: tuple[str, ...] = ("received", "downloaded", "playing", "done", "failed", "expired", "rejected")
PRIORITIES: tuple[str, ...] = ("background", "normal", "priority", "emergency")
