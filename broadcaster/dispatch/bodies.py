"""What a device is told to do for a broadcast: one command body per kind of device.

A commune-wide bulletin sends the same body to thousands of speakers, so bodies are built once per
(kind, diacritics) and each gets a `CommandStamp` that signs its commands without serializing them again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from broadcaster import protocol
from broadcaster.db import Announcement, Broadcast, Clip, DeviceKind

# (sha256, file extension) -> the URL devices download the audio from
AudioUrl = Callable[[str, str], str]
# announcement id -> the URL of its live stream on the audio listener; None when it is not on air
LiveUrl = Callable[[int], str | None]


def command_type(kind: DeviceKind) -> protocol.CommandType:
    return "play" if kind is DeviceKind.SPEAKER else "led.show"


def command_body(
    kind: DeviceKind,
    diacritics: bool,
    item: Announcement | Clip | None,
    b: Broadcast,
    audio_url: AudioUrl,
    live_url: LiveUrl | None = None,
) -> dict[str, object] | None:
    """What a device of this kind is told to do for the broadcast; None: nothing to do. `item` holds the
    audio: the officer's announcement, or the clip of a bulletin's chime or heading."""
    if b.kind == "live":
        # The officer's voice, as a relay's stream (services/live.py); LED boards have nothing to show
        # for as long as it lasts, which nobody knows yet.
        url = live_url(b.announcement_id) if live_url and b.announcement_id is not None else None
        if kind is not DeviceKind.SPEAKER or url is None:
            return None
        return {"title": b.title, "stream": {"url": url, "duration_s": b.duration_ms / 1000}}
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

    def __init__(
        self, b: Broadcast, signer: protocol.Signer, audio_url: AudioUrl, live_url: LiveUrl | None = None
    ) -> None:
        self._b, self._signer, self._audio_url, self._live_url = b, signer, audio_url, live_url
        self.broadcast_id, self.expires_at = b.id, b.expires_at
        self._cache: dict[tuple[DeviceKind, bool], dict[str, object] | None] = {}
        self._stamps: dict[tuple[DeviceKind, bool], protocol.CommandStamp | None] = {}

    def get(self, kind: DeviceKind, diacritics: bool) -> dict[str, object] | None:
        key = (kind, bool(diacritics))
        if key not in self._cache:
            item = self._b.announcement or self._b.clip
            self._cache[key] = command_body(kind, key[1], item, self._b, self._audio_url, self._live_url)
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
