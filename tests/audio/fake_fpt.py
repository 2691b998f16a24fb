"""A local stand-in for FPT.AI's text-to-speech API v5, at the HTTP level.

POST /hmi/tts/v5 with the text as the body and the key, voice and speed in headers answers
`{"async": <link>, "error": 0, "message": ..., "request_id": ...}`, as FPT.AI documents; the link
(on this server, under /audio/) answers 404 for the first `pending_polls` requests, then serves the
MP3, as the real one does while the audio is being made. Behaviour of the POST is scripted per
request: `script` is consumed first, then `default` applies.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from tests.audio.fake_gtts import reply

Mode = Literal["ok", "api_error", "401", "429", "500", "hang", "garbage", "never", "echo_key"]
PATH = "/hmi/tts/v5"


@dataclass
class Request:
    method: str
    path: str
    mode: str
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeFptTTS:
    audio: bytes
    api_key: str
    default: Mode = "ok"
    script: list[Mode] = field(default_factory=list)
    pending_polls: int = 2
    hang_s: float = 10.0
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._polls: dict[str, int] = {}  # audio id -> polls left before it is served; -1: never
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake._synthesize(self, body)

            def do_GET(self) -> None:
                fake._audio(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def set(self, default: Mode, script: Iterable[Mode] = ()) -> None:
        with self._lock:
            self.default, self.script = default, list(script)

    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def polls(self) -> list[Request]:
        return [r for r in self.requests if r.method == "GET"]

    def _next_mode(self) -> Mode:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _synthesize(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        mode = self._next_mode()
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Request("POST", handler.path, mode, body.decode("utf-8", "replace"), headers))
        if handler.path != PATH:
            reply(handler, 404, b"not found")
            return
        if headers.get("api-key") != self.api_key:
            self._json(handler, 401, {"error": 401, "message": "Invalid API key"})
            return
        if mode == "401":
            self._json(handler, 401, {"error": 401, "message": "Unauthorized"})
            return
        if mode in ("429", "500"):
            reply(handler, int(mode), b"busy")
            return
        if mode == "hang":
            self._release.wait(self.hang_s)
        if mode == "garbage":
            reply(handler, 200, b"<html>502 Bad Gateway</html>", "text/html")
            return
        if mode == "api_error":
            self._json(handler, 200, {"error": 1, "message": "Text is too short", "request_id": "r1"})
            return
        if mode == "echo_key":  # a careless server repeating the key: it must not reach a log line
            self._json(handler, 200, {"error": 3, "message": f"bad key {self.api_key}", "request_id": "r2"})
            return
        audio_id = uuid.uuid4().hex
        with self._lock:
            self._polls[audio_id] = -1 if mode == "never" else self.pending_polls
        self._json(handler, 200, {
            "async": f"{self.url}/audio/{audio_id}.mp3", "error": 0, "request_id": str(uuid.uuid4()),
            "message": "The content will be returned after a few seconds under the async link.",
        })

    def _audio(self, handler: BaseHTTPRequestHandler) -> None:
        audio_id = handler.path.removeprefix("/audio/").removesuffix(".mp3")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            left = self._polls.get(audio_id)
            if left is not None and left > 0:
                self._polls[audio_id] = left - 1
            self.requests.append(Request("GET", handler.path, "poll", headers=headers))
        if left is None or left != 0:
            reply(handler, 404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
            return
        reply(handler, 200, self.audio, "audio/mpeg")

    def _json(self, handler: BaseHTTPRequestHandler, status: int, answer: dict[str, object]) -> None:
        reply(handler, status, json.dumps(answer).encode(), "application/json")

    def __enter__(self) -> FakeFptTTS:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
