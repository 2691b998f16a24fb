"""The news feeds the commune follows, and the drafts their articles become.

An officer (or an admin) adds a feed's address, with the villages its articles are meant for; removes
it; asks for it to be read now. Each is audited under the person. Reading feeds is broadcaster/ingest/
feeds.py (the daemon's poller, `loa feed poll`): it claims the feeds that are due here, asks which
article addresses are new, and hands each new article back here to become a draft.

An article becomes an announcement *awaiting approval*, always, whatever `[security] require_approval`
says: nobody chose to air it, so a person must. It is made as an officer's submitted item is (checked
by `check_request`, its speech rendered so the approver hears what would air, stored with `new_item`),
under the feed's own name, `feed:<id>`, which no person has, so any approver may approve it. It is not
planned until approved: a feed read at night must not be refused for quiet hours.

Never twice: an article's address (without its fragment) is recorded once, unique, whatever happens
to it, and an article whose words are already drafted under another address is recorded as a
duplicate of it. Both are checked before the speech is rendered and again, by the unique key, in the
transaction that stores the draft, so two pollers racing draft it once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urldefrag, urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster.db import AnnouncementState, Feed, FeedItem, audit
from broadcaster.errors import LoaError
from broadcaster.messages import DEFAULT_LANGUAGE
from broadcaster.messages import render as words
from broadcaster.services import Services
from broadcaster.services.accounts import Principal, require
from broadcaster.services.announcements import check_request, new_item, rendered_for
from broadcaster.services.inputs import MAX_TITLE_CHARS, check_text, fits_sql_int
from broadcaster.services.speech import render
from broadcaster.services.zones import resolve_zones
from schedules.clock import to_local

MAX_URL_CHARS = 2000
DEFAULT_EVERY_MIN = 30
MIN_EVERY_MIN = 5  # a provincial paper publishes a few articles a day: more often only loads its server
MAX_EVERY_MIN = 7 * 24 * 60
MAX_PROBLEMS_SHOWN = 5
FEED_ACTOR = "feed:{id}"


@dataclass(frozen=True)
class FeedJob:
    """What a poller needs to read one feed: where, what the server said last time, where drafts go."""

    id: int
    url: str
    etag: str
    last_modified: str
    zones: list[str]

    @property
    def actor(self) -> str:
        return FEED_ACTOR.format(id=self.id)


def url_key(url: str) -> str:
    """An article's address as the dedup key: without its fragment (the same page), hashed (any length)."""
    return hashlib.sha256(urldefrag(url.strip())[0].encode("utf-8")).hexdigest()


def check_url(url: str) -> str:
    """An absolute http(s) address, one line, not too long: anything else (file:, ftp:, a typo) refused."""
    value = (url or "").strip() if isinstance(url, str) else ""
    parts = urlsplit(value) if value else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(value) > MAX_URL_CHARS
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        raise LoaError("feed_bad_url", {"url": value[:200], "max": MAX_URL_CHARS})
    check_text(value, "url", MAX_URL_CHARS)
    return value


def _feed(session: Session, feed_id: int, *, active: bool = True) -> Feed:
    feed = session.get(Feed, feed_id) if fits_sql_int(feed_id) else None
    if feed is None or (active and not feed.active):
        raise LoaError("not_found.feed", {"id": feed_id}, status=404)
    return feed


def _message(key: str, params: dict[str, Any], lang: str) -> str:
    """A stored reason (a catalogue key and its params) in the reader's language."""
    if not key:
        return ""
    try:
        return words(key, params, lang) or key
    except (KeyError, IndexError, ValueError):  # params stored by an older version
        return key


