"""A radio station for tests: a real HTTP server that streams MP3 at its live edge, in real time, and can
drop its listeners and go away for a while, as a station on a commune's uplink does.

The audio is a tone made by ffmpeg, 48 kHz mono at 64 kbit/s with no tags, so every frame is 192 bytes
(24 ms): a listener who connects is sent whole frames from the live edge, paced at 8,000 bytes a
second, and the server counts, per path, the seconds of audio it really sent, which is what a speaker
that relayed it should report.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FRAME_BYTES = 192
FRAME_S = 0.024
BYTES_PER_S = FRAME_BYTES / FRAME_S  # 8,000


def make_tone(path: Path, seconds: float = 20.0) -> bytes:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency=440:duration={seconds}", "-ar", "48000", "-ac", "1", "-c:a", "libmp3lame",
         "-b:a", "64k", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3", str(path)],
        check=True,
    )  # fmt: skip
    data = path.read_bytes()
    assert len(data) % FRAME_BYTES == 0 and data[0] == 0xFF, "not a stream of 192-byte frames"
    return data


@dataclass
class Channel:
    """One stream path and its script: drop each listener after `drop_after_s` of audio, then answer
    503 for `outage_s` (the station is away), then stream again."""

    drop_after_s: float | None = None
    outage_s: float = 0.0
    sent_s: float = 0.0  # seconds of audio sent, all connections together
    connections: int = 0
    refused: int = 0
    away_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Station:
    def __init__(self, tmp: Path) -> None:
        self.audio = make_tone(tmp / "tone.mp3")
        self.channels: dict[str, Channel] = {}
        self.t0 = time.monotonic()
        station = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # no length, no chunks: the stream ends when the socket closes

            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                station.serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def channel(self, name: str, **script: Any) -> str:
        self.channels[name] = Channel(**script)
        return f"{self.base}/{name}.mp3"

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        ch = self.channels.get(h.path.strip("/").removesuffix(".mp3"))
        if ch is None:
            h.send_error(404, "Not Found")
            return
        with ch.lock:
            if time.monotonic() < ch.away_until:
                ch.refused += 1
                h.send_error(503, "Service Unavailable")
                return
            ch.connections += 1
        h.send_response(200)
        h.send_header("Content-Type", "audio/mpeg")
        h.end_headers()
        frames = len(self.audio) // FRAME_BYTES
        frame = int((time.monotonic() - self.t0) / FRAME_S) % frames  # the live edge
        start, sent = time.monotonic(), 0
        try:
            while ch.drop_after_s is None or sent * FRAME_S < ch.drop_after_s:
                chunk = b"".join(
                    self.audio[((frame + sent + k) % frames) * FRAME_BYTES :][:FRAME_BYTES] for k in range(4)
                )
                h.wfile.write(chunk)
                h.wfile.flush()
                sent += 4
                with ch.lock:
                    ch.sent_s += 4 * FRAME_S
                time.sleep(max(0.0, start + sent * FRAME_S - time.monotonic()))
        except (BrokenPipeError, ConnectionResetError):
            return  # the listener hung up (its window ended)
        with ch.lock:  # dropped: the station is away for a while
            ch.away_until = time.monotonic() + ch.outage_s

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
