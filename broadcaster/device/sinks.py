"""Where a speaker's sound goes: a sound card (ffplay/aplay), a file (simulation), or nowhere.

Each sink blocks while "playing" and can be stopped from another thread (an emergency cuts a bulletin).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Protocol


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


class FileSink(NullSink):
    """Simulation: keeps each aired file and a JSON line per play, so a person can listen afterwards."""

    name = "file"

    def __init__(self, out_dir: Path) -> None:
        super().__init__()
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)

    def play(self, path: Path, duration_ms: int, started_at: float) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started_at))
        copy = self.out_dir / f"{stamp}-{path.name}"
        shutil.copyfile(path, copy)
        with (self.out_dir / "played.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"started_at": started_at, "file": copy.name, "duration_ms": duration_ms}) + "\n")
        super().play(path, duration_ms, started_at)

    def play_stream(self, url: str, duration_s: float, started_at: float) -> None:
        """Record what the relay carried, for as long as it airs, so a person can check it later."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started_at))
        out = self.out_dir / f"{stamp}-relay.mp3"
        self._stop = stop = threading.Event()
        proc = subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-t",
                f"{duration_s:.3f}",
                "-i",
                url,
                "-c",
                "copy",
                str(out),
            ],
            stdin=subprocess.DEVNULL,
        )
        with (self.out_dir / "played.jsonl").open("a", encoding="utf-8") as f:
            f.write(
                json.dumps({"started_at": started_at, "stream": url, "file": out.name, "duration_s": duration_s}) + "\n"
            )
        stop.wait(duration_s)
        if proc.poll() is None:
            proc.terminate()
        proc.wait()


class CommandSink:
    """A real sound card through ffplay (or aplay via ffmpeg), for a Raspberry Pi or a laptop."""

    def __init__(self, name: str) -> None:
        if name not in ("ffplay", "aplay"):
            raise ValueError(name)
        self.name = name
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def play(self, path: Path, duration_ms: int, started_at: float) -> None:
        if self.name == "ffplay":
            cmd = ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", str(path)]
        else:
            cmd = ["sh", "-c", 'ffmpeg -loglevel error -i "$1" -f wav - | aplay -q', "sh", str(path)]
        with self._lock:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        self._proc.wait()

    def play_stream(self, url: str, duration_s: float, started_at: float) -> None:
        if self.name == "ffplay":
            cmd = ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", "-t", f"{duration_s:.3f}", url]
        else:
            cmd = [
                "sh",
                "-c",
                'ffmpeg -loglevel error -t "$2" -i "$1" -f wav - | aplay -q',
                "sh",
                url,
                f"{duration_s:.3f}",
            ]
        with self._lock:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        self._proc.wait()

    def stop(self) -> None:
        with self._lock:
            if self._proc and self._proc.poll() is None:
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
