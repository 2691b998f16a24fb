"""A local stand-in for the Piper voices repository: files under their repository paths, served over
real HTTP, each way a download can go wrong on demand.

`mode` applies to every request: "ok"; "404"; "truncated" (the headers promise the whole file, half
of it comes, then the connection closes); "corrupt" (the right size, other bytes); "oversized" (more
bytes than the pin); "hang" (the request is read and never answered, until the server stops).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from broadcaster.services.voices import FilePin, VoicePin
from tests.audio.tiny_piper import make_voice

Mode = Literal["ok", "404", "truncated", "corrupt", "oversized", "hang"]
NAME = "vi_VN-tiny-x_low"
PREFIX = "vi/vi_VN/tiny/x_low"


def tiny_voice_files(directory: Path, name: str = NAME) -> dict[str, bytes]:
    """The tiny voice's two files, by their path under the base URL."""
    model = make_voice(directory, name)
    return {
        f"{PREFIX}/{name}.onnx": model.read_bytes(),
        f"{PREFIX}/{name}.onnx.json": model.with_name(f"{name}.onnx.json").read_bytes(),
    }


def pins_for(files: dict[str, bytes], name: str = NAME) -> dict[str, VoicePin]:
    """The pins a repository would keep for these files: the model's size and hash, the config's cap."""
    model = files[f"{PREFIX}/{name}.onnx"]
    return {
        name: VoicePin(
            name,
            FilePin(f"{PREFIX}/{name}.onnx", len(model), hashlib.sha256(model).hexdigest()),
            FilePin(f"{PREFIX}/{name}.onnx.json", max_size=256 * 1024),
            "vi_VN",
            "a tiny test voice",
            "CC0",
        )
    }


@dataclass
class FakeVoices:
    files: dict[str, bytes]
    mode: Mode = "ok"
    only: str = ""  # apply `mode` only to paths ending so (the model, say); others are "ok"
    hang_s: float = 10.0
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake._serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/repo"

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.removeprefix("/repo/")
        self.requests.append(path)
        mode = self.mode if path.endswith(self.only) else "ok"
        body = self.files.get(path)
        if mode == "hang":
            self._release.wait(self.hang_s)
            return
        if body is None or mode == "404":
            handler.send_response(404)
            handler.send_header("Content-Length", "9")
            handler.end_headers()
            handler.wfile.write(b"not found")
            return
        if mode == "corrupt":
            body = bytes(b ^ 0xFF for b in body)
        if mode == "oversized":
            body = body + b"\0" * 4096
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if mode == "truncated":
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body)

    def __enter__(self) -> FakeVoices:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
