"""A local stand-in for Google Translate's TTS endpoint, at the HTTP level.

It speaks the batchexecute framing that gTTS parses, so the real gTTS library (and
our GttsEngine around it) runs unmodified against it. Behaviour is scripted per
request: `script` is consumed first, then `default` applies.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Mode = Literal["ok", "429", "503", "hang", "garbage", "no_audio"]
PATH = "/_/TranslateWebserverUi/data/batchexecute"


def batchexecute_body(audio: bytes) -> bytes:
    """Google's response framing: an anti-JSON prefix, then length-prefixed JSON chunks."""
    compact = (",", ":")
    inner = json.dumps([base64.b64encode(audio).decode("ascii")], separators=compact)
    envelope = json.dumps([["wrb.fr", "jQ1olc", inner, None, None, None, "generic"],
                           ["di", 58], ["af.httprm", 57, "-1845130392352458431", 3]], separators=compact)
    tail = json.dumps([["e", 4, None, None, len(envelope) + 60]], separators=compact)
    return f")]}}'\n\n{len(envelope)}\n{envelope}\n{len(tail)}\n{tail}\n".encode()


@dataclass
class Request:
    text: str
    lang: str
    mode: str


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "text/plain") -> None:
    """One whole answer from a fake service; a client that gave up (the timeout tests) is no error."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass


@dataclass
class FakeGoogleTTS:
    audio: bytes
    default: Mode = "ok"
    script: list[Mode] = field(default_factory=list)
    hang_s: float = 10.0
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                fake._serve(self, body)

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

    def _next_mode(self) -> Mode:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _serve(self, handler: BaseHTTPRequestHandler, body: str) -> None:
        mode = self._next_mode()
        text, lang = "", ""
        try:  # f.req=[[["jQ1olc","[\"text\",\"vi\",null,\"null\"]",null,"generic"]]]
            freq = urllib.parse.parse_qs(body)["f.req"][0]
            text, lang = json.loads(json.loads(freq)[0][0][1])[:2]
        except (KeyError, IndexError, ValueError):
            mode = "garbage"
        with self._lock:
            self.requests.append(Request(text, lang, mode))
        if handler.path.split("?")[0] != PATH:
            reply(handler, 404, b"not found")
        elif mode == "ok":
            reply(handler, 200, batchexecute_body(self.audio), "application/json; charset=utf-8")
        elif mode == "429":
            reply(handler, 429, b"Too Many Requests")
        elif mode == "503":
            reply(handler, 503, b"Service Unavailable")
        elif mode == "hang":
            self._release.wait(self.hang_s)
            reply(handler, 200, batchexecute_body(self.audio))
        elif mode == "no_audio":  # right framing, but the payload is not an MP3
            reply(handler, 200, batchexecute_body(b"<html>quota exceeded</html>"))
        else:
            reply(handler, 200, b"<html><body>Our systems have detected unusual traffic</body></html>",
                        "text/html")

    def __enter__(self) -> FakeGoogleTTS:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
