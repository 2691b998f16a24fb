"""Reading the news feeds the commune follows: each new article fetched, its text extracted
(articles.py) and handed to broadcaster/services/feeds.py, which drafts it for approval.

Every fetch is bounded, because a provincial site that hangs, trickles or sends a 2 GB file must not
stall the poller or fill the server: connect and read timeouts, an overall deadline checked while the
body streams in, a size cap counted on the decoded bytes as they arrive (a gzip bomb stops at the
cap), redirects followed by hand, each checked to be http(s) (never `file:` or anything else), at most
`max_redirects`. A feed is read with a conditional GET (If-None-Match / If-Modified-Since from the last
answer): a 304 fetches nothing else.

A feed that cannot be read (unreachable, HTTP 500, too slow, too large, not RSS or Atom) is marked
failing with that reason, which the desk shows; it is not silently empty. An article that cannot be
taken is skipped with its reason: recorded for good when it will never be taken (not an article, too
long), tried again next time when the failure may pass (a timeout, an HTTP error). Nothing is aired:
what is drafted waits for an approver.
"""

from __future__ import annotations

import calendar
import io
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import requests

from broadcaster.errors import LoaError
from broadcaster.ingest.articles import extract_article
from broadcaster.services import Services
from broadcaster.services.feeds import (
    FeedJob,
    claim_due,
    draft_article,
    job_for,
    record_failure,
    record_skip,
    record_success,
    seen_urls,
)
from broadcaster.services.inputs import MAX_TEXT_CHARS

log = logging.getLogger(__name__)

USER_AGENT = "loa/0.1 (commune loudspeaker news reader)"
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
CHUNK = 16 * 1024
# An article that fails this way never will be taken: recorded, not fetched again. Anything else (a
# timeout, an HTTP error, a zone removed, the voice failing) may pass: tried again at the next reading.
FOR_GOOD = frozenset(
    {
        "feed_not_article",
        "feed_article_too_long",
        "feed_too_large",
        "feed_redirect_refused",
        "text_too_long",
        "bad_text",
        "empty_text",
    }
)


@dataclass(frozen=True)
class Limits:
    """The bounds of every fetch (tests shorten them)."""

    connect_s: float = 5.0
    read_s: float = 10.0
    deadline_s: float = 30.0
    feed_max_bytes: int = 2 * 1024 * 1024
    page_max_bytes: int = 3 * 1024 * 1024
    max_redirects: int = 5
    max_new_per_poll: int = 10  # the newest ones; the rest wait for the next reading
    max_age: timedelta = timedelta(days=3)  # older news is not news on the loudspeakers


@dataclass(frozen=True)
class Fetched:
    status: int  # 200, or 304 (not modified)
    body: bytes
    url: str  # after redirects
    etag: str | None
    last_modified: str | None
    charset: str | None


