"""The speaker agent: fetch the audio early, check its hash, start on the dot, report how close it was."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audio.store import file_sha256
from broadcaster import protocol
from broadcaster.device.agent import AgentConfig, DeviceAgent, wait_until
from broadcaster.device.sinks import Sink, make_sink

log = logging.getLogger(__name__)

RANK = {p: i for i, p in enumerate(protocol.PRIORITIES)}
DOWNLOAD_TIMEOUT_S = 20


def fetch_audio(audio: dict[str, Any], cache_dir: Path, tag: str = "") -> Path:
    """Download an item once into the cache, keeping it only if its SHA-256 is the one signed in the
    command. `tag` keeps the temporary names of processes sharing one cache apart."""
    sha = audio["sha256"]
    path = cache_dir / f"{sha}.{audio.get('format') or 'mp3'}"
    if path.exists() and file_sha256(path) == sha:
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{tag}.part" if tag else f"{path.name}.part")
    with urllib.request.urlopen(audio["url"], timeout=DOWNLOAD_TIMEOUT_S) as resp, tmp.open("wb") as out:
        while chunk := resp.read(1 << 16):
            out.write(chunk)
    got = file_sha256(tmp)
    if got != sha:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"hash_mismatch: expected {sha[:12]}, got {got[:12]}")
    tmp.replace(path)
    return path


class SpeakerAgent(DeviceAgent):
    kind = "speaker"

    def __init__(self, config: AgentConfig, sink: Sink | None = None) -> None:
        super().__init__(config)
        self.cache_dir = self.state_dir / "audio"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.sink = sink or make_sink(config.sink, self.state_dir / "played")
        self.volume = 80
        self._play_lock = threading.Lock()
        self._current: tuple[str, int, threading.Event] | None = None  # (command id, rank, preempted)

    def status_extra(self) -> dict[str, Any]:
        return {**super().status_extra(), "volume": self.volume, "sink": self.sink.name}

    def handle(self, command: dict[str, Any]) -> None:
        ctype = command.get("type")
        if ctype == "play":
            self._play(command)
        elif ctype == "stop":
            self._preempt_current()
            self.ack(command["id"], "done")
        elif ctype == "volume":
            level = command.get("body", {}).get("level")
            if not isinstance(level, int) or not 0 <= level <= 100:
                self.ack(command["id"], "failed", reason="bad_volume")
                return
            self.volume = level
            self.ack(command["id"], "done", volume=level)
        else:
            super().handle(command)

    def fetch(self, audio: dict[str, Any]) -> Path:
        return fetch_audio(audio, self.cache_dir)

    def fetch_until(self, audio: dict[str, Any], deadline: float) -> Path:
        """Keep trying until shortly before the start: a 4G link drops, the server restarts. A wrong
        hash is not retried; the file will not change."""
        delay = 0.5
        while True:
            try:
                return self.fetch(audio)
            except ValueError:
                raise
            except OSError:
                if time.time() + delay > deadline - 0.2 or self._stop.is_set():
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _play(self, command: dict[str, Any]) -> None:
        cid = command["id"]
        self.ack(cid, "received")
        body = command.get("body") or {}
        audio, stream = body.get("audio"), body.get("stream")
        if isinstance(stream, dict):
            url, duration = stream.get("url"), stream.get("duration_s")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                self.ack(cid, "failed", reason="bad_stream_url")
                return
            if not isinstance(duration, (int, float)) or duration <= 0:
                self.ack(cid, "failed", reason="bad_duration")
                return
            self._air(command, lambda started: self.sink.play_stream(url, float(duration), started))
            return
        if not isinstance(audio, dict) or not isinstance(audio.get("sha256"), str):
            self.ack(cid, "failed", reason="bad_body")
            return
        try:
            path = self.fetch_until(audio, protocol.parse_time(command["start_at"]).timestamp())
        except Exception as exc:
            self.ack(cid, "failed", reason=f"download_failed: {exc}"[:200])
            return
        self.ack(cid, "downloaded")
        duration_ms = int(audio.get("duration_ms") or 0)
        self._air(command, lambda started: self.sink.play(path, duration_ms, started))

    def _air(self, command: dict[str, Any], run: Callable[[float], None]) -> None:
        """Start on the dot, make room by priority, report the start error, then the outcome."""
        cid = command["id"]
        start = protocol.parse_time(command["start_at"]).timestamp()
        expires = protocol.parse_time(command["expires_at"]).timestamp()
        if not wait_until(start, self._stop):
            return
        rank = RANK.get(command.get("priority", "normal"), 1)
        preempted = threading.Event()
        with self._play_lock:
            if self._current is not None:
                if rank >= self._current[1]:
                    self._current[2].set()
                    self.sink.stop()
                else:
                    # A lower priority item waits for the one on air; it may start late or expire.
                    self._play_lock.release()
                    try:
                        while self._current is not None and time.time() < expires:
                            time.sleep(0.05)
                    finally:
                        self._play_lock.acquire()
            now = time.time()
            if now >= expires:
                self.ack(cid, "expired", reason="expired_before_start")
                return
            self._current = (cid, rank, preempted)
        self.ack(cid, "playing", start_error_ms=round((now - start) * 1000, 3))
        try:
            run(now)
        finally:
            with self._play_lock:
                if self._current is not None and self._current[0] == cid:
                    self._current = None
        if preempted.is_set():
            self.ack(cid, "failed", reason="preempted")
        else:
            self.ack(cid, "done")

    def _preempt_current(self) -> None:
        with self._play_lock:
            if self._current is not None:
                self._current[2].set()
                self.sink.stop()
