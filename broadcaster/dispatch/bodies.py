"""What a device is told to do for a broadcast: one command body per kind of device.

A commune-wide bulletin sends the same body to thousands of speakers, so bodies are built once per
(kind, diacritics) and each gets a `CommandStamp` that signs its commands without serializing them again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from broadcaster import protocol
from broadcaster.db import Announcement, Broadcast, DeviceKind

# (sha256, file extension) -> the URL devices download the audio from
AudioUrl = Callable[[str, str], str]


def command_type(kind: DeviceKind) -> protocol.CommandType:
    return "play" if kind is DeviceKind.SPEAKER else "led.show"


def command_body(
    kind: DeviceKind, diacritics: bool, item: Announcement | None, b: Broadcast, audio_url: AudioUrl
) -> dict[str, object] | None:
    """What a device of this kind is told to do for the broadcast; None: nothing to do."""
    if kind is DeviceKind.SPEAKER and b.programme and b.programme.stream_url and b.kind == "relay":
        return {"title": b.title, "stream": {"url": b.programme.stream_url, "duration_s": b.duration_ms / 1000}}
    if kind is DeviceKind.SPEAKER:
        if item is None or item.audio_sha256 is None:
            return None
        return {
            "title": item.title,
            "audio": {
                "url": audio_url(item.audio_sha256, item.audio_ext),
                "sha256": item.audio_sha256,
                "size": item.audio_size,
                "duration_ms": item.audio_duration_ms,
                "format": item.audio_ext,
            },
        }
    text = b.title if diacritics else protocol.strip_diacritics(b.title)
    return {
        "text": text,
        "duration_s": max(5, round(b.duration_ms / 1000)),
        "scroll_speed": 2,
        "diacritics": diacritics,
    }


class CommandBodies:
    """Command bodies of one broadcast, built once per kind of device (they differ by nothing else),
    and a stamp per body that signs its commands without serializing each one again."""

    def __init__(self, b: Broadcast, signer: protocol.Signer, audio_url: AudioUrl) -> None:
        self._b, self._signer, self._audio_url = b, signer, audio_url
        self.broadcast_id, self.expires_at = b.id, b.expires_at
        self._cache: dict[tuple[DeviceKind, bool], dict[str, object] | None] = {}
        self._stamps: dict[tuple[DeviceKind, bool], protocol.CommandStamp | None] = {}

    def get(self, kind: DeviceKind, diacritics: bool) -> dict[str, object] | None:
        key = (kind, bool(diacritics))
        if key not in self._cache:
            self._cache[key] = command_body(kind, key[1], self._b.announcement, self._b, self._audio_url)
        return self._cache[key]

    def stamp(self, kind: DeviceKind, diacritics: bool, now: datetime) -> protocol.CommandStamp | None:
        key = (kind, bool(diacritics))
        if key not in self._stamps:
            body, b = self.get(kind, diacritics), self._b
            self._stamps[key] = None if body is None else protocol.CommandStamp(
                self._signer, command_type(kind), dict(body), issued_at=now, start_at=b.start_at,
                expires_at=b.expires_at, priority=b.priority,
            )  # fmt: skip
        return self._stamps[key]