def _allowed(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _read(response: requests.Response, max_bytes: int, deadline: float, limits: Limits) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise LoaError("feed_too_large", {"max_kb": max_bytes // 1024})
    body = bytearray()
    for chunk in response.iter_content(CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise LoaError("feed_too_large", {"max_kb": max_bytes // 1024})
        if time.monotonic() > deadline:
            raise LoaError("feed_timeout", {"seconds": round(limits.deadline_s)})
    return bytes(body)


def fetch(
    url: str,
    *,
    limits: Limits,
    max_bytes: int,
    accept: str,
    etag: str = "",
    last_modified: str = "",
    session: requests.Session | None = None,
) -> Fetched:
    """GET `url` within `limits` (see the module); a LoaError says why not."""
    http = session or requests.Session()
    deadline = time.monotonic() + limits.deadline_s
    headers = {"User-Agent": USER_AGENT, "Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    current = url
    try:
        for _ in range(limits.max_redirects + 1):
            if not _allowed(current):
                raise LoaError("feed_redirect_refused", {"url": current[:200]})
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoaError("feed_timeout", {"seconds": round(limits.deadline_s)})
            timeout = (min(limits.connect_s, left), min(limits.read_s, left))
            with http.get(current, headers=headers, timeout=timeout, stream=True, allow_redirects=False) as response:
                if response.is_redirect and response.headers.get("Location"):
                    current = urljoin(current, response.headers["Location"])
                    continue
                if response.status_code == 304:
                    return Fetched(304, b"", current, etag or None, last_modified or None, None)
                if response.status_code >= 300:
                    raise LoaError("feed_http", {"status": response.status_code})
                body = _read(response, max_bytes, deadline, limits)
                return Fetched(
                    200,
                    body,
                    current,
                    response.headers.get("ETag"),
                    response.headers.get("Last-Modified"),
                    requests.utils.get_encoding_from_headers(response.headers)
                    if "charset=" in response.headers.get("Content-Type", "").lower()
                    else None,
                )
        raise LoaError("feed_redirect_refused", {"url": current[:200]})
    except requests.Timeout as exc:
        raise LoaError("feed_timeout", {"seconds": round(limits.deadline_s)}) from exc
    except requests.RequestException as exc:
        raise LoaError("feed_unreachable", {"detail": type(exc).__name__}) from exc
    finally:
        if session is None:
            http.close()


# ---------------------------------------------------------------- the feed


@dataclass(frozen=True)
class Entry:
    url: str
    title: str
    published: datetime | None


def parse_feed(body: bytes) -> tuple[str, list[Entry]]:
    """The feed's title and its entries, newest first as published. Not RSS or Atom: `feed_not_a_feed`."""
    parsed = feedparser.parse(io.BytesIO(body), sanitize_html=True, resolve_relative_uris=True)
    if not parsed.get("version") or (parsed.get("bozo") and not parsed.entries):
        detail = str(parsed.get("bozo_exception") or "không nhận ra định dạng")[:200]
        raise LoaError("feed_not_a_feed", {"detail": detail})
    entries = []
    for e in parsed.entries:
        stamp = e.get("published_parsed") or e.get("updated_parsed")
        published = datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None
        entries.append(Entry((e.get("link") or "").strip(), (e.get("title") or "").strip(), published))
    return str(parsed.feed.get("title") or ""), entries


@dataclass
class PollResult:
    """What one reading of a feed did, as stored with the feed (services.feeds.record_success)."""

    drafted: list[int] = field(default_factory=list)
    duplicates: int = 0
    unchanged: bool = False
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"drafted": self.drafted, "duplicates": self.duplicates, "unchanged": self.unchanged,
                "problems": self.problems}  # fmt: skip

    def problem(self, url: str, error: LoaError) -> None:
        self.problems.append({"url": url, "key": error.key, "params": dict(error.params)})


def _new_entries(svc: Services, entries: list[Entry], limits: Limits) -> Iterator[Entry]:
    """The entries not seen before and not too old, the newest `max_new_per_poll`, oldest first (so
    drafts are numbered in the order they were published)."""
    now = svc.clock.now()
    fresh = [e for e in entries if e.published is None or now - e.published <= limits.max_age]
    seen = seen_urls(svc, [e.url for e in fresh if e.url])
    new: list[Entry] = []
    for e in fresh:
        if e.url in seen or any(e.url == n.url for n in new):
            continue
        new.append(e)
    yield from reversed(new[: limits.max_new_per_poll])


def _take(svc: Services, job: FeedJob, entry: Entry, limits: Limits, session: requests.Session,
          result: PollResult) -> None:  # fmt: skip
    if not _allowed(entry.url):
        result.problem(entry.url, LoaError("feed_no_link", {}))
        return
    try:
        page = fetch(entry.url, limits=limits, max_bytes=limits.page_max_bytes, accept=PAGE_ACCEPT, session=session)
        article = extract_article(page.body, page.url, charset=page.charset, feed_title=entry.title)
        if len(article.text) > MAX_TEXT_CHARS:
            raise LoaError("feed_article_too_long", {"url": entry.url, "max": MAX_TEXT_CHARS})
        done = draft_article(svc, job, entry.url, title=article.title, text=article.text,
                             content_sha256=article.content_sha256)  # fmt: skip
    except LoaError as exc:
        result.problem(entry.url, exc)
        if exc.code in FOR_GOOD:
            record_skip(svc, job.id, entry.url, exc)
        return
    if done["outcome"] == "drafted":
        result.drafted.append(done["announcement"])
    elif done["outcome"] == "duplicate":
        result.duplicates += 1


def poll(svc: Services, job: FeedJob, *, limits: Limits | None = None,
         session_factory: Callable[[], requests.Session] = requests.Session) -> PollResult:  # fmt: skip
    """Read one feed now: its new articles drafted, its status recorded (ok, or failing and why)."""
    limits = limits or Limits()
    result = PollResult()
    with session_factory() as session:
        try:
            got = fetch(job.url, limits=limits, max_bytes=limits.feed_max_bytes, accept=FEED_ACCEPT,
                        etag=job.etag, last_modified=job.last_modified, session=session)  # fmt: skip
            if got.status == 304:
                result.unchanged = True
                record_success(svc, job.id, etag=None, last_modified=None, title="", result=result.as_dict())
                return result
            title, entries = parse_feed(got.body)
        except LoaError as exc:
            record_failure(svc, job.id, exc)
            log.warning("feed %s (%s) failing: %s", job.id, job.url, exc.message("en"))
            return result
        for entry in _new_entries(svc, entries, limits):
            _take(svc, job, entry, limits, session, result)
    record_success(svc, job.id, etag=got.etag or "", last_modified=got.last_modified or "", title=title,
                   result=result.as_dict())  # fmt: skip
    return result


def poll_due(svc: Services, *, limits: Limits | None = None) -> int:
    """Read every feed that is due (the daemon's poller, every few seconds). Returns how many were read."""
    jobs = claim_due(svc)
    for job in jobs:
        try:
            poll(svc, job, limits=limits)
        except Exception:  # a bug or the database: the next feeds are still read, this one next time
            log.exception("reading feed %s failed", job.id)
    return len(jobs)


def poll_now(svc: Services, feed_id: int, *, limits: Limits | None = None) -> PollResult:
    """Read one feed now, due or not (`loa feed poll ID`)."""
    return poll(svc, job_for(svc, feed_id), limits=limits)
