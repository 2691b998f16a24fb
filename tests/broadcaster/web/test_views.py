"""The read-only views on a morning's real business (conftest.populate): what a viewer sees."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from broadcaster.db import Role, audit
from broadcaster.services.announcements import announce
from tests.broadcaster.web.conftest import Desk


def _fact(card: Locator, name: str) -> Locator:
    """The value a card's list of facts gives for `name`."""
    return card.locator(".facts > div", has=card.page.locator("dt", has_text=name)).locator("dd")


def test_the_timeline_shows_what_aired_what_is_on_air_and_what_is_planned(commune: Desk, page: Page) -> None:
    commune.sign_in(page, Role.VIEWER)
    commune.open(page, "/timeline?zone=thon-1")
    expect(page.get_by_role("heading", level=2)).to_have_text("Thôn 1: Thứ Tư 25/11/2026")
    meeting = page.locator("li.card", has_text="Họp thôn tối nay")
    expect(meeting.locator("time")).to_have_text("09:05")  # commune time, not UTC (02:05); a short item: no end
    expect(meeting).to_contain_text("Đã phát")
    expect(page.locator("li.card", has_text="Tiêm phòng cho trẻ")).to_contain_text("Đang phát")
    expect(page.locator("li.card", has_text="Tiêm phòng cho trẻ")).to_contain_text("Ưu tiên")
    expect(page.locator("li.card", has_text="Thu quỹ").locator("time")).to_have_text("17:00")
    expect(page.locator("li.card", has_text="Thu quỹ")).to_contain_text("Sắp phát")
    expect(page.locator("main")).not_to_contain_text("Lịch cắt điện")  # Thôn 2's alone
    expect(page.locator("main")).not_to_contain_text("Vệ sinh đường làng")  # tomorrow's

    page.get_by_label("Khu vực").select_option("thon-2")
    page.get_by_label("Tuần").check()
    page.get_by_role("button", name="Xem lịch").click()
    expect(page.get_by_role("heading", level=2)).to_have_text("Thôn 2: 23/11/2026 – 29/11/2026")
    thursday = page.locator("section.day", has=page.get_by_role("heading", name="Thứ Năm 26/11/2026"))
    expect(thursday).to_contain_text("Vệ sinh đường làng")
    expect(page.locator("section.day", has_text="Thứ Tư 25/11/2026")).to_contain_text("Lịch cắt điện")
    expect(page.locator("main")).not_to_contain_text("Tiêm phòng cho trẻ")
    expect(page.locator("section.day", has_text="Chủ Nhật 29/11/2026")).to_contain_text("Không có gì phát")

    page.get_by_role("link", name="Tuần sau").click()
    expect(page.get_by_role("heading", level=2)).to_have_text("Thôn 2: 30/11/2026 – 06/12/2026")


RECALL_HREF = re.compile(r"^/approvals/\d+/recall$")


def test_the_timeline_offers_a_recall_on_what_is_on_air_or_planned_to_those_who_may(commune: Desk, page: Page) -> None:
    """Recall is one button on every item that is scheduled or on air, the timeline's included; never on
    what already aired, and never for a viewer."""
    commune.sign_in(page, Role.OFFICER)
    commune.open(page, "/timeline?zone=thon-1")
    on_air, planned = (page.locator("li.card", has_text=t) for t in ("Tiêm phòng cho trẻ", "Thu quỹ"))
    for card in (on_air, planned):
        expect(card.get_by_role("link", name="Thu hồi")).to_have_attribute("href", RECALL_HREF)
    expect(page.locator("li.card", has_text="Họp thôn tối nay").get_by_role("link", name="Thu hồi")).to_have_count(0)
    on_air.get_by_role("link", name="Thu hồi").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Thu hồi")


def test_a_viewer_sees_no_recall_on_the_timeline(commune: Desk, page: Page) -> None:
    commune.sign_in(page, Role.VIEWER)
    commune.open(page, "/timeline?zone=thon-1")
    expect(page.get_by_role("link", name="Thu hồi")).to_have_count(0)