def feed_view(feed: Feed, now: datetime, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """A feed as the desk and `loa feed list` show it: ok, or failing and why, in the reader's language;
    what its last reading brought (drafts, duplicates, articles skipped and why)."""
    params = json.loads(feed.error_params or "{}")
    result = json.loads(feed.last_result or "{}")
    problems = [
        {"url": p.get("url", ""), "reason": _message(p.get("key", ""), p.get("params", {}), lang)}
        for p in result.get("problems", [])
    ]
    return {
        "id": feed.id,
        "url": feed.url,
        "title": feed.title,
        "zones": json.loads(feed.targets or "[]") or ["all"],
        "every_min": feed.poll_every_s // 60,
        "status": feed.status,
        "error_code": feed.error_key.split(".", 1)[0] if feed.error_key else None,
        "error": _message(feed.error_key, params, lang) or None,
        "checked_at": None if feed.checked_at is None else feed.checked_at.isoformat(),
        "checked_local": None if feed.checked_at is None else to_local(feed.checked_at).strftime("%H:%M %d/%m/%Y"),
        "ok_at": None if feed.ok_at is None else feed.ok_at.isoformat(),
        "queued": feed.next_poll_at is not None and feed.next_poll_at <= now,
        "drafted": list(result.get("drafted", [])),
        "duplicates": int(result.get("duplicates", 0)),
        "unchanged": bool(result.get("unchanged", False)),
        "problems": problems,
        "created_by": feed.created_by,
        "created_at": feed.created_at.isoformat(),
    }


# ---------------------------------------------------------------- what a person does


def add_feed(
    svc: Services,
    url: str,
    *,
    zones: list[str] | None = None,
    title: str = "",
    every_min: int | None = None,
    actor: str,
    by: Principal | None = None,
    lang: str = DEFAULT_LANGUAGE,
) -> dict[str, Any]:
    """Follow a feed: read at once by the poller, then every `every_min` minutes. A feed removed before
    is followed again (what it brought stays known, so nothing is drafted twice)."""
    require(by, "compose")
    value = check_url(url)
    every = DEFAULT_EVERY_MIN if every_min is None else every_min
    if not MIN_EVERY_MIN <= every <= MAX_EVERY_MIN:
        raise LoaError("feed_bad_interval", {"min": MIN_EVERY_MIN, "max": MAX_EVERY_MIN})
    name = check_text((title or "").strip(), "title", MAX_TITLE_CHARS)
    now = svc.clock.now()
    with svc.db.session() as session:
        zone_ids = [z.id for z in resolve_zones(session, zones or ["all"])]
        feed = session.scalar(select(Feed).where(Feed.url == value))
        if feed is not None and feed.active:
            raise LoaError("feed_exists", {"url": value, "id": feed.id}, status=409)
        if feed is None:
            feed = Feed(url=value, created_at=now, created_by=actor)
            session.add(feed)
        feed.title, feed.targets, feed.poll_every_s = name, json.dumps(zone_ids), every * 60
        feed.active, feed.next_poll_at = True, now
        session.flush()
        audit(session, now, actor, "feed.add", feed=feed.id, url=value, zones=zone_ids, every_min=every)
        return feed_view(feed, now, lang)


def remove_feed(
    svc: Services, feed_id: int, *, actor: str, by: Principal | None = None, lang: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    """Stop following a feed. Its drafts stay where they are (an approver still decides them)."""
    require(by, "compose")
    now = svc.clock.now()
    with svc.db.session() as session:
        feed = _feed(session, feed_id)
        feed.active, feed.next_poll_at = False, None
        audit(session, now, actor, "feed.remove", feed=feed.id, url=feed.url)
        return feed_view(feed, now, lang)


def request_poll(
    svc: Services, feed_id: int, *, actor: str, by: Principal | None = None, lang: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    """Read it now: the daemon's poller takes it on its next turn, within seconds."""
    require(by, "compose")
    now = svc.clock.now()
    with svc.db.session() as session:
        feed = _feed(session, feed_id)
        feed.next_poll_at = now
        audit(session, now, actor, "feed.poll_now", feed=feed.id, url=feed.url)
        return feed_view(feed, now, lang)


def list_feeds(svc: Services, *, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    now = svc.clock.now()
    with svc.db.session() as session:
        rows = session.scalars(select(Feed).where(Feed.active.is_(True)).order_by(Feed.id)).all()
        return [feed_view(feed, now, lang) for feed in rows]


def get_feed(svc: Services, feed_id: int, *, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    with svc.db.session() as session:
        return feed_view(_feed(session, feed_id), svc.clock.now(), lang)


# ---------------------------------------------------------------- what a poller does


def _job(feed: Feed) -> FeedJob:
    return FeedJob(feed.id, feed.url, feed.etag, feed.last_modified, json.loads(feed.targets or "[]") or ["all"])


def claim_due(svc: Services) -> list[FeedJob]:
    """The feeds due now, each claimed by moving its next reading on (a conditional UPDATE: of two
    pollers, one reads it)."""
    now = svc.clock.now()
    jobs = []
    with svc.db.session() as session:
        due = session.scalars(
            select(Feed).where(Feed.active.is_(True), Feed.next_poll_at.is_not(None), Feed.next_poll_at <= now)
        ).all()
        for feed in due:
            claimed = session.execute(
                update(Feed)
                .where(Feed.id == feed.id, Feed.next_poll_at == feed.next_poll_at)
                .values(next_poll_at=now + timedelta(seconds=feed.poll_every_s))
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                jobs.append(_job(feed))
    return jobs


def job_for(svc: Services, feed_id: int) -> FeedJob:
    """One feed to read now, due or not (`loa feed poll ID`); its next reading moves on as if it were."""
    now = svc.clock.now()
    with svc.db.session() as session:
        feed = _feed(session, feed_id)
        feed.next_poll_at = now + timedelta(seconds=feed.poll_every_s)
        return _job(feed)


def active_ids(svc: Services) -> list[int]:
    with svc.db.session() as session:
        return list(session.scalars(select(Feed.id).where(Feed.active.is_(True)).order_by(Feed.id)))


def seen_urls(svc: Services, urls: list[str]) -> set[str]:
    """Of these article addresses, the ones any feed has named before (drafted, duplicate or skipped)."""
    keys = {url_key(u): u for u in urls}
    found: set[str] = set()
    with svc.db.session() as session:
        chunk = list(keys)
        for i in range(0, len(chunk), 500):
            for key in session.scalars(select(FeedItem.url_key).where(FeedItem.url_key.in_(chunk[i : i + 500]))):
                found.add(keys[key])
    return found


def _problems(result: dict[str, Any]) -> dict[str, Any]:
    out = dict(result)
    out["problems"] = list(result.get("problems", []))[:MAX_PROBLEMS_SHOWN]
    return out


def record_success(
    svc: Services, feed_id: int, *, etag: str | None, last_modified: str | None, title: str, result: dict[str, Any]
) -> None:
    """The feed was read (or had not changed: 304): ok, with what the server said for the next conditional
    GET and what this reading brought."""
    now = svc.clock.now()
    with svc.db.session() as session:
        feed = _feed(session, feed_id, active=False)
        if etag is not None:
            feed.etag = etag[:500]
        if last_modified is not None:
            feed.last_modified = last_modified[:100]
        if title and not feed.title:
            feed.title = title[:MAX_TITLE_CHARS]
        feed.status, feed.error_key, feed.error_params = "ok", "", "{}"
        feed.last_result = json.dumps(_problems(result), ensure_ascii=False)
        feed.checked_at = feed.ok_at = now


def record_failure(svc: Services, feed_id: int, error: LoaError, result: dict[str, Any] | None = None) -> None:
    """The feed could not be read: failing, and why (shown until a reading works)."""
    now = svc.clock.now()
    with svc.db.session() as session:
        feed = _feed(session, feed_id, active=False)
        feed.status, feed.error_key = "failing", error.key[:64]
        feed.error_params = json.dumps(error.params, ensure_ascii=False)
        feed.last_result = json.dumps(_problems(result or {}), ensure_ascii=False)
        feed.checked_at = now


def record_skip(svc: Services, feed_id: int, url: str, error: LoaError) -> None:
    """An article that will never be drafted (not an article, too long, too large): known, not read again."""
    now = svc.clock.now()
    try:
        with svc.db.session() as session:
            session.add(FeedItem(feed_id=feed_id, url=url, url_key=url_key(url), outcome="skipped",
                                 reason=error.key[:64], reason_params=json.dumps(error.params, ensure_ascii=False),
                                 seen_at=now))  # fmt: skip
    except IntegrityError:
        pass  # another poller recorded it first


def drafted_with(svc: Services, content_sha256: str) -> int | None:
    """The announcement already drafted from an article with these words, if any."""
    with svc.db.session() as session:
        return session.scalar(
            select(FeedItem.announcement_id)
            .where(FeedItem.content_sha256 == content_sha256, FeedItem.outcome == "drafted")
            .limit(1)
        )


def draft_article(
    svc: Services, job: FeedJob, url: str, *, title: str, text: str, content_sha256: str
) -> dict[str, Any]:
    """An article as an announcement awaiting approval (see the module), or nothing if it is already known:
    `{"outcome": "drafted" | "duplicate" | "seen", "announcement": id | None}`. A text that cannot be an
    announcement (too long, unreadable) is refused with a LoaError and nothing is stored."""
    key = url_key(url)
    original = drafted_with(svc, content_sha256)
    if original is not None:
        return _record_duplicate(svc, job, url, key, content_sha256, original)
    request = check_request(svc, text, job.zones, None, title=title[:MAX_TITLE_CHARS] or None, priority="normal",
                            order=None)  # fmt: skip
    stored = render(svc, request.text, request.voice)
    try:
        with rendered_for(svc, stored.sha256, keep=False):
            now = svc.clock.now()
            with svc.db.session() as session:
                again = session.scalar(
                    select(FeedItem.announcement_id)
                    .where(FeedItem.content_sha256 == content_sha256, FeedItem.outcome == "drafted")
                    .limit(1)
                )
                if again is not None:
                    session.add(FeedItem(feed_id=job.id, url=url, url_key=key, content_sha256=content_sha256,
                                         announcement_id=again, outcome="duplicate", seen_at=now))  # fmt: skip
                    session.flush()
                    return {"outcome": "duplicate", "announcement": again}
                item = new_item(stored, request, actor=job.actor, now=now)
                item.state = AnnouncementState.AWAITING_APPROVAL
                item.submitted_at, item.submitted_by = now, job.actor
                session.add(item)
                session.flush()
                session.add(FeedItem(feed_id=job.id, url=url, url_key=key, content_sha256=content_sha256,
                                     announcement_id=item.id, outcome="drafted", seen_at=now))  # fmt: skip
                session.flush()  # the unique address: a poller that got here first wins, this rolls back
                audit(session, now, job.actor, "announcement.submit", announcement=item.id, zones=request.zone_ids,
                      feed=job.id, url=url)  # fmt: skip
                return {"outcome": "drafted", "announcement": item.id}
    except IntegrityError:
        return {"outcome": "seen", "announcement": None}


def _record_duplicate(
    svc: Services, job: FeedJob, url: str, key: str, content_sha256: str, original: int
) -> dict[str, Any]:
    now = svc.clock.now()
    try:
        with svc.db.session() as session:
            session.add(FeedItem(feed_id=job.id, url=url, url_key=key, content_sha256=content_sha256,
                                 announcement_id=original, outcome="duplicate", seen_at=now))  # fmt: skip
    except IntegrityError:
        return {"outcome": "seen", "announcement": None}
    return {"outcome": "duplicate", "announcement": original}
