"""Where a speaker's sound goes: a sound card (ffplay/aplay), a file (simulation), or nowhere.

Each sink blocks while "playing" and can be stopped from another thread (an emergency cuts a bulletin).
A sink that cannot play raises `PlaybackError`, so the command is acked `failed` with the reason
instead of `done`: a relay whose stream cannot be opened was never heard.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Protocol


class PlaybackError(RuntimeError):
    """Nothing (or not all) was played; the message is the ack's reason, `playback_failed: ...`."""


class Sink(Protocol):
    name: str

    def play(self, path: Path, duration_ms: int, started_at: float) -> None: ...

    def play_stream(self, url: str, duration_s: float, started_at: float) -> None: ...

    def stop(self) -> None: ...


class NullSink:
    """Plays nothing but takes as long as the audio would, so acks follow real timing."""

    name = "null"

    def __init__(self) -> None:
        self._stop = threading.Event()

    def play(self, path: Path, duration_ms: int, started_at: float) -> None:
        self._stop = stop = threading.Event()  # one per play: a stop never leaks into the next item
        stop.wait(duration_ms / 1000)

    def play_stream(self, url: str, duration_s: float, started_at: float) -> None:
        self.play(Path(url), int(duration_s * 1000), started_at)

    def stop(self) -> None:
        self._stop.set()


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

    def play_stream(self, url: str, duration_s: float, started_at: float) -> None:
        """Record what the relay carried, for as long as it airs, so a person can check it later. A
        stream that cannot be opened, or breaks off with an error, raises PlaybackError."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started_at))
        out = self.out_dir / f"{stamp}-relay.mp3"
        self._stop = stop = threading.Event()
        proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-t", f"{duration_s:.3f}", "-i", url,
             "-c", "copy", str(out)],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + duration_s
        while not stop.is_set() and proc.poll() is None and time.monotonic() < deadline:
            stop.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
        elif proc.returncode != 0 and not stop.is_set():
            out.unlink(missing_ok=True)
            raise PlaybackError(f"playback_failed: {_stderr_tail(proc)}")
        self._log({"started_at": started_at, "stream": url, "file": out.name, "duration_s": duration_s})


class CommandSink:
    """A real sound card through ffplay (or aplay via ffmpeg), for a Raspberry Pi or a laptop."""

    def __init__(self, name: str) -> None:
        if name not in ("ffplay", "aplay"):
            raise ValueError(name)
        self.name = name
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._lock = threading.Lock()

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

    def play_stream(self, url: str, duration_s: float, started_at: float) -> None:
        if self.name == "ffplay":
            self._run(["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", "-t", f"{duration_s:.3f}", url])
        else:
            script = 'ffmpeg -loglevel error -t "$2" -i "$1" -f wav - | aplay -q'
            self._run(["sh", "-c", script, "sh", url, f"{duration_s:.3f}"])

    def stop(self) -> None:
        with self._lock:
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
