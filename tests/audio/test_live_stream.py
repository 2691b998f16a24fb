"""A live stream: what the browser records goes in, MP3 frames come out to every listener and to the
recording, from the live edge."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from audio.live import LiveStream, LiveStreamError, input_format
from tests.audio.conftest import needs_tools

pytestmark = needs_tools


def browser_recording(path: Path, tone_at_s: float = 0.5, tone_s: float = 1.0, after_s: float = 0.5) -> bytes:
    """What Chromium's MediaRecorder makes of silence, then a loud 1 kHz tone, then silence: WebM/Opus."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"anullsrc=r=48000:cl=mono:d={tone_at_s}",
         "-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate=48000:duration={tone_s}",
         "-f", "lavfi", "-i", f"anullsrc=r=48000:cl=mono:d={after_s}",
         "-filter_complex", "[0][1][2]concat=n=3:v=0:a=1", "-c:a", "libopus", "-b:a", "32k", "-f", "webm", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def peak(mp3: bytes) -> int:
    """The loudest sample of some MP3 bytes (16-bit), decoded by ffmpeg as a speaker would."""
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "mp3", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "pipe:1"],
        input=mp3,
        capture_output=True,
        check=True,
    ).stdout
    samples = memoryview(pcm[: len(pcm) // 2 * 2]).cast("h")
    return max((abs(s) for s in samples), default=0)


class Reader:
    """A listener on its own thread, woken by the stream, keeping what it read."""

    def __init__(self, stream: LiveStream) -> None:
        self.got = bytearray()
        self.done = threading.Event()
        self._ready = threading.Event()
        self.listener = stream.listen(self._ready.set)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._ready.clear()
            data, ended = self.listener.read()
            self.got += data
            if ended:
                self.done.set()
                return
            if not data:
                self._ready.wait()


def slices(data: bytes, size: int = 1500) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_two_listeners_hear_it_and_it_is_recorded(tmp_path: Path) -> None:
    recording = tmp_path / "live.mp3"
    stream = LiveStream(recording, "webm")
    first, second = Reader(stream), Reader(stream)
    assert stream.listeners == 2
    for piece in slices(browser_recording(tmp_path / "in.webm")):
        stream.feed(piece)
    deadline = time.monotonic() + 5
    while not (first.got and second.got) and time.monotonic() < deadline:  # live: while it is still going on
        time.sleep(0.01)
    assert first.got and second.got
    stream.close()
    assert first.done.wait(10) and second.done.wait(10)
    assert bytes(first.got) == bytes(second.got) == recording.read_bytes()  # both from the start, whole
    assert first.got[:2] == b"\xff\xfb"  # bare MP3 frames: no ID3 or Xing header in front
    assert peak(bytes(first.got)) > 2_000  # the tone (lavfi says it at an eighth of full scale) came through
    assert stream.bytes_in > 0 and stream.bytes_out == len(first.got)


def test_a_late_listener_starts_at_the_live_edge_and_a_slow_one_skips_ahead(tmp_path: Path) -> None:
    pieces = slices(browser_recording(tmp_path / "in.webm", tone_at_s=1.0, after_s=1.0))
    half = len(pieces) // 2
    # A ring larger than the whole stream: no reader is ever skipped ahead here, however late its thread
    # runs on a busy machine (with the small ring below, a starved early reader was, and read no more
    # than the late one).
    stream = LiveStream(tmp_path / "live.mp3", "webm", keep_bytes=1 << 20)
    early = Reader(stream)
    for piece in pieces[:half]:
        stream.feed(piece)
    stream.feed(b"")
    while stream.bytes_out < 4096:  # the encoder has written part of the first half
        threading.Event().wait(0.02)
    late = Reader(stream)
    for piece in pieces[half:]:
        stream.feed(piece)
    stream.close()
    assert early.done.wait(10) and late.done.wait(10)
    assert len(late.got) < len(early.got) == stream.bytes_out
    assert bytes(early.got).endswith(bytes(late.got))  # the same stream, joined later

    # A listener that never reads keeps no backlog: it is moved on to the edge, the ring's size behind it.
    stream = LiveStream(tmp_path / "live-2.mp3", "webm", keep_bytes=4096)
    slow = stream.listen(lambda: None)  # never reads until the end
    for piece in pieces:
        stream.feed(piece)
    stream.close()
    while not stream.ended:
        threading.Event().wait(0.02)
    data, _ = slow.read()
    assert stream.bytes_out > 4096
    assert len(data) <= 4096 and slow.skipped == stream.bytes_out - len(data)  # on to the edge, not a backlog
    slow.close()
    assert stream.listeners == 0


def test_feeding_a_closed_stream_is_refused(tmp_path: Path) -> None:
    stream = LiveStream(tmp_path / "live.mp3", "webm")
    stream.close()
    with pytest.raises(LiveStreamError):
        stream.feed(b"\x1a\x45\xdf\xa3")


@pytest.mark.parametrize(
    ("mime", "fmt"),
    [("audio/webm;codecs=opus", "webm"), ("audio/ogg; codecs=opus", "ogg"), ("audio/mp4", "mp4"),
     ("video/webm", None), ("", None), ("audio/wav", None)],
)  # fmt: skip
def test_the_browsers_formats(mime: str, fmt: str | None) -> None:
    assert input_format(mime) == fmt
