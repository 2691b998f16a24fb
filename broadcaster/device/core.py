"""The device's one brain, without I/O: what a speaker or LED board does with each command.

State in, actions out (the sans-IO style of h11 and wsproto). A driver feeds the core what happened —
a payload arrived, a download finished, a start instant came, a play ended — with the time it
happened, and carries out the actions the core returns: publish an ack, download a file, wake me at
this instant, play, stop, show. The core itself never reads a clock, a socket or a file.

Two drivers use it: the reference agent (`broadcaster.device.agent`, one device per process with a
thread per task, what a Raspberry Pi runs) and the fleet simulator (`broadcaster.simulation.fleet`,
thousands of devices on one selector loop). What they do differs only in how they wait and play;
every decision of the protocol (docs/protocol.md) is taken here, once.

The order of checks on a command (docs/protocol.md, "What a device does with a command"):
size, JSON object, version, key and signature, recipient, times and expiry, id, then "seen before". A command that
fails one of them is dropped without a word (only an expired one is acked `expired`): acking what
cannot be verified would let anyone make devices talk on the network. A genuine, new command the
device will not even try (a body it cannot read, a type its kind does not do) is acked `rejected`; one
it tried and could not finish, `failed`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeGuard

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broadcaster import protocol
from broadcaster.device.clock import APPLY_FROM_S, ClockSync

FIRMWARE = "loa-agent/0.2"
SEEN_KEEP_S = 86400.0  # a command id is remembered until a day after it expires
# A final outcome is said again after each reconnect until this long past its command's expiry: as long
# as the daemon waits for the final ack of a play still on air (dispatch/reconcile.py PLAYING_GRACE_S).
REPEAT_FINAL_S = 60.0
FINAL_STATES = ("done", "failed", "expired", "rejected")
DEFAULT_SHOW_S = 10.0  # an LED text without a duration stays this long
# A higher priority that comes this close to the end of what is on air waits for that end (at most this
# long past it) instead of cutting it. The daemon places a priority item right at the end of the one on
# air; that one started a little late (a few ms, more on a busy device) and its player may lag, so the
# second's start came while the first's last moments played, and cut an item everyone heard to `failed`.
END_GRACE_S = 1.0
MAX_ID_CHARS = 64
RANK = {p: i for i, p in enumerate(protocol.PRIORITIES)}
_SHA256 = re.compile(r"[0-9a-f]{64}")
DeviceKind = Literal["speaker", "led"]
# A start Wake that comes this much before start_at by the daemon's clock was asked for before the offset
# moved: it is asked for again. Below it, the driver's own timing (it may wake a hair early) decides.
EARLY_WAKE_S = 0.001


# ---------------------------------------------------------------- actions: what the driver must do


@dataclass(slots=True)
class Ack:
    """Publish this ack on the device's ack topic. The core has already kept it as the command's last
    state, which is what a re-sent id is answered with."""

    command_id: str
    state: protocol.AckState
    at: float  # epoch seconds
    extra: dict[str, Any] = field(default_factory=dict)

    def message(self) -> dict[str, Any]:
        return protocol.make_ack(self.command_id, self.state, datetime.fromtimestamp(self.at, UTC), **self.extra)


@dataclass(slots=True)
class Resend:
    """Publish this earlier ack again, as it was (a command id seen before)."""

    message: dict[str, Any]


@dataclass(slots=True)
class Fetch:
    """Download `audio["url"]`, keep it only if its SHA-256 is `audio["sha256"]`, retrying a lost
    network until `until` (the command's expiry); then call `DeviceCore.fetched`."""

    command_id: str
    audio: dict[str, Any]
    until: float


@dataclass(slots=True)
class Wake:
    """Call `DeviceCore.wake(command_id, now)` at `at`: to the millisecond for a start (`start=True`),
    whenever convenient for an expiry."""

    command_id: str
    at: float
    start: bool


@dataclass(slots=True)
class Play:
    """Start playing now (a speaker: the downloaded audio, or the stream); call `DeviceCore.ended` when
    it stops by itself. `duration_s` is what the command announced."""

    command_id: str
    audio: dict[str, Any] | None
    stream_url: str | None
    duration_s: float
    started_at: float
    start_error_ms: float


@dataclass(slots=True)
class Show:
    """Put `text` on the board now; call `DeviceCore.ended` after `duration_s`."""

    command_id: str
    text: str
    duration_s: float
    started_at: float
    start_error_ms: float


@dataclass(slots=True)
class Silence:
    """Stop the sound of this command at once (a stop, or a higher priority)."""

    command_id: str


@dataclass(slots=True)
class Blank:
    """Clear the board."""


@dataclass(slots=True)
class SetVolume:
    level: int


@dataclass(slots=True)
class Restatus:
    """Publish the retained status again: what it says of the clock has changed (`DeviceCore.time_reply`)."""


@dataclass(slots=True)
class Refused:
    """A command refused without a sound: the code says why (logged once per code, then counted)."""

    code: str


Action = Ack | Resend | Fetch | Wake | Play | Show | Silence | Blank | SetVolume | Restatus | Refused


# ---------------------------------------------------------------- the memory of command ids


@dataclass(slots=True)
class Seen:
    expires_at: float
    last: Ack | dict[str, Any] | None = None  # an Ack, or an ack message read back from disk


class SeenCommands:
    """Command ids this device has taken, with their last ack, until a day past their expiry.

    Kept across reboots by the driver (`export` / `restore`), so a recorded command is never acted on
    twice. `dirty` tells the driver there is something new to save.
    """

    def __init__(self) -> None:
        self.items: dict[str, Seen] = {}
        self.dirty = False

    def __contains__(self, command_id: str) -> bool:
        return command_id in self.items

    def add(self, command_id: str, expires_at: float) -> None:
        self.items[command_id] = Seen(expires_at)
        self.dirty = True

    def last_message(self, command_id: str) -> dict[str, Any] | None:
        entry = self.items.get(command_id)
        if entry is None or entry.last is None:
            return None
        return entry.last.message() if isinstance(entry.last, Ack) else entry.last

    def record(self, ack: Ack) -> None:
        entry = self.items.get(ack.command_id)
        if entry is not None:
            entry.last = ack
            self.dirty = True

    def prune(self, now: float) -> None:
        for cid in [c for c, e in self.items.items() if e.expires_at < now - SEEN_KEEP_S]:
            del self.items[cid]
            self.dirty = True

    def export(self) -> dict[str, dict[str, Any]]:
        """JSON-ready: {command id: {"expires_at": RFC 3339, "ack": the last ack message or null}}."""
        out = {}
        for cid, e in self.items.items():
            last = e.last.message() if isinstance(e.last, Ack) else e.last
            out[cid] = {"expires_at": protocol.format_time(datetime.fromtimestamp(e.expires_at, UTC)), "ack": last}
        return out

    def restore(self, data: dict[str, Any]) -> None:
        """Merge what `export` wrote; entries it cannot read are skipped (a damaged file must not stop the
        device, and an id it forgets can at worst be replayed until that command expires)."""
        for cid, e in data.items():
            try:
                expires = protocol.parse_time(e["expires_at"]).timestamp()
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            last = e.get("ack")
            self.items[cid] = Seen(expires, last if isinstance(last, dict) else None)


# ---------------------------------------------------------------- one airing


@dataclass(slots=True)
class Airing:
    """One play or show, from the command's acceptance to its end."""

    command_id: str
    rank: int
    start: float
    expires: float
    duration_s: float
    audio: dict[str, Any] | None = None
    stream_url: str | None = None
    text: str = ""
    began: float = 0.0  # when it went on air (epoch seconds); 0 before
    payload: bytes = b""  # the signed command as it came: kept across a reboot (DeviceCore.held)
    resumed: bool = False  # taken up after a reboot, its `downloaded` ack already sent
    armed: bool = False  # its start Wake is out: moved if the clock's offset moves (DeviceCore.time_reply)


# ---------------------------------------------------------------- the core


class DeviceCore:
    """One device's protocol behaviour. Not thread-safe: a driver calls it from one thread at a time."""

    def __init__(
        self,
        device_id: str,
        kind: DeviceKind,
        keys: dict[str, Ed25519PublicKey],
        *,
        diacritics: bool = True,
        volume: int = 80,
        seen: SeenCommands | None = None,
        zones: Iterable[str] = (),
        clock: ClockSync | None = None,
    ) -> None:
        self.device_id = device_id
        self.kind = kind
        self.keys = keys
        # What a command's `to` may name for this device: its id, and each zone whose topic it reads
        self.recipients = frozenset([device_id, *(protocol.zone_recipient(z) for z in zones)])
        self.diacritics = diacritics
        self.volume = volume
        self.seen = seen if seen is not None else SeenCommands()
        self.current: Airing | None = None  # on air now
        self.waiting: list[Airing] = []  # due, but held back by what is on air
        self.pending: dict[str, Airing] = {}  # accepted, before their start
        self.refused: Counter[str] = Counter()
        self.commands = 0  # commands taken (seen for the first time)
        self.replays = 0  # ids seen again
        # The daemon's clock as this device estimates it. Every `now` a driver passes is its own clock's;
        # the core turns it into the daemon's (`_daemon`), decides in the daemon's time (start_at,
        # expires_at, start errors, ack times), and hands back instants in the driver's (`_local`).
        self.clock = clock if clock is not None else ClockSync()

    # ------------------------------------------------------------ presence

    def status(self, online: bool, now: float | None = None, **extra: Any) -> dict[str, Any]:
        """The retained status message (`online: false` is also the last will, with no time)."""
        if not online:
            return protocol.make_status(False)
        fields: dict[str, Any] = {"kind": self.kind, "firmware": FIRMWARE}
        if self.kind == "speaker":
            fields["volume"] = self.volume
        else:
            fields["diacritics"] = self.diacritics
        fields.update(self.clock.report())
        at = _utc(self._daemon(now)) if now is not None else None
        return protocol.make_status(True, at, **fields, **extra)

    def telemetry(self, now: float, **readings: Any) -> dict[str, Any]:
        """A `tele` message: the device's readings (e.g. `signal` in dBm, `uptime_s`) and its volume."""
        at = protocol.format_time(_utc(self._daemon(now)))
        message: dict[str, Any] = {"v": protocol.PROTOCOL_VERSION, "at": at}
        if self.kind == "speaker":
            message["volume"] = self.volume
        message.update(readings)
        return message

    # ------------------------------------------------------------ a command arrives

    def receive(self, payload: bytes, now: float) -> list[Action]:
        """A payload from the command topic (the device's own or a zone's: ids are one memory)."""
        now = self._daemon(now)
        if len(payload) > protocol.MAX_PAYLOAD_BYTES:
            return self._refuse("oversized")
        try:
            command = json.loads(payload)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return self._refuse("malformed")
        if not isinstance(command, dict):
            return self._refuse("malformed")
        try:
            protocol.check_command(command, self.keys, _utc(now), recipients=self.recipients)
        except protocol.Refusal as refusal:
            out = self._refuse(refusal.code)
            cid = command.get("id")
            if refusal.code == "expired" and _is_id(cid) and cid in self.seen:
                # taken before it expired: its last ack stands (a `done` must not become `expired`)
                last = self.seen.last_message(cid)
                return [*out, Resend(last)] if last is not None else out
            if refusal.code == "expired" and _is_id(cid):
                out.append(self._ack(cid, "expired", now, reason="expired"))
            return out
        cid = command.get("id")
        if not _is_id(cid):
            return self._refuse("bad_id")
        if cid in self.seen:
            self.replays += 1
            last = self.seen.last_message(cid)
            return [Resend(last)] if last is not None else []
        start = protocol.parse_time(command["start_at"]).timestamp()
        expires = protocol.parse_time(command["expires_at"]).timestamp()
        self.seen.add(cid, expires)
        self.commands += 1
        out = self._handle(command, cid, now, start, expires)
        if cid in self.pending:
            self.pending[cid].payload = payload
        return out

    # ------------------------------------------------------------ after a reconnect

    def reconnected(self, now: float) -> list[Action]:
        """The link to the broker is (back) up: say again the final outcome of every command whose expiry
        has not passed by REPEAT_FINAL_S (docs/protocol.md, "Final outcomes, said again"). The broker that
        took the first one, or the daemon it was queued for, may have died with it (a killed broker loses
        what it had not written to disk), and a command acknowledged once is not sent again, so nothing
        would ask. The daemon ignores an outcome it already has."""
        now = self._daemon(now)
        out: list[Action] = []
        for cid, entry in self.seen.items.items():
            last = entry.last
            state = last.state if isinstance(last, Ack) else last.get("state") if isinstance(last, dict) else None
            if state in FINAL_STATES and now < entry.expires_at + REPEAT_FINAL_S:
                message = self.seen.last_message(cid)
                if message is not None:
                    out.append(Resend(message))
        return out

    # ------------------------------------------------------------ across a reboot

    def held(self) -> dict[str, bytes]:
        """The plays and shows taken and not finished (before their start, waiting their turn, or on air),
        as the signed payloads they came in: what a driver keeps on storage that survives a reboot, and
        hands to `resume` after one. The daemon does not send an acknowledged command again."""
        airings = [*self.pending.values(), *self.waiting, *([self.current] if self.current else [])]
        return {a.command_id: a.payload for a in airings if a.payload}

    def resume(self, payload: bytes, now: float) -> list[Action]:
        """After a reboot, take up a command `held` kept. It is checked again as on arrival (a key may
        have been withdrawn meanwhile), but its id is known: its last ack says how far it got. Past its
        expiry it is acked `expired` (`expired_before_start`); one that was on air is not played a second
        time (acked `failed`, `playback_failed: interrupted by a restart`); any other goes on from where it
        was, without a second `received`: its audio is fetched again (from the cache), and it starts at
        `start_at`, or at once and late if that has passed. A command already final, or held now, is left
        alone."""
        now = self._daemon(now)
        try:
            command = json.loads(payload)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return []
        cid = command.get("id") if isinstance(command, dict) else None
        if not _is_id(cid) or cid not in self.seen or cid in self.held():
            return []
        last = self.seen.last_message(cid) or {}
        if last.get("state") not in ("received", "downloaded", "playing"):
            return []
        try:
            protocol.check_command(command, self.keys, _utc(now), recipients=self.recipients)
        except protocol.Refusal as refusal:
            if refusal.code == "expired":
                return [self._ack(cid, "expired", now, reason="expired_before_start")]
            return self._refuse(refusal.code)
        if last.get("state") == "playing":
            return [self._ack(cid, "failed", now, reason="playback_failed: interrupted by a restart")]
        start = protocol.parse_time(command["start_at"]).timestamp()
        expires = protocol.parse_time(command["expires_at"]).timestamp()
        entry = self.seen.items[cid]
        prior = entry.last
        out = self._handle(command, cid, now, start, expires)
        entry.last = prior  # its last ack stands: the `received` _handle made is not sent again
        if cid in self.pending:
            self.pending[cid].payload = payload
            self.pending[cid].resumed = last.get("state") == "downloaded"
        return [a for a in out if not (isinstance(a, Ack) and a.command_id == cid and a.state == "received")]

    def _handle(self, command: dict[str, Any], cid: str, now: float, start: float, expires: float) -> list[Action]:
        ctype = command.get("type")
        body = command.get("body")
        if not isinstance(body, dict):
            return [self._ack(cid, "rejected", now, reason="bad_body")]
        if ctype == "ping":
            return [self._ack(cid, "done", now, pong=protocol.format_time(_utc(now)))]
        if ctype == "config":
            return [self._ack(cid, "done", now)]
        if ctype == "stop":
            return self._stop(cid, body, now, expires)
        if self.kind == "speaker" and ctype == "play":
            return self._play(command, cid, body, now, start, expires)
        if self.kind == "speaker" and ctype == "volume":
            level = body.get("level")
            if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 100:
                return [self._ack(cid, "rejected", now, reason="bad_volume")]
            self.volume = level
            return [SetVolume(level), self._ack(cid, "done", now, volume=level)]
        if self.kind == "led" and ctype == "led.show":
            return self._show(command, cid, body, now, start, expires)
        if self.kind == "led" and ctype == "led.clear":
            out = self._end_current(now) if self.current is not None else []
            return [*out, Blank(), self._ack(cid, "done", now)]
        return [self._ack(cid, "rejected", now, reason=f"unsupported: {ctype}")]

    def _airing(
        self, command: dict[str, Any], start: float, expires: float, duration_s: float, **what: Any
    ) -> Airing:
        return Airing(
            command_id=command["id"],
            rank=RANK.get(command.get("priority", "normal"), RANK["normal"]),
            start=start,
            expires=expires,
            duration_s=duration_s,
            **what,
        )

    def _play(
        self, command: dict[str, Any], cid: str, body: dict[str, Any], now: float, start: float, expires: float
    ) -> list[Action]:
        stream, audio = body.get("stream"), body.get("audio")
        if isinstance(stream, dict):
            url, duration = stream.get("url"), stream.get("duration_s")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                return [self._ack(cid, "rejected", now, reason="bad_stream_url")]
            if not _positive(duration):
                return [self._ack(cid, "rejected", now, reason="bad_duration")]
            airing = self._airing(command, start, expires, float(duration), stream_url=url)
            self.pending[cid] = airing
            return [self._ack(cid, "received", now), self._arm(airing)]
        if not isinstance(audio, dict) or not _is_sha256(audio.get("sha256")) or not isinstance(audio.get("url"), str):
            return [self._ack(cid, "rejected", now, reason="bad_body")]
        duration_ms = audio.get("duration_ms")
        seconds = duration_ms / 1000 if _positive(duration_ms) else 0.0
        airing = self._airing(command, start, expires, seconds, audio=dict(audio))
        self.pending[cid] = airing
        return [self._ack(cid, "received", now), Fetch(cid, dict(audio), self._local(airing.expires))]

    def _show(
        self, command: dict[str, Any], cid: str, body: dict[str, Any], now: float, start: float, expires: float
    ) -> list[Action]:
        text = body.get("text")
        if not isinstance(text, str):
            return [self._ack(cid, "rejected", now, reason="bad_body")]
        if not self.diacritics:
            text = protocol.strip_diacritics(text)
        duration = body.get("duration_s")
        seconds = float(duration) if _positive(duration) else DEFAULT_SHOW_S
        airing = self._airing(command, start, expires, seconds, text=text)
        self.pending[cid] = airing
        return [self._ack(cid, "received", now), self._arm(airing)]

    def _stop(self, cid: str, body: dict[str, Any], now: float, expires: float) -> list[Action]:
        """Without `cmd`: cut what is on air. With `cmd`: that command only, whether on air, waiting for
        its turn or not yet started (a recalled item must not start later), and even before it has
        arrived: a speaker back from an outage may get the stop before the play it recalls, and must
        then never play it. Such an id is taken now, with the stop's expiry and `stopped` as its last
        ack, so the play, when it comes, is a command seen before."""
        target = body.get("cmd")
        if target is not None and not _is_id(target):
            return [self._ack(cid, "rejected", now, reason="bad_body")]
        out: list[Action] = []
        if target is None or (self.current is not None and self.current.command_id == target):
            if self.current is not None:
                out += self._cut(now, "stopped")
                out += self._next_waiting(now)
        elif target not in self.seen:
            self.seen.add(target, expires)
            out.append(self._ack(target, "failed", now, reason="stopped"))
        else:
            dropped = self.pending.pop(target, None)
            for airing in [a for a in self.waiting if a.command_id == target]:
                self.waiting.remove(airing)
                dropped = airing
            if dropped is not None:
                out.append(self._ack(target, "failed", now, reason="stopped"))
        return [*out, self._ack(cid, "done", now)]

    # ------------------------------------------------------------ what the driver reports back

    def fetched(self, command_id: str, error: str | None, now: float) -> list[Action]:
        """The download of a `Fetch` is over: `error` is None, or why it failed (`download_failed: ...`,
        `hash_mismatch: ...`)."""
        now = self._daemon(now)
        airing = self.pending.get(command_id)
        if airing is None:
            return []  # stopped meanwhile
        if error is not None:
            del self.pending[command_id]
            return [self._ack(command_id, "failed", now, reason=error[:200])]
        if airing.resumed:
            return [self._arm(airing)]
        return [self._ack(command_id, "downloaded", now), self._arm(airing)]

    def wake(self, command_id: str, now: float) -> list[Action]:
        """A `Wake` came due: a start instant, the expiry of an airing still waiting for its turn, or the
        end of the grace a higher priority gave the item on air (`END_GRACE_S`). A start that comes early
        by the daemon's clock (asked for before the offset moved) is asked for again, at the right time."""
        now = self._daemon(now)
        airing = self.pending.get(command_id)
        if airing is not None and now < airing.start - EARLY_WAKE_S:
            return [self._arm(airing)]
        airing = self.pending.pop(command_id, None)
        if airing is not None:
            return self._at_start(airing, now)
        for waiting in self.waiting:
            if waiting.command_id == command_id and now >= waiting.expires:
                self.waiting.remove(waiting)
                return [self._ack(command_id, "expired", now, reason="expired_before_start")]
            if waiting.command_id == command_id and self._overran(waiting, now):
                self.waiting.remove(waiting)  # what it waited for is still on air past its length: cut it
                return self._cut(now, "preempted") + self._begin(waiting, now)
        return []

    def ended(
        self, command_id: str, now: float, error: str | None = None, played_s: float | None = None
    ) -> list[Action]:
        """The play or show of `command_id` stopped by itself: its end, or a player that failed.
        `played_s`: the seconds of sound the player really gave out, if it knows (a relay's sink counts
        the seconds it relayed, not the gaps while it reconnected); otherwise the time since the start."""
        now = self._daemon(now)
        if self.current is None or self.current.command_id != command_id:
            return []  # cut earlier; its ack is out already
        out = self._end_current(now, error, played_s)
        return out + self._next_waiting(now)

    # ------------------------------------------------------------ on air

    def _at_start(self, airing: Airing, now: float) -> list[Action]:
        out: list[Action] = []
        if self.current is not None:
            if self.kind == "led":
                out += self._end_current(now)  # a board shows the newest text, whatever its priority
            elif airing.rank > self.current.rank and not self._ending(now):
                out += self._cut(now, "preempted")
            elif airing.rank > self.current.rank:
                # What is on air ends within END_GRACE_S: let it, then this one starts (first, and late by
                # what was left); if it is still on air END_GRACE_S past its end, it is cut then.
                self.waiting.append(airing)
                grace_end = self.current.began + self.current.duration_s + END_GRACE_S
                return [self._wake_at(airing.command_id, grace_end), self._wake_at(airing.command_id, airing.expires)]
            else:
                # An equal or lower priority waits for the one on air to end; it starts late, or expires.
                self.waiting.append(airing)
                return [self._wake_at(airing.command_id, airing.expires)]
        if now >= airing.expires:
            return [*out, self._ack(airing.command_id, "expired", now, reason="expired_before_start")]
        return out + self._begin(airing, now)

    def _begin(self, airing: Airing, now: float) -> list[Action]:
        """On air from `now`: a late start plays from the beginning (the whole item, not its tail)."""
        self.current = airing
        airing.began = now
        error_ms = round((now - airing.start) * 1000, 3)
        playing = self._ack(airing.command_id, "playing", now, start_error_ms=error_ms)
        began = self._local(now)  # the driver's clock: it times the play's end from it
        if self.kind == "led":
            return [playing, Show(airing.command_id, airing.text, airing.duration_s, began, error_ms)]
        return [
            playing,
            Play(airing.command_id, airing.audio, airing.stream_url, airing.duration_s, began, error_ms),
        ]

    def _end_current(self, now: float, error: str | None = None, played_s: float | None = None) -> list[Action]:
        assert self.current is not None
        ended, self.current = self.current, None
        out: list[Action] = [Blank()] if self.kind == "led" else []
        played = self._played(ended, now, played_s)
        if error is not None:
            return [*out, self._ack(ended.command_id, "failed", now, reason=error[:200], **played)]
        return [*out, self._ack(ended.command_id, "done", now, **played)]

    def _cut(self, now: float, reason: str) -> list[Action]:
        assert self.current is not None
        cut, self.current = self.current, None
        out: list[Action] = [Blank()] if self.kind == "led" else [Silence(cut.command_id)]
        played = self._played(cut, now)
        if reason == "preempted" and cut.duration_s > 0 and now - cut.began >= cut.duration_s:
            return [*out, self._ack(cut.command_id, "done", now, **played)]  # on air its whole length: heard
        return [*out, self._ack(cut.command_id, "failed", now, reason=reason, **played)]

    def _ending(self, now: float) -> bool:
        """The item on air ends within END_GRACE_S (by its announced length)."""
        cur = self.current
        return cur is not None and cur.duration_s > 0 and now >= cur.began + cur.duration_s - END_GRACE_S

    def _overran(self, waiting: Airing, now: float) -> bool:
        """`waiting` outranks the item on air, which has been on air its whole announced length."""
        cur = self.current
        return cur is not None and waiting.rank > cur.rank and cur.duration_s > 0 and now >= cur.began + cur.duration_s

    def _played(self, airing: Airing, now: float, played_s: float | None = None) -> dict[str, float]:
        """`played_s` for the final ack of a speaker's play: what the player counted, or the time on air."""
        if self.kind != "speaker":
            return {}
        seconds = played_s if played_s is not None else now - airing.began
        return {"played_s": round(max(0.0, seconds), 3)}

    def _next_waiting(self, now: float) -> list[Action]:
        """The highest priority of those waiting, the earliest first among equals."""
        out: list[Action] = []
        self.waiting.sort(key=lambda a: (-a.rank, a.start))
        while self.waiting:
            airing = self.waiting.pop(0)
            if now >= airing.expires:
                out.append(self._ack(airing.command_id, "expired", now, reason="expired_before_start"))
                continue
            return out + self._begin(airing, now)
        return out

    # ------------------------------------------------------------ the daemon's clock

    def time_request(self, now: float) -> dict[str, Any]:
        """A time request to publish on the device's `time` topic now (when `clock.next_at` comes)."""
        return self.clock.request(now)

    def time_reply(self, payload: bytes, now: float) -> list[Action]:
        """A payload from the device's `clock` topic, heard at `now` (take the time as it arrives: the
        wait before this call would count as network delay). A genuine answer to a request of ours moves
        the offset; the starts already asked for move with it, and when the round is over the status says
        the new offset. Anything else is refused without a word, like a bad command; an answer can never
        make the device play."""
        try:
            reply = json.loads(payload)
            if not isinstance(reply, dict):
                return self._refuse("malformed")
            t1, t2, t3 = protocol.check_time_reply(reply, self.keys, self.device_id)
        except protocol.Refusal as refusal:
            return self._refuse(refusal.code)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return self._refuse("malformed")
        if not self.clock.asked(t1):
            return self._refuse("unasked_time")  # an old answer replayed, or one for a request never sent
        had, before = self.clock.best, self.clock.applied_s
        if self.clock.answer(t1, t2, t3, now) is None:
            return []  # genuine, but its round trip says too little (MAX_DELAY_S): dropped, not refused
        out: list[Action] = []
        if abs(self.clock.applied_s - before) >= APPLY_FROM_S:
            out += [self._arm(a) for a in self.pending.values() if a.armed]
        if had is None or self.clock.round_over:
            out.append(Restatus())
        return out

    def _daemon(self, local: float) -> float:
        return local + self.clock.applied_s

    def _local(self, daemon: float) -> float:
        return daemon - self.clock.applied_s

    def _wake_at(self, command_id: str, at: float, start: bool = False) -> Wake:
        """A Wake at the daemon's instant `at`, on the driver's clock."""
        return Wake(command_id, self._local(at), start)

    def _arm(self, airing: Airing) -> Wake:
        airing.armed = True
        return self._wake_at(airing.command_id, airing.start, True)

    # ------------------------------------------------------------ acks and refusals

    def _ack(self, command_id: str, state: protocol.AckState, now: float, **extra: Any) -> Ack:
        ack = Ack(command_id, state, now, extra)
        self.seen.record(ack)
        return ack

    def _refuse(self, code: str) -> list[Action]:
        self.refused[code] += 1
        return [Refused(code)]


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _is_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def _positive(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0 and value < float("inf")