def test_a_day_that_is_not_a_date_and_a_zone_that_does_not_exist_are_said_plainly(commune: Desk, page: Page) -> None:
    commune.sign_in(page, Role.VIEWER)
    assert commune.open(page, "/timeline?date=25-11-2026").status == 400
    expect(page.get_by_role("alert")).to_contain_text("Không hiểu ngày «25-11-2026»")
    assert commune.open(page, "/timeline?zone=thon-9").status == 404
    expect(page.get_by_role("alert")).to_contain_text("Không có khu vực 'thon-9'")


def test_the_device_board_groups_devices_by_village_with_what_they_last_played(commune: Desk, page: Page) -> None:
    commune.sign_in(page, Role.VIEWER)
    commune.open(page, "/devices")
    expect(page.locator("main > p").first).to_have_text("4/5 thiết bị đang kết nối")
    village2 = page.locator("section.village", has=page.get_by_role("heading", name="Thôn 2: 1/2 đang kết nối"))
    quiet = village2.locator("li.card", has_text="thon-2-loa-2")
    expect(quiet).to_contain_text("Mất kết nối")
    expect(quiet).to_contain_text("08:40:00 25/11/2026 (30 phút trước)")  # commune time, and how long ago
    expect(quiet).to_contain_text("Họp thôn tối nay")
    expect(quiet).to_contain_text("Lỗi; Lỗi tải âm thanh (HTTP 404)")
    loud = page.locator("li.card", has_text="thon-1-loa-1")
    expect(loud).to_contain_text("Đang kết nối")
    expect(_fact(loud, "Âm lượng")).to_have_text("80")
    expect(_fact(loud, "Sóng")).to_have_text("-61")
    expect(_fact(loud, "Phần mềm")).to_have_text("loa-agent 1.4.2")
    expect(loud).to_contain_text("Tiêm phòng cho trẻ")
    expect(loud).to_contain_text("Đang phát, lệch +0.6 ms")
    expect(page.locator(".warning")).to_contain_text(
        "Thôn 2: 1 loa mất kết nối (thon-2-loa-2); «Lịch cắt điện» phát lúc 09:30"
    )
    loud.get_by_role("link", name="Tiêm phòng cho trẻ").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Lượt phát: Tiêm phòng cho trẻ")


def test_an_airings_deliveries_say_how_many_speakers_played_it(commune: Desk, page: Page) -> None:
    commune.sign_in(page, Role.VIEWER)
    commune.open(page, "/broadcasts")
    meeting = page.locator("li.card", has_text="Họp thôn tối nay")
    expect(meeting).to_contain_text("3/4 loa đã phát")
    expect(meeting).to_contain_text("Thôn 1, Thôn 2")  # one airing, both villages
    meeting.get_by_role("link", name="Họp thôn tối nay").click()
    expect(page.get_by_role("heading", level=2).first).to_have_text("3/4 loa đã phát")
    summary = page.locator("section.summary")
    expect(summary).to_contain_text("1/1 bảng LED đã hiển thị")
    expect(summary).to_contain_text("Không phát: 1 lỗi tải âm thanh")
    expect(summary).to_contain_text("Lệch khởi phát p99: 2.5 ms")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(5)
    expect(page.locator("tr", has_text="thon-2-loa-2")).to_contain_text("Lỗi tải âm thanh (HTTP 404)")
    expect(page.locator("tr", has_text="thon-1-loa-2")).to_contain_text("-0.8 ms")
    expect(page.locator("tr", has_text="thon-1-loa-2")).to_contain_text("09:05:00 25/11/2026")
    page.get_by_role("link", name="Mọi lượt phát của thông báo này").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Các lượt phát của thông báo số {commune.facts['meeting']['id']}"
    )
    expect(page.locator("li.card")).to_have_count(1)


def test_the_audit_log_names_who_did_what_newest_first_and_filters_by_person(commune: Desk, page: Page) -> None:
    viewer = commune.sign_in(page, Role.VIEWER)
    commune.open(page, "/audit")
    first = page.locator("tbody tr").first
    expect(first).to_contain_text(viewer)  # the sign-in just made is the newest
    expect(first).to_contain_text("Đăng nhập")
    page.get_by_label("Người thực hiện").select_option("can-bo")
    page.get_by_role("button", name="Lọc").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(5)  # the five announcements of the morning
    expect(rows.first).to_contain_text("Gửi thông báo")
    expect(rows.first).to_contain_text(f"announcement: {commune.facts['tomorrow']['id']}")
    expect(rows.first).to_contain_text("start_at: 07:00:00 26/11/2026")  # stored in UTC, read in commune time
    expect(page.locator("tbody")).not_to_contain_text(viewer)
    rows.last.get_by_role("link", name="Xem lượt phát").click()
    expect(page.locator("li.card", has_text="Họp thôn tối nay")).to_contain_text("3/4 loa đã phát")


