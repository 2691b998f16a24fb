"""The desk's period report (#14): the period and zone pickers, the commune's sentence, the tables per
village and per device, the charts (SVG from their own route, under the CSP), the downloads and the
page printed for the district (its heading as official papers have it, its tools hidden when printed);
on a phone and a desktop, with no serious accessibility violation."""

from __future__ import annotations

import io
from datetime import date

from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from broadcaster.db import Role
from broadcaster.services.period_report import period_report
from broadcaster.simulation.history import generate
from tests.broadcaster.web.conftest import Desk, assert_accessible, screens

PERIOD = "from=2026-11-01&to=2026-11-24"


def _history(desk: Desk) -> None:
    """Three weeks and a half of three villages (thon-1 and thon-2 are the desk's; thon-3 is new)."""
    generate(desk.svc.db, date(2026, 11, 1), 24, villages=3, speakers=2, items_per_day=3, seed=3)


def test_the_report_page_shows_the_periods_figures_charts_and_downloads(desk: Desk, page: Page) -> None:
    _history(desk)
    r = period_report(desk.svc, date(2026, 11, 1), date(2026, 11, 24))
    desk.sign_in(page, Role.VIEWER)
    desk.open(page, f"/report?{PERIOD}")
    expect(page.locator("section.summary h2")).to_have_text(f"{r.items} tin, bài với {r.airings} lượt phát")
    expect(page.locator("p.sentence")).to_have_text(r.sentence("vi"))
    villages = page.get_by_role("region", name="Theo thôn")
    expect(villages.locator("tbody tr")).to_have_count(3)
    expect(villages.locator("tbody tr").nth(2)).to_contain_text("Thôn 3")
    expect(page.get_by_role("region", name="Theo thiết bị").locator("tbody tr")).to_have_count(9)
    expect(page.get_by_role("region", name="Mất kết nối").locator("tbody tr").first).to_contain_text("thon-")
    charts = ("Lượt phát trên loa theo thôn", "Thời lượng phát theo tuần (phút)", "Số thiết bị trực tuyến theo ngày")
    for name in charts:
        chart = page.get_by_role("img", name=name)
        expect(chart).to_be_visible()
        assert chart.evaluate("img => img.complete && img.naturalWidth > 0"), name  # the SVG loaded under the CSP
    svg = page.request.get(f"{desk.url}/report/chart/villages.svg?{PERIOD}&zone=all")
    assert svg.ok and svg.headers["content-type"].startswith("image/svg+xml")
    assert f">{r.villages[0].outcomes.played}</text>" in svg.text()

    csv = page.request.get(desk.url + page.get_by_role("link", name="Tải CSV").get_attribute("href"))  # type: ignore[operator]
    assert csv.ok and "bao-cao-2026-11-01-2026-11-24.csv" in csv.headers["content-disposition"]
    assert csv.body().startswith("\ufeff".encode()) and "Thôn 3" in csv.body().decode("utf-8-sig")
    xlsx = page.request.get(desk.url + page.get_by_role("link", name="Tải Excel (XLSX)").get_attribute("href"))  # type: ignore[operator]
    book = load_workbook(io.BytesIO(xlsx.body()))
    assert book.sheetnames == ["Tổng hợp", "Theo thôn", "Theo thiết bị", "Mất kết nối", "Theo tuần", "Lý do không phát"]
    summary = {row[0]: row[1] for row in book["Tổng hợp"].iter_rows(values_only=True) if row[0]}
    assert summary["Số tin, bài"] == r.items and summary["Số lượt phát"] == r.airings

    assert_accessible(page)
    screens(page, "report-period")

    page.get_by_label("Khu vực").select_option("thon-2")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(page.get_by_role("region", name="Theo thôn").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_role("region", name="Theo thiết bị").locator("tbody tr")).to_have_count(3)
    assert "zone=thon-2" in page.url

    # the printed report, for the district
    page.get_by_role("link", name="Bản in gửi huyện").click()
    expect(page.locator(".period")).to_contain_text("Thôn 2")
    expect(page.locator(".nation")).to_contain_text("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
    expect(page.locator(".nation")).to_contain_text("Độc lập - Tự do - Hạnh phúc")
    expect(page.locator(".issuer")).to_contain_text(desk.svc.config.general.commune)
    expect(page.get_by_role("heading", level=1)).to_have_text("Báo cáo hoạt động đài truyền thanh")
    expect(page.locator("img")).to_have_count(3)
    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="In / lưu PDF")).to_be_hidden()
    page.emulate_media(media="screen")
    assert_accessible(page)
    screens(page, "report-print")


def test_a_period_backwards_is_refused_and_nothing_is_downloaded(desk: Desk, page: Page) -> None:
    desk.sign_in(page, Role.VIEWER)
    assert desk.open(page, "/report?from=2026-11-30&to=2026-11-01").status == 400
    expect(page.get_by_role("alert")).to_contain_text("Thời điểm kết thúc phải sau thời điểm bắt đầu.")
    bad = page.request.get(f"{desk.url}/report/export.csv?from=2026-13-01&to=2026-11-01")
    assert bad.status == 400 and "text/html" in bad.headers["content-type"]
    assert page.request.get(f"{desk.url}/report/chart/pie.svg").status == 404
