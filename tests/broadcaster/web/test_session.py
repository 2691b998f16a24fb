"""Signing in and out, the one-time password, the language: through the forms, in a real Chromium."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from broadcaster.api.auth import SESSION_COOKIE
from broadcaster.db import AuditEntry, Role, User, UserSession
from broadcaster.services.accounts import LoginThrottle, create_user, sign_in
from broadcaster.web.page import local_path
from tests.broadcaster.conftest import PASSWORD
from tests.broadcaster.web.conftest import Desk


def _fill_sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()


def _sessions(desk: Desk) -> int:
    with desk.svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(UserSession)) or 0


def _account(desk: Desk, username: str = "admin") -> tuple[str, bool]:
    with desk.svc.db.session() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        return user.password_hash, user.must_change_password


def test_a_wrong_password_is_refused_in_vietnamese_and_the_right_one_lands_where_the_officer_was_going(
    desk: Desk, page: Page
) -> None:
    officer = desk.user(Role.OFFICER, "can-bo")
    desk.open(page, "/devices")
    expect(page).to_have_url(f"{desk.url}/login?next=%2Fdevices")  # nobody signed in: to the sign-in first
    _fill_sign_in(page, officer, "mật khẩu sai")
    expect(page.get_by_role("alert")).to_contain_text("Sai tên đăng nhập hoặc mật khẩu.")
    expect(page.get_by_label("Tên đăng nhập")).to_have_value(officer)  # kept, to try again
    assert _sessions(desk) == 0 and not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    _fill_sign_in(page, officer, PASSWORD)
    expect(page).to_have_url(f"{desk.url}/devices")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thiết bị")
    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    with desk.svc.db.session() as s:
        actions = list(s.execute(select(AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.id)))
    assert actions[-2:] == [("anonymous", "login.failed"), (officer, "login")]


def test_signing_out_ends_the_session_on_the_server(desk: Desk, page: Page) -> None:
    officer = desk.user(Role.VIEWER)
    desk.open(page, "/login")
    _fill_sign_in(page, officer, PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Xin chào")
    stolen = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)["value"]
    page.get_by_role("button", name="Đăng xuất").click()
    expect(page).to_have_url(f"{desk.url}/login?notice=signed_out")
    expect(page.get_by_role("status")).to_have_text("Bạn đã đăng xuất.")
    assert _sessions(desk) == 0
    desk.open(page, "/audit")
    expect(page).to_have_url(f"{desk.url}/login?next=%2Faudit")
    # a copy of the cookie kept from before is worth nothing now
    resp = httpx.get(f"{desk.url}/audit", cookies={SESSION_COOKIE: stolen})
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")


def test_a_one_time_password_leads_to_choosing_a_new_one_and_bad_input_changes_nothing(desk: Desk, page: Page) -> None:
    once = "mat-khau-mot-lan"
    create_user(desk.svc, "admin", Role.ADMIN, once, actor="make run", must_change_password=True)
    desk.open(page, "/login")
    _fill_sign_in(page, "admin", once)
    expect(page).to_have_url(f"{desk.url}/password")
    expect(page.locator("main")).to_contain_text("chỉ dùng được một lần")
    desk.open(page, "/devices")  # nothing else until a new password is chosen
    expect(page).to_have_url(f"{desk.url}/password?next=%2Fdevices")
    before = _account(desk)

    def choose(old: str, new: str, again: str) -> None:
        page.get_by_label("Mật khẩu hiện tại").fill(old)
        page.get_by_label("Mật khẩu mới", exact=True).fill(new)
        page.get_by_label("Nhập lại mật khẩu mới").fill(again)
        page.get_by_role("button", name="Đổi mật khẩu").click()

    choose(once, "loa truyền thanh xã", "loa truyen thanh xa")
    expect(page.get_by_role("alert")).to_contain_text("Hai lần nhập mật khẩu không khớp.")
    choose(once, "ngắn", "ngắn")
    expect(page.get_by_role("alert")).to_contain_text("Mật khẩu cần ít nhất 8 ký tự.")
    choose("đoán bừa", "loa truyền thanh xã", "loa truyền thanh xã")
    expect(page.get_by_role("alert")).to_contain_text("Sai tên đăng nhập hoặc mật khẩu.")
    assert _account(desk) == before  # three refusals, nothing changed
    choose(once, "loa truyền thanh xã", "loa truyền thanh xã")
    expect(page).to_have_url(f"{desk.url}/devices?notice=password_changed")
    expect(page.get_by_role("status")).to_contain_text("Đã đổi mật khẩu.")
    hashed, must_change = _account(desk)
    assert hashed != before[0] and not must_change
    throttle = LoginThrottle(desk.svc.clock, 100, 60)
    assert sign_in(desk.svc, throttle, "admin", "loa truyền thanh xã", "test").principal.username == "admin"


def test_the_desk_speaks_english_when_asked_and_stays_so(desk: Desk, page: Page) -> None:
    desk.sign_in(page, Role.OFFICER)
    desk.open(page, "/devices")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    page.get_by_role("link", name="English").click()
    expect(page).to_have_url(f"{desk.url}/devices")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Devices")
    desk.open(page, "/")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Timeline")).to_be_visible()
    page.get_by_role("link", name="Tiếng Việt").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Xin chào")


def test_an_english_browser_gets_english_until_it_chooses(desk: Desk, browser: object) -> None:
    context = browser.new_context(locale="en-GB")  # type: ignore[attr-defined]
    page = context.new_page()
    desk.open(page, "/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_role("link", name="Tiếng Việt").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Đăng nhập")
    context.close()


def test_a_form_without_its_token_is_refused_and_changes_nothing(desk: Desk, page: Page) -> None:
    """The session's CSRF token on every signed-in form; the sign-in form's own token (login CSRF)."""
    officer = desk.sign_in(page, Role.OFFICER)
    desk.open(page, "/")
    status = page.evaluate(
        "async () => (await fetch('/logout', {method: 'POST', body: new URLSearchParams({csrf_token: 'x'})})).status"
    )
    assert status == 403 and _sessions(desk) == 1
    desk.open(page, "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Xin chào")  # still signed in
    # a sign-in posted without the form's cookie (another site's form, or a stale page)
    resp = httpx.post(f"{desk.url}/login", data={"username": officer, "password": PASSWORD, "csrf_token": "x"})
    assert resp.status_code == 403 and "Biểu mẫu đã cũ" in resp.text and SESSION_COOKIE not in resp.cookies
    assert _sessions(desk) == 1


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/devices?x=1", "/devices?x=1"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("devices", "/"),
        ("", "/"),
    ],
)
def test_next_only_leads_to_this_site(target: str, expected: str) -> None:
    assert local_path(target) == expected


def test_an_anonymous_upload_to_a_desk_form_is_sent_to_sign_in_before_its_body_is_read(desk: Desk) -> None:
    """The compose form takes a 50 MB recording: from nobody, the answer comes on the headers alone (a
    timeout here would mean the server sat waiting for the 20 MB to spool them to disk)."""
    where = urlsplit(desk.url)
    assert where.hostname and where.port
    with socket.create_connection((where.hostname, where.port), timeout=5) as sock:
        sock.sendall(
            f"POST /compose HTTP/1.1\r\nHost: {where.hostname}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 20000000\r\n\r\n--x\r\n".encode()
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 303 "), answer[:200]
    assert b"\r\nlocation: /login\r\n" in answer.lower()
    with desk.svc.db.session() as s:  # and the sign-in form itself stays open to everybody
        assert s.scalar(select(func.count()).select_from(UserSession)) == 0
    assert httpx.post(f"{desk.url}/login", data={"username": "x", "password": "y"}, timeout=10).status_code != 303