def test_the_audit_log_pages_by_fifty(desk: Desk, page: Page) -> None:
    with desk.svc.db.session() as s:
        for i in range(60):
            audit(s, desk.clock.now(), "can-bo", "zone.add", zone=f"nhom-{i}")
    desk.sign_in(page, Role.VIEWER)
    desk.open(page, "/audit?actor=can-bo")
    expect(page.locator("tbody tr")).to_have_count(50)
    expect(page.locator("tbody tr").first).to_contain_text("zone: nhom-59")
    page.get_by_role("link", name="Sau").click()
    expect(page.locator("tbody tr")).to_have_count(10)
    expect(page.locator("tbody tr").last).to_contain_text("zone: nhom-0")
    expect(page.get_by_text("Trang 2/2")).to_be_visible()


def test_the_report_says_what_was_broadcast_in_a_period(commune: Desk, page: Page) -> None:
    commune.sign_in(page, Role.VIEWER)
    commune.open(page, "/report")  # this quarter so far
    expect(page.locator("section.summary h2")).to_have_text("1 tin, bài với 1 lượt phát")  # the playing one is not done
    expect(page.locator("section.summary")).to_contain_text("Từ 01/10/2026 đến 25/11/2026")
    expect(page.locator("li.card", has_text="Họp thôn tối nay")).to_contain_text("3/4 loa đã phát")
    page.get_by_label("Từ ngày").fill("2026-11-26")
    page.get_by_label("Đến ngày").fill("2026-11-30")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(page.locator("section.summary h2")).to_have_text("0 tin, bài với 0 lượt phát")
    expect(page.locator("li.card", has_text="Vệ sinh đường làng")).to_contain_text("Sắp phát")
    assert commune.open(page, "/report?from=2026-11-30&to=2026-11-01").status == 400
    expect(page.get_by_role("alert")).to_contain_text("Thời điểm kết thúc phải sau thời điểm bắt đầu.")


def test_the_home_page_says_what_needs_attention_and_what_airs_next(commune: Desk, page: Page) -> None:
    commune.sign_in(page, Role.VIEWER, "nguoi-xem")
    commune.open(page, "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Xin chào, nguoi-xem")
    expect(page.locator(".warning")).to_contain_text("«Lịch cắt điện» phát lúc 09:30")
    expect(page.locator("main")).to_contain_text("3/4 loa đang kết nối; 1/1 bảng LED đang kết nối")
    coming = page.locator("section", has=page.get_by_role("heading", name="Hôm nay, sắp phát"))
    expect(coming.locator("li.card")).to_have_count(3)  # on air, 09:30, 17:00
    expect(coming.locator("li.card").first).to_contain_text("Đang phát")
    recent = page.locator("section", has=page.get_by_role("heading", name="Vừa phát"))
    expect(recent.locator("li.card", has_text="Họp thôn tối nay")).to_contain_text("3/4 loa đã phát")
    # a viewer's menu: the read-only pages, nothing to compose with
    nav = page.get_by_role("navigation", name="Mục chính")
    for name in ("Trang chính", "Lịch phát", "Thiết bị", "Đã phát", "Báo cáo", "Nhật ký"):
        expect(nav.get_by_role("link", name=name)).to_be_visible()
    expect(nav.get_by_role("link", name="Soạn tin")).to_have_count(0)


def test_a_title_with_markup_is_shown_as_text_and_never_runs(desk: Desk, page: Page) -> None:
    """Stored XSS: what an officer typed is escaped, and the pages' Content-Security-Policy would refuse
    an inline script anyway; no other site may frame the desk (clickjacking)."""
    title = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    announce(desk.svc, "Kính thưa bà con.", ["all"], "+10m", title=title, actor="can-bo")
    desk.sign_in(page, Role.VIEWER)
    response = desk.open(page, "/broadcasts")
    expect(page.locator("li.card .title")).to_have_text(title)
    assert page.evaluate("window.pwned") is None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert response.headers["cache-control"] == "no-store"
