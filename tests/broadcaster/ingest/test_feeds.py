"""News feeds read from a local site (feedserver.py): new articles become drafts awaiting approval, once,
however often they are seen or under whichever address; a feed that cannot be read is shown failing with
its reason; an article that cannot be taken is skipped with its reason; nothing ever airs by itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.config import load_config
from broadcaster.db import Announcement, AuditEntry, Broadcast, FeedItem
from broadcaster.errors import LoaError
from broadcaster.ingest.feeds import Limits, poll_due, poll_now
from broadcaster.services import Services
from broadcaster.services.approvals import approve, waiting
from broadcaster.services.build import build_services
from broadcaster.services.feeds import add_feed, get_feed, list_feeds, remove_feed, request_poll
from broadcaster.services.zones import add_village
from schedules.clock import LOCAL_TZ, FakeClock, SystemClock
from tests.broadcaster.cli.test_cli import loa
from tests.broadcaster.conftest import make_services
from tests.broadcaster.ingest.feedserver import Reply, Site, atom, rss, serving
from tests.broadcaster.ingest.test_articles import BOILERPLATE

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=LOCAL_TZ)
FUTURE = "Wed, 25 Nov 2099 01:00:00 +0000"  # for the terminal, on the real clock
RFC822 = "Wed, 25 Nov 2026 01:00:00 +0000"  # 08:00 in the commune, an hour before T0
SHORT = "baotinh-ha-giang-ngan.html"  # a short article: quick to render
FAST = Limits(connect_s=1.0, read_s=0.5, deadline_s=2.0, feed_max_bytes=64 * 1024, page_max_bytes=256 * 1024)


@pytest.fixture
def site() -> Iterator[Site]:
    with serving() as s:
        yield s


@pytest.fixture
def svc(tmp_path: Path, sqlite_url: str) -> Services:
    # Approval is *not* required in this commune: a feed's draft waits for an approver all the same.
    services = make_services(tmp_path, sqlite_url, FakeClock(T0))
    with services.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
    return services


def _count(svc: Services, what: type) -> int:
    with svc.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(what)) or 0)


def _items(svc: Services) -> list[Announcement]:
    with svc.db.session() as s:
        return list(s.scalars(select(Announcement).order_by(Announcement.id)))


def test_new_articles_of_an_rss_feed_become_drafts_awaiting_approval_once(svc: Services, site: Site) -> None:
    lao_cai = site.page("/tin/bat-xat.html", "congthongtin-lao-cai.html")
    nghe_an = site.page("/tin/yen-thanh.html", "baotinh-nghe-an.html")
    feed_url = site.add("/rss.xml", Reply(body=rss("Tin trong tỉnh", [
        ("Nông dân Yên Thành thu hoạch lúa mùa sớm tránh bão", nghe_an, RFC822),
        ("Huyện Bát Xát ra quân làm đường giao thông nông thôn", lao_cai, "Tue, 24 Nov 2026 23:00:00 +0000"),
    ]), content_type="application/rss+xml"))  # fmt: skip
    feed = add_feed(svc, feed_url, actor="can-bo")
    assert feed["status"] == "new" and feed["queued"]

    assert poll_due(svc, limits=FAST) == 1
    items = _items(svc)
    assert [i.title for i in items] == [
        "Huyện Bát Xát ra quân làm đường giao thông nông thôn",
        "Nông dân Yên Thành thu hoạch lúa mùa sớm tránh bão",
    ]  # oldest first
    for item, page in zip(items, ["congthongtin-lao-cai.html", "baotinh-nghe-an.html"], strict=True):
        assert item.state.value == "awaiting_approval" and item.created_by == f"feed:{feed['id']}"
        assert item.audio_sha256 and item.audio_duration_ms  # rendered: the approver hears what would air
        assert item.text.startswith(item.title + "\n\n")
        assert not [s for s in BOILERPLATE[page] if s in item.text], item.text
    assert _count(svc, Broadcast) == 0  # nothing planned, nothing aired
    shown = get_feed(svc, feed["id"])
    assert shown["status"] == "ok" and shown["error"] is None and shown["title"] == "Tin trong tỉnh"
    assert shown["drafted"] == [i.id for i in items]
    assert [w["id"] for w in waiting(svc)] == [i.id for i in items]
    with svc.db.session() as s:
        actions = [(e.actor, e.action) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert ("can-bo", "feed.add") in actions and actions.count((f"feed:{feed['id']}", "announcement.submit")) == 2

    # Read again: the same addresses are known, no page is fetched again, nothing new.
    again = poll_now(svc, feed["id"], limits=FAST)
    assert again.drafted == [] and len(_items(svc)) == 2
    assert len(site.hits("/tin/bat-xat.html")) == 1 and len(site.hits("/tin/yen-thanh.html")) == 1
    assert poll_due(svc, limits=FAST) == 0  # not due again for 30 minutes

    # An approver decides it like any other item (the feed is nobody: anyone may approve it).
    approved = approve(svc, items[0].id, actor="chu-tich")
    assert approved["state"] == "scheduled" and _count(svc, Broadcast) >= 1


def test_an_atom_feed_is_read_the_same_way(svc: Services, site: Site) -> None:
    page = site.page("/xa-hoi/dong-van.html", SHORT)
    feed_url = site.add("/atom.xml", Reply(body=atom("Báo Hà Giang", [
        ("Đồng Văn: Cấp nước sạch cho 3 thôn vùng cao", page, "2026-11-25T00:10:00Z"),
    ]), content_type="application/atom+xml"))  # fmt: skip
    feed = add_feed(svc, feed_url, zones=["thon-1"], actor="can-bo")
    result = poll_now(svc, feed["id"], limits=FAST)
    assert len(result.drafted) == 1
    (item,) = _items(svc)
    assert item.title == "Đồng Văn: Cấp nước sạch cho 3 thôn vùng cao" and json.loads(item.targets) == ["thon-1"]
    assert "Huyện Đồng Văn vừa đưa vào sử dụng" in item.text  # the lead, kept outside the body
    assert not [s for s in BOILERPLATE[SHORT] if s in item.text], item.text


@pytest.fixture
def any_db(tmp_path: Path, database_url: str) -> Services:
    """SQLite and PostgreSQL: the unique address and the dedup queries on both."""
    services = make_services(tmp_path, database_url, FakeClock(T0))
    with services.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
    return services


def test_the_same_article_under_another_address_is_not_drafted_again(any_db: Services, site: Site) -> None:
    svc = any_db
    first = site.page("/a/bat-xat.html", SHORT)
    copy = site.page("/b/ban-sao-bat-xat.html", SHORT)  # another site carries it
    one = add_feed(svc, site.add("/a.xml", Reply(body=rss("A", [("Bát Xát", first, RFC822)]))), actor="can-bo")
    two = add_feed(svc, site.add("/b.xml", Reply(body=rss("B", [("Bát Xát", copy, RFC822)]))), actor="can-bo")
    assert len(poll_now(svc, one["id"], limits=FAST).drafted) == 1
    second = poll_now(svc, two["id"], limits=FAST)
    assert second.drafted == [] and second.duplicates == 1
    assert len(_items(svc)) == 1
    with svc.db.session() as s:
        outcomes = sorted((i.outcome, i.announcement_id) for i in s.scalars(select(FeedItem)))
    assert outcomes == [("drafted", _items(svc)[0].id), ("duplicate", _items(svc)[0].id)]
    poll_now(svc, two["id"], limits=FAST)
    assert len(site.hits("/b/ban-sao-bat-xat.html")) == 1  # known now: not fetched again


def test_a_feed_that_has_not_changed_answers_304_and_nothing_is_fetched(svc: Services, site: Site) -> None:
    page = site.page("/tin/yen-thanh.html", SHORT)
    reply = Reply(body=rss("Báo Nghệ An", [("Yên Thành", page, RFC822)]), etag='"v1"',
                  headers={"Last-Modified": "Wed, 25 Nov 2026 01:00:00 GMT"})  # fmt: skip
    feed = add_feed(svc, site.add("/rss.xml", reply), actor="can-bo")
    assert len(poll_now(svc, feed["id"], limits=FAST).drafted) == 1
    site.routes["/tin/yen-thanh.html"] = Reply(status=500)  # would show, were it fetched again

    again = poll_now(svc, feed["id"], limits=FAST)
    asked = site.hits("/rss.xml")[-1].headers
    assert asked["if-none-match"] == '"v1"' and asked["if-modified-since"] == "Wed, 25 Nov 2026 01:00:00 GMT"
    assert again.unchanged and again.drafted == [] and again.problems == []
    assert len(site.hits("/tin/yen-thanh.html")) == 1
    assert get_feed(svc, feed["id"])["status"] == "ok" and len(_items(svc)) == 1


@pytest.mark.parametrize(
    ("reply", "code", "words"),
    [
        (Reply(status=500, body=b"Internal Server Error"), "feed_http", "HTTP 500"),
        (Reply(hang=True), "feed_timeout", "không trả lời trong"),
        (Reply(endless=True, content_type="application/rss+xml"), "feed_too_large", "quá lớn"),
        (Reply(body=b"\x00\x01<<< garbage >>> <rss><chan", content_type="application/rss+xml"), "feed_not_a_feed",
         "không phải nguồn tin RSS hay Atom"),
        (Reply(body=b"<html><body><h1>Trang chu</h1></body></html>"), "feed_not_a_feed", "không phải nguồn tin"),
        (Reply(status=302, headers={"Location": "file:///etc/passwd"}), "feed_redirect_refused", "file:///etc/passwd"),
    ],
    ids=["http-500", "hang", "oversize", "garbage-xml", "html-page", "redirect-to-file"],
)  # fmt: skip
def test_a_feed_that_cannot_be_read_is_failing_with_its_reason(
    svc: Services, site: Site, reply: Reply, code: str, words: str
) -> None:
    feed = add_feed(svc, site.add("/feed.xml", reply), actor="can-bo")
    result = poll_now(svc, feed["id"], limits=FAST)
    assert result.drafted == []
    shown = get_feed(svc, feed["id"])
    assert shown["status"] == "failing" and shown["error_code"] == code
    assert words in shown["error"], shown["error"]
    assert get_feed(svc, feed["id"], lang="en")["error"] != shown["error"]  # said in the reader's language
    assert _count(svc, Announcement) == 0 and _count(svc, FeedItem) == 0 and _count(svc, Broadcast) == 0

    # Once the site is mended, the next reading works and the reason goes.
    site.routes["/feed.xml"] = Reply(body=rss("Tin", []))
    poll_now(svc, feed["id"], limits=FAST)
    assert get_feed(svc, feed["id"])["status"] == "ok" and get_feed(svc, feed["id"])["error"] is None


def test_a_page_that_is_not_an_article_is_skipped_with_its_reason_and_not_fetched_again(
    svc: Services, site: Site
) -> None:
    listing = site.page("/tin-trong-tinh", "chuyenmuc-tin-trong-tinh.html")
    big = site.add("/tin/rat-dai.html", Reply(body=b"<p>" + "chữ ".encode() * 200_000 + b"</p>"))
    article = site.page("/tin/bat-xat.html", SHORT)
    feed = add_feed(svc, site.add("/rss.xml", Reply(body=rss("Tin", [
        ("Tin trong tỉnh", listing, RFC822), ("Bài rất dài", big, RFC822), ("Bát Xát", article, RFC822),
        ("Không có địa chỉ", "", RFC822),
    ]))), actor="can-bo")  # fmt: skip
    result = poll_now(svc, feed["id"], limits=FAST)
    assert len(result.drafted) == 1 and len(_items(svc)) == 1  # the real article still comes through
    shown = get_feed(svc, feed["id"])
    assert shown["status"] == "ok"
    reasons = {p["url"]: p["reason"] for p in shown["problems"]}
    assert "không phải một bài báo" in reasons[listing]
    assert "quá lớn" in reasons[big]
    assert "không có địa chỉ bài" in reasons[""]
    with svc.db.session() as s:
        skipped = {i.url: i.reason for i in s.scalars(select(FeedItem).where(FeedItem.outcome == "skipped"))}
    assert skipped == {listing: "feed_not_article", big: "feed_too_large"}
    poll_now(svc, feed["id"], limits=FAST)
    assert len(site.hits("/tin-trong-tinh")) == 1 and len(site.hits("/tin/rat-dai.html")) == 1
    assert _count(svc, Broadcast) == 0


def test_an_article_that_fails_for_now_is_tried_again_next_time(svc: Services, site: Site) -> None:
    site.add("/tin/bat-xat.html", Reply(status=503))
    url = site.url + "/tin/bat-xat.html"
    feed = add_feed(svc, site.add("/rss.xml", Reply(body=rss("Tin", [("Bát Xát", url, RFC822)]))), actor="can-bo")
    first = poll_now(svc, feed["id"], limits=FAST)
    assert first.drafted == [] and "HTTP 503" in get_feed(svc, feed["id"])["problems"][0]["reason"]
    site.page("/tin/bat-xat.html", SHORT)
    assert len(poll_now(svc, feed["id"], limits=FAST).drafted) == 1


def test_old_news_is_not_news(svc: Services, site: Site) -> None:
    page = site.page("/tin/bat-xat.html", SHORT)
    feed = add_feed(svc, site.add("/rss.xml", Reply(body=rss("Tin", [
        ("Bát Xát", page, "Mon, 16 Nov 2026 01:00:00 +0000"),
    ]))), actor="can-bo")  # fmt: skip
    assert poll_now(svc, feed["id"], limits=FAST).drafted == [] and site.hits("/tin/bat-xat.html") == []


def test_what_a_person_does_with_feeds_is_checked_and_audited(svc: Services) -> None:
    bad = ["file:///etc/passwd", "ftp://tinh.example.vn/rss", "tin tuc", "http://", "https://a.vn/" + "x" * 2000,
           "http://a.vn/\nrss"]  # fmt: skip
    for url in bad:
        with pytest.raises(LoaError) as refused:
            add_feed(svc, url, actor="can-bo")
        assert refused.value.code == "feed_bad_url"
    with pytest.raises(LoaError) as refused:
        add_feed(svc, "https://tinh.example.vn/rss", zones=["thon-9"], actor="can-bo")
    assert refused.value.code == "unknown_zone"
    with pytest.raises(LoaError) as refused:
        add_feed(svc, "https://tinh.example.vn/rss", every_min=1, actor="can-bo")
    assert refused.value.code == "feed_bad_interval"
    assert list_feeds(svc) == []

    feed = add_feed(svc, "https://tinh.example.vn/rss", actor="can-bo")
    with pytest.raises(LoaError) as refused:
        add_feed(svc, "https://tinh.example.vn/rss", actor="pho-chu-tich")
    assert refused.value.code == "feed_exists" and refused.value.status == 409
    svc.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    assert request_poll(svc, feed["id"], actor="pho-chu-tich")["queued"]
    remove_feed(svc, feed["id"], actor="can-bo")
    assert list_feeds(svc) == []
    with pytest.raises(LoaError) as refused:
        request_poll(svc, feed["id"], actor="can-bo")
    assert refused.value.code == "not_found" and refused.value.status == 404
    with svc.db.session() as s:
        log = [(e.actor, e.action, json.loads(e.detail).get("feed")) for e in s.scalars(select(AuditEntry))]
    assert log == [("can-bo", "feed.add", feed["id"]), ("pho-chu-tich", "feed.poll_now", feed["id"]),
                   ("can-bo", "feed.remove", feed["id"])]  # fmt: skip


def test_feeds_at_the_terminal(tmp_path: Path, site: Site) -> None:
    """`loa feed add`, `poll` and `list` as a person types them (three processes: each costs seconds)."""
    page = site.page("/tin/dong-van.html", SHORT)
    feed_url = site.add("/rss.xml", Reply(body=rss("Báo Hà Giang", [("Đồng Văn", page, FUTURE)])))
    added = loa(tmp_path, "feed", "add", feed_url, "--zone", "all")
    assert added.returncode == 0, added.stderr
    assert "Đã thêm nguồn tin #1" in added.stdout
    environ = {"LOA_GENERAL_DATA_DIR": str(tmp_path / "data"), "LOA_SPEECH_CHIMES": "false"}
    svc = build_services(load_config(None, environ=environ), SystemClock())
    add_feed(svc, site.add("/hong.xml", Reply(status=500)), actor="can-bo")

    polled = loa(tmp_path, "feed", "poll")
    assert polled.returncode == 1, polled.stderr  # one of them is failing
    assert "Nguồn tin #1: tốt" in polled.stdout and "bản nháp mới chờ duyệt: #1" in polled.stdout
    assert "Nguồn tin #2: LỖI: Máy chủ trả lỗi HTTP 500." in polled.stdout
    listed = loa(tmp_path, "feed", "list")
    assert f"#1 Báo Hà Giang — {feed_url}" in listed.stdout and "LỖI: Máy chủ trả lỗi HTTP 500." in listed.stdout
    assert [(w["id"], w["created_by"]) for w in waiting(svc)] == [(1, "feed:1")]
