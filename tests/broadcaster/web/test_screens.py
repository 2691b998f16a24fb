"""Every page at phone and desktop width: saved for people to look at (tests/artifacts/screens/), no
sideways scrolling on a 360-px phone, and no serious or critical accessibility violation (axe-core)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from broadcaster.db import Role
from tests.broadcaster.web.conftest import DESKTOP, PHONE, SCREENS, Desk, assert_accessible, screens

PAGES = {
    "home": "/",
    "timeline-day": "/timeline?zone=thon-1",
    "timeline-week": "/timeline?zone=all&view=week",
    "devices": "/devices",
    "broadcasts": "/broadcasts",
    "deliveries": "/broadcasts/{meeting}",
    "report": "/report",
    "audit": "/audit",
    "password": "/password",
    "error": "/timeline?zone=thon-9",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_fits_a_phone_reads_on_a_desktop_and_passes_axe(commune: Desk, page: Page, name: str) -> None:
    commune.sign_in(page, Role.ADMIN, "quan-tri")
    path = PAGES[name].format(meeting=commune.facts["meeting"]["broadcasts"][0]["id"])
    commune.open(page, path)
    screens(page, name)
    assert_accessible(page)  # the desktop, its menu in view (the phone's open menu: below)


def test_the_sign_in_page_fits_a_phone_and_passes_axe(commune: Desk, page: Page) -> None:
    commune.open(page, "/login")
    page.get_by_label("Tên đăng nhập").fill("can-bo")
    page.get_by_label("Mật khẩu").fill("sai")
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.get_by_role("alert")).to_be_visible()  # the error's colours are checked too
    screens(page, "login")
    assert_accessible(page)


def test_on_a_phone_the_menu_opens_with_a_button(commune: Desk, page: Page) -> None:
    commune.sign_in(page, Role.VIEWER)
    page.set_viewport_size(PHONE)
    commune.open(page, "/")
    nav = page.get_by_role("navigation", name="Mục chính")
    expect(nav).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)  # the open menu, on a phone
    page.screenshot(path=SCREENS / "menu-360.png")
    nav.get_by_role("link", name="Thiết bị").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thiết bị")
    page.set_viewport_size(DESKTOP)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Mục chính")).to_be_visible()
    expect(page.get_by_role("link", name="Thiết bị")).to_have_attribute("aria-current", "page")
