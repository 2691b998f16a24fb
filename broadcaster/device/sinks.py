"""Where a speaker's sound goes: a sound card (ffplay/aplay), a file (simulation), or nowhere.

Each sink blocks while "playing" and can be stopped from another thread (an emergency cuts a bulletin).
A sink that cannot play raises `PlaybackError`, so the command is acked `failed` with the reason
instead of `done`: a relay whose stream cannot be opened was never heard.

A relay (`play_stream`) is one ffmpeg reading the station for each connection (`StreamRelay`): a stream
that cannot be opened is `stream_unreachable` (ffplay itself exits 0 when it cannot open its input, which
is how a relay nobody heard used to be acked `done`); one that drops mid-window is opened again, backing
off, until the window ends; and what it returns is the seconds of audio that really came through,
counted by ffmpeg (`-progress`), not the length of the window.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger(__name__)

RECONNECT_FIRST_S = 0.5  # the first pause before opening a dropped stream again; doubled each failure
RECONNECT_MAX_S = 8.0  # ... up to this; each pause is jittered (50-100 %) so villages do not dial together
OPEN_GIVE_UP_S = 10.0  # a stream that has not given a second of audio yet is tried this long, then failed


class PlaybackError(RuntimeError):
    """Nothing (or not all) was played; the message is the ack's reason (`playback_failed: ...`,
    `stream_unreachable: ...`), and `played_s` the seconds heard before it, when the sink knows."""

    def __init__(self, message: str, played_s: float | None = None) -> None:
        super().__init__(message)
        self.played_s = played_s


class Sink(Protocol):
    name: str

    def play(self, path: Path, duration_ms: int, started_at: float) -> None: ...

    def play_stream(self, url: str, duration_s: float, started_at: float) -> float | None:
        """Relay `url` until `started_at + duration_s`; the seconds really relayed (None: not counted)."""
        ...

    def stop(self) -> None: ...


class NullSink:
    """Plays nothing but takes as long as the audio would, so acks follow real timing."""

    name = "null"

    def __init__(self) -> None:
        self._stop = threading.Event()

    def play(self, path: Path, duration_ms: int, started_at: float) -> None:
        self._stop = stop = threading.Event()  # one per play: a stop never leaks into the next item
        stop.wait(duration_ms / 1000)

    def play_stream(self, url: str, duration_s: float, started_at: float) -> float | None:
        self.play(Path(url), int(duration_s * 1000), started_at)
        return None  # nothing was opened, so nothing was counted

    def stop(self) -> None:
        self._stop.set()


# ---------------------------------------------------------------- relaying a stream

_PROGRESS = re.compile(r"out_time_(?:us|ms)=(-?\d+)")  # both are microseconds (ffmpeg's old name lies)
_KEY_VALUE = re.compile(r"[a-z_0-9]+=.*")
_ADDRESS = re.compile(r"^\[[^]]+ @ 0x[0-9a-f]+\] ")  # "[tcp @ 0x55c8...] " before a message
# The lines of ffmpeg's errors that say why a stream did not open, most telling first
_TELLING = ("resolve", "refused", "HTTP error", "Server returned", "timed out", "unreachable", "reset")
_GONE = re.compile(r"(HTTP error|Server returned) 4\d\d")  # the server says the stream is not there


@dataclass
class Segment:
    """One connection to the stream: the seconds of audio it gave, and why it ended."""

    played_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    player_error: str = ""

    @property
    def gone(self) -> bool:
        return any(_GONE.search(line) for line in self.errors)

    def why(self) -> str:
        for word in _TELLING:
            for line in self.errors:
                if word in line:
                    return line[:150]
        # ffmpeg ended by us at the window's end says so; that is no reason the stream failed
        said = [line for line in self.errors if "Immediate exit requested" not in line]
        return said[-1][:150] if said else ""


class StreamRelay:
    """One relay: connections to the stream, one after another, until its window ends.

    `output` is ffmpeg's output options; `player`, if any, is the command that reads ffmpeg's output on
    its standard input (the sound card's player), else ffmpeg writes to `sink_file`. The input is read
    at its own pace (`-re`), as a speaker plays it, so the seconds ffmpeg reports are seconds heard.
    """

    def __init__(
        self,
        url: str,
        output: list[str],
        stop: threading.Event,
        *,
        player: list[str] | None = None,
        sink_file: Callable[[], IO[bytes]] | None = None,
    ) -> None:
        self.url, self.output, self.stop, self.player = url, output, stop, player
        self.sink_file = sink_file
        self.segments: list[Segment] = []

    def run(self, duration_s: float, started_at: float) -> float:
        """Relay until the window ends (or a stop); the seconds relayed. PlaybackError if nothing came
        through (`stream_unreachable: ...`) or the player failed (`playback_failed: ...`)."""
        deadline = time.monotonic() + max(0.0, duration_s - max(0.0, time.time() - started_at))
        played, pause = 0.0, RECONNECT_FIRST_S
        first_try = time.monotonic()
        while not self.stop.is_set() and deadline - time.monotonic() > 0.05:
            seg = self._connect(deadline)
            self.segments.append(seg)
            played += seg.played_s
            if seg.player_error:
                raise PlaybackError(f"playback_failed: {seg.player_error}", played)
            if self.stop.is_set() or deadline - time.monotonic() <= 0.05:
                break
            if seg.gone:
                break  # the server says it is not there (4xx): a live voice that has ended, a wrong address
            if seg.played_s > 0:
                pause = RECONNECT_FIRST_S
                log.warning("relay %s dropped after %.1f s (%s); reconnecting", self.url, seg.played_s, seg.why())
            elif played == 0 and time.monotonic() - first_try >= OPEN_GIVE_UP_S:
                break
            self.stop.wait(min(deadline - time.monotonic(), pause * random.uniform(0.5, 1.0)))
            pause = min(pause * 2, RECONNECT_MAX_S)
        if played <= 0 and not self.stop.is_set():  # a relay stopped before it began is no failure of its stream
            why = next((s.why() for s in reversed(self.segments) if s.why()), "") or "no audio"
            log.warning("relay %s could not be opened: %s", self.url, why)
            raise PlaybackError(f"stream_unreachable: {why}", 0.0)
        return round(played, 3)

    def _connect(self, deadline: float) -> Segment:
        """One connection, until the stream ends or breaks, the window ends (`deadline`, monotonic) or a
        stop. Opened with as little probing and buffering as ffmpeg allows: a relay starts on time, and a
        live voice is heard as it is spoken (docs/protocol.md, *play*)."""
        cmd = [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:2",
            "-fflags", "nobuffer", "-probesize", "32", "-analyzeduration", "0", "-re",
            "-t", f"{deadline - time.monotonic():.3f}", "-i", self.url, *self.output,
        ]  # fmt: skip
        seg = Segment()
        out = self.sink_file() if self.sink_file is not None else None
        try:
            reader = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if self.player else (out or subprocess.DEVNULL),
                stderr=subprocess.PIPE,
            )  # fmt: skip
        finally:
            if out is not None:
                out.close()  # the child has its own descriptor
        player = None
        if self.player is not None:
            player = subprocess.Popen(
                self.player, stdin=reader.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            assert reader.stdout is not None
            reader.stdout.close()  # the player's now: ffmpeg sees a closed pipe if the player dies
        watcher = threading.Thread(target=self._read_progress, args=(reader, seg), daemon=True)
        watcher.start()
        while reader.poll() is None and not self.stop.is_set() and time.monotonic() < deadline + 0.5:
            if player is not None and player.poll() is not None:
                break
            self.stop.wait(0.05)
        for proc in (reader, player):
            if proc is not None and proc.poll() is None and (self.stop.is_set() or proc is reader):
                proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            reader.wait(timeout=5)
        if player is not None:
            try:
                player.wait(timeout=10)  # it plays out what it has buffered
            except subprocess.TimeoutExpired:
                player.kill()
                player.wait()
            if player.returncode != 0 and not self.stop.is_set():
                seg.player_error = _stderr_tail(player)
        watcher.join(timeout=5)
        return seg

    @staticmethod
    def _read_progress(reader: subprocess.Popen[bytes], seg: Segment) -> None:
        assert reader.stderr is not None
        for raw in reader.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if (m := _PROGRESS.fullmatch(line)) is not None:
                seg.played_s = max(seg.played_s, int(m.group(1)) / 1e6)
            elif line and not _KEY_VALUE.fullmatch(line):
                seg.errors.append(_ADDRESS.sub("", line))


def _stderr_tail(proc: subprocess.Popen[bytes]) -> str:
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    return lines[-1][:150] if lines else f"exit code {proc.returncode}"


class FileSink(NullSink):
    """Simulation: keeps each aired file and a JSON line per play, so a person can listen afterwards."""

    name = "file"

    def __init__(self, out_dir: Path) -> None:
        super().__init__()
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)

    def _log(self, entry: dict[str, object]) -> None:
        with (self.out_dir / "played.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def play(self, path: Path, duration_ms: int, started_at: float) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started_at))
        copy = self.out_dir / f"{stamp}-{path.name}"
        shutil.copyfile(path, copy)
        self._log({"started_at": started_at, "file": copy.name, "duration_ms": duration_ms})
        super().play(path, duration_ms, started_at)

    def play_stream(self, url: str, duration_s: float, started_at: float) -> float | None:
        """Record what the relay carried, for as long as it airs (every connection's audio appended to
        one file), so a person can check it later; the seconds relayed."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started_at))
        out = self.out_dir / f"{stamp}-relay.mp3"
        out.unlink(missing_ok=True)
        self._stop = stop = threading.Event()
        relay = StreamRelay(url, ["-c", "copy", "-f", "mp3", "pipe:1"], stop, sink_file=lambda: out.open("ab"))
        try:
            relayed = relay.run(duration_s, started_at)
        except PlaybackError:
            out.unlink(missing_ok=True)
            raise
        self._log({"started_at": started_at, "stream": url, "file": out.name, "duration_s": duration_s,
                   "relayed_s": relayed, "connections": len(relay.segments)})  # fmt: skip
        return relayed


class CommandSink:
    """A real sound card through ffplay (or aplay via ffmpeg), for a Raspberry Pi or a laptop."""

    def __init__(self, name: str) -> None:
        if name not in ("ffplay", "aplay"):
            raise ValueError(name)
        self.name = name
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._stream_stop = threading.Event()

    def _run(self, cmd: list[str]) -> None:
        with self._lock:
            self._stopped = False
            self._proc = proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        proc.wait()
        with self._lock:
            stopped = self._stopped
        if proc.returncode != 0 and not stopped:
            raise PlaybackError(f"playback_failed: {_stderr_tail(proc)}")

    def play(self, path: Path, duration_ms: int, started_at: float) -> None:
        if self.name == "ffplay":
            self._run(["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", str(path)])
        else:
            self._run(["sh", "-c", 'ffmpeg -loglevel error -i "$1" -f wav - | aplay -q', "sh", str(path)])

    def play_stream(self, url: str, duration_s: float, started_at: float) -> float | None:
        """ffmpeg reads the stream (and counts what it decodes); the player only plays its WAV output."""
        with self._lock:
            self._stream_stop = stop = threading.Event()
        if self.name == "ffplay":
            player = ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", "-i", "pipe:0"]
        else:
            player = ["aplay", "-q"]
        return StreamRelay(url, ["-f", "wav", "pipe:1"], stop, player=player).run(duration_s, started_at)

    def stop(self) -> None:
        with self._lock:
            self._stream_stop.set()
            if self._proc and self._proc.poll() is None:
                self._stopped = True
                self._proc.terminate()


def has_sound_card() -> bool:
    return Path("/dev/snd").is_dir() and any(Path("/dev/snd").glob("pcm*p")) and shutil.which("ffplay") is not None


def make_sink(name: str, out_dir: Path) -> Sink:
    if name == "auto":
        name = "ffplay" if has_sound_card() else "file"
    if name == "file":
        return FileSink(out_dir)
    if name == "null":
        return NullSink()
    return CommandSink(name)
