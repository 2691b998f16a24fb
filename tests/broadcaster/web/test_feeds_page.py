"""The news feeds page in Chromium: feeds listed ok or failing with the reason in Vietnamese, an article
skipped with its reason, add (bad input refused with the typed address kept, nothing stored), "read now"
queued, stop following; every step audited under the officer; a viewer may not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from broadcaster.db import AuditEntry, Feed, Role
from broadcaster.ingest.feeds import poll_due
from tests.broadcaster.ingest.feedserver import Reply, Site, rss, serving
from tests.broadcaster.ingest.test_feeds import FAST, RFC822
from tests.broadcaster.web.conftest import Desk, assert_accessible, screens


@pytest.fixture
def site() -> Iterator[Site]:
    with serving() as s:
        yield s


def test_feeds_are_shown_ok_or_failing_with_their_reason_and_kept_from_the_page(
    desk: Desk, page: Page, site: Site
) -> None:
    broken = site.add("/hong.xml", Reply(status=500))
    listing = site.page("/tin-trong-tinh", "chuyenmuc-tin-trong-tinh.html")
    good = site.add("/rss.xml", Reply(body=rss("Cổng TTĐT tỉnh Lào Cai", [("Tin trong tỉnh", listing, RFC822)])))
    officer = desk.sign_in(page, Role.OFFICER, "can-bo")
    desk.open(page, "/feeds")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nguồn tin")
    expect(page.get_by_text("Chưa theo dõi nguồn tin nào.")).to_be_visible()

    form = page.locator("form[action='/feeds']")
    form.get_by_label("Địa chỉ nguồn tin (RSS hoặc Atom)").fill("file:///etc/passwd")
    form.get_by_role("button", name="Thêm nguồn tin").click()
    expect(page.get_by_role("alert")).to_contain_text("cần một địa chỉ http:// hoặc https:// đầy đủ")
    expect(form.get_by_label("Địa chỉ nguồn tin (RSS hoặc Atom)")).to_have_value("file:///etc/passwd")
    with desk.svc.db.session() as s:
        assert s.scalars(select(Feed)).all() == []

    for url in (broken, good):
        form = page.locator("form[action='/feeds']")
        form.get_by_label("Địa chỉ nguồn tin (RSS hoặc Atom)").fill(url)
        form.get_by_label("Thôn 1").check()
        form.get_by_role("button", name="Thêm nguồn tin").click()
        expect(page.get_by_role("status")).to_have_text("Đã thêm nguồn tin; loa đọc nó trong giây lát.")
    assert poll_due(desk.svc, limits=FAST) == 2  # what the daemon's poller does within seconds

    desk.open(page, "/feeds")
    feeds = page.locator(".entries > li")
    expect(feeds).to_have_count(2)
    failing = feeds.filter(has_text=broken)
    expect(failing).to_contain_text("Đang lỗi")
    expect(failing).to_contain_text("Máy chủ trả lỗi HTTP 500.")
    ok = feeds.filter(has_text=good)
    expect(ok).to_contain_text("Tốt")
    expect(ok).to_contain_text("Cổng TTĐT tỉnh Lào Cai")  # the feed's own title
    expect(ok).to_contain_text("Mỗi 30 phút; phát ở: Thôn 1")
    expect(ok.locator(".feed-problems")).to_contain_text("không phải một bài báo")
    assert_accessible(page)
    screens(page, "feeds")

    failing.get_by_role("button", name="Đọc ngay").click()
    expect(page.get_by_role("status")).to_contain_text("Đã xếp lượt đọc ngay")
    expect(page.locator(".entries > li").filter(has_text=broken)).to_contain_text("Đang chờ đọc ngay.")
    page.locator(".entries > li").filter(has_text=broken).get_by_role("button", name="Thôi theo dõi").click()
    expect(page.get_by_role("status")).to_have_text("Đã thôi theo dõi nguồn tin.")
    expect(page.locator(".entries > li")).to_have_count(1)

    with desk.svc.db.session() as s:
        actions = [(e.actor, e.action) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    mine = [a for a in actions if a[0] == officer and a[1].startswith("feed.")]
    assert mine == [(officer, "feed.add"), (officer, "feed.add"), (officer, "feed.poll_now"), (officer, "feed.remove")]

    viewer_page = page.context.new_page()
    desk.sign_in(viewer_page, Role.VIEWER)
    assert desk.open(viewer_page, "/feeds").status == 403
