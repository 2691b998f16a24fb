"""A live voice on its way to the speakers: one ffmpeg per session, and every listener fed from the live edge.

The officer's browser records in the container it knows (WebM or Ogg with Opus, or MP4 with AAC on
Safari) and sends it a slice at a time. A speaker's player knows none of that for sure, but every one
plays an MP3 stream over HTTP (it is what a relay of a radio station carries), so one ffmpeg per
session turns the slices into MP3 frames as they come: no probing beyond the container's header
(`-probesize 32 -analyzeduration 0`), no input buffering (`-fflags nobuffer`), each frame written to
the pipe the moment it is encoded (`-flush_packets 1`), no ID3 or Xing header in front of the frames.

What ffmpeg writes goes into a ring of the last few seconds and to the recording file at once. A
listener starts at the live edge (a speaker that joins late hears what is said from then on, not a
backlog it would lag behind forever) and reads from its own offset; one that falls further behind
than the ring holds (a slow 4G link) jumps to the edge instead of holding memory for everybody.
Listeners are woken by a callback, so the HTTP side may be asyncio, threads or anything else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"

# What a browser's MediaRecorder may send (its `mimeType`, parameters aside) -> ffmpeg's demuxer
INPUT_FORMATS = {"audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "mp4"}
KEEP_BYTES = 64 * 1024  # the ring: 8 s of 64 kbit/s MP3
READ_BYTES = 64 * 1024


class LiveStreamError(RuntimeError):
    """The encoder is gone (it failed, or the stream was closed): nothing more can be fed."""


def input_format(mime: str) -> str | None:
    """ffmpeg's demuxer for a MediaRecorder MIME type ("audio/webm;codecs=opus" -> "webm"); None if unknown."""
    return INPUT_FORMATS.get(mime.split(";", 1)[0].strip().lower())


class Listener:
    """One reader of the stream: a speaker's HTTP connection."""

    def __init__(self, stream: LiveStream, wake: Callable[[], None], offset: int) -> None:
        self._stream = stream
        self.wake = wake
        self.offset = offset
        self.skipped = 0  # bytes jumped over because this reader fell behind the ring

    def read(self) -> tuple[bytes, bool]:
        """What arrived since the last read (b"" if nothing yet), and whether the stream has ended and
        everything was read."""
        return self._stream._read(self)

    def close(self) -> None:
        self._stream._drop(self)


class LiveStream:
    """One session's encoder, ring, recording and listeners. `feed` from one thread at a time."""

    def __init__(
        self,
        recording: Path,
        fmt: str,
        *,
        bitrate: str = "64k",
        sample_rate: int = 44100,
        keep_bytes: int = KEEP_BYTES,
    ) -> None:
        self.recording = recording
        self.keep_bytes = keep_bytes
        self.bytes_in = 0
        self.bytes_out = 0
        self._ring = bytearray()
        self._base = 0  # stream offset of _ring[0]
        self._ended = False
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._errors: list[str] = []
        cmd = [
            FFMPEG, "-hide_banner", "-nostats", "-loglevel", "error",
            "-fflags", "nobuffer", "-probesize", "32", "-analyzeduration", "0",
            "-f", fmt, "-i", "pipe:0",
            "-vn", "-ac", "1", "-ar", str(sample_rate), "-c:a", "libmp3lame", "-b:a", bitrate,
            "-id3v2_version", "0", "-write_xing", "0", "-flush_packets", "1", "-f", "mp3", "pipe:1",
        ]  # fmt: skip
        self._out = recording.open("wb")
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            self._out.close()
            raise LiveStreamError(f"ffmpeg: {exc}") from exc
        self._reader = threading.Thread(target=self._pump, name="live-encoder", daemon=True)
        self._reader.start()
        threading.Thread(target=self._drain_errors, name="live-encoder-log", daemon=True).start()

    # ------------------------------------------------------------ in: the browser's slices

    def feed(self, data: bytes) -> None:
        if not data:
            return
        stdin = self._proc.stdin
        if stdin is None or self._proc.poll() is not None:
            raise LiveStreamError(self.error or "the encoder has stopped")
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise LiveStreamError(self.error or f"the encoder has stopped: {exc}") from exc
        self.bytes_in += len(data)

    def close(self, timeout: float = 10.0) -> None:
        """No more input: the encoder finishes what it holds, listeners read to the end and see it end."""
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=timeout)

    def abort(self) -> None:
        """Stop at once, dropping what the encoder holds (the daemon is going down)."""
        self._proc.kill()
        self.close(timeout=2.0)

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    @property
    def error(self) -> str:
        """ffmpeg's last complaint, if it said anything."""
        return self._errors[-1][:200] if self._errors else ""

    # ------------------------------------------------------------ out: the encoder's MP3 frames

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        try:
            while True:
                try:
                    block = os.read(fd, READ_BYTES)
                except OSError:
                    block = b""
                if not block:
                    break
                self._out.write(block)
                with self._lock:
                    self._ring += block
                    self.bytes_out += len(block)
                    extra = len(self._ring) - self.keep_bytes
                    if extra > 0:
                        del self._ring[:extra]
                        self._base += extra
                    listeners = list(self._listeners)
                for listener in listeners:
                    listener.wake()
        finally:
            self._out.close()
            with self._lock:
                self._ended = True
                listeners = list(self._listeners)
            for listener in listeners:
                listener.wake()

    def _drain_errors(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._errors = [*self._errors[-9:], text]

    # ------------------------------------------------------------ listeners

    def listen(self, wake: Callable[[], None]) -> Listener:
        """A new reader from the live edge; `wake` is called (from the encoder's thread) when there is
        more to read or the stream has ended. Keep it quick: it runs once per frame for every listener."""
        with self._lock:
            listener = Listener(self, wake, self._base + len(self._ring))
            self._listeners.append(listener)
        return listener

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._listeners)

    @property
    def ended(self) -> bool:
        with self._lock:
            return self._ended

    def _read(self, listener: Listener) -> tuple[bytes, bool]:
        with self._lock:
            end = self._base + len(self._ring)
            if listener.offset < self._base:  # fell behind what the ring holds: on to the live edge
                listener.skipped += end - listener.offset
                listener.offset = end
            data = bytes(self._ring[listener.offset - self._base :])
            listener.offset = end
            return data, self._ended and not data

    def _drop(self, listener: Listener) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)
