"""A local news site for the feed tests: a threaded http.server on a free port serving feeds and article
pages shaped like Vietnamese provincial sites (tests/broadcaster/ingest/pages/), with the misbehaviours a
real one has: errors, a server that never answers, an endless body, ETag/Last-Modified and 304."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PAGES = Path(__file__).with_name("pages")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""  # answered 304 when the request repeats it in If-None-Match
    hang: bool = False  # never answer (until the server stops)
    endless: bool = False  # a body that never ends (no Content-Length)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class Site:
    def __init__(self) -> None:
        self.routes: dict[str, Reply] = {}
        self.requests: list[Seen] = []
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def page(self, path: str, name: str) -> str:
        self.routes[path] = Reply(body=(PAGES / name).read_bytes())
        return self.url + path

    def add(self, path: str, reply: Reply) -> str:
        self.routes[path] = reply
        return self.url + path

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def _handler(self) -> Callable[..., BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                site.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                reply = site.routes.get(self.path)
                if reply is None:
                    self.send_error(404)
                    return
                if reply.hang:
                    site.release.wait(10)
                    return
                if reply.etag and self.headers.get("If-None-Match") == reply.etag:
                    self.send_response(304)
                    self.send_header("ETag", reply.etag)
                    self.end_headers()
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                if reply.etag:
                    self.send_header("ETag", reply.etag)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.endless:
                    self.end_headers()
                    chunk = b"<item>" + b"x" * 8186 + b"</item>"
                    try:
                        for _ in range(100_000):
                            if site.release.is_set():
                                return
                            self.wfile.write(chunk)
                    except OSError:
                        return  # the client stopped reading: what we want
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

        return Handler

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, name="feed-site", daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def serving() -> Iterator[Site]:
    site = Site()
    site.start()
    try:
        yield site
    finally:
        site.stop()


def rss(title: str, items: list[tuple[str, str, str]]) -> bytes:
    """An RSS 2.0 feed: (title, link, RFC 822 date) per item, newest first."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><pubDate>{d}</pubDate><description>{t}</description></item>"
        for t, link, d in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://example.vn/</link><description>Tin tức</description>{body}</channel></rss>"
    ).encode()


def atom(title: str, items: list[tuple[str, str, str]]) -> bytes:
    """An Atom 1.0 feed: (title, link, ISO date) per entry, newest first."""
    body = "".join(
        f'<entry><title>{t}</title><link rel="alternate" href="{link}"/><id>{link}</id><updated>{d}</updated></entry>'
        for t, link, d in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>'
        f"<id>urn:feed</id><updated>2026-11-25T01:00:00Z</updated>{body}</feed>"
    ).encode()
