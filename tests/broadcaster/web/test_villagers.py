"""The villagers' side in a real browser (docs/villagers.md): what aired in a village is on its public
page with audio that plays and in its podcast feed, what was recalled is not; a feedback form sent
from a 360-px phone reaches the device board and the officer's list; a flood and a honeypot are
refused in Vietnamese with nothing stored."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response, expect
from sqlalchemy import func, select

from broadcaster.api.app import create_audio_app
from broadcaster.api.server import HttpServer
from broadcaster.db import AuditEntry, DeliveryStatus, DeviceKind, Feedback, Role
from broadcaster.services import Services
from broadcaster.services.announcements import announce
from broadcaster.services.feedback import qr_token
from broadcaster.services.recall import recall
from broadcaster.services.zones import add_device
from tests.broadcaster.web.conftest import PHONE, Desk, air, assert_accessible

ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"


@dataclass
class Public:
    url: str
    desk: Desk


@pytest.fixture
def public(desk: Desk) -> Iterator[Public]:
    """The desk's commune, with its villagers' pages on a listener of their own, as the daemon serves them."""
    with desk.svc.db.session() as s:
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1", name="Loa chợ")
        add_device(s, "thon-2-loa", DeviceKind.SPEAKER, "thon-2")
    server = HttpServer(create_audio_app(desk.svc.audio.store, None, desk.svc), "127.0.0.1", 0)
    server.start()
    yield Public(server.url, desk)
    server.stop()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, locale="vi-VN", is_mobile=True, has_touch=True)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def _aired(desk: Desk, text: str, title: str, zones: list[str], played: dict[str, DeliveryStatus]) -> int:
    made = announce(desk.svc, text, zones, "+1m", title=title, actor="can-bo")
    desk.clock.advance(timedelta(minutes=1))
    air(desk.svc, made["broadcasts"][0]["id"], {d: (s, "", 0.8) for d, s in played.items()})
    desk.clock.advance(timedelta(minutes=1))
    return int(made["id"])


def _stored(svc: Services) -> int:
    with svc.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Feedback)) or 0)


def test_an_aired_bulletin_is_on_its_village_page_with_audio_and_in_its_podcast(public: Public, phone: Page) -> None:
    desk = public.desk
    _aired(desk, "Kính thưa bà con, 19 giờ tối nay họp thôn tại nhà văn hóa.", "Họp thôn tối nay", ["thon-1"],
           {"thon-1-loa": DeliveryStatus.DONE})  # fmt: skip
    wrong = _aired(desk, "Thông báo thu quỹ ngày mai.", "Thu quỹ nhầm ngày", ["thon-1"],
                   {"thon-1-loa": DeliveryStatus.DONE})  # fmt: skip
    recall(desk.svc, wrong, actor="can-bo", reason="Nhầm ngày")
    elsewhere = _aired(desk, "Thôn 2 cắt điện chiều nay.", "Cắt điện thôn 2", ["thon-2"],
                       {"thon-2-loa": DeliveryStatus.DONE})  # fmt: skip

    loaded: list[Response] = []
    phone.on("response", lambda r: loaded.append(r))
    answer = phone.goto(public.url + "/nghe-lai/thon-1")
    assert answer is not None and answer.status == 200
    item = phone.locator("article.item", has_text="Họp thôn tối nay")
    expect(item).to_be_visible()
    expect(item).to_contain_text("19 giờ tối nay họp thôn")
    expect(item.locator("time")).to_have_text("09:01 25/11/2026")  # its time in the commune
    expect(phone.locator("article.item")).to_have_count(1)  # neither the recalled one nor Thôn 2's
    assert "Thu quỹ nhầm ngày" not in phone.content() and "Cắt điện thôn 2" not in phone.content()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    weight = sum(len(r.body()) for r in loaded if r.request.resource_type in ("document", "stylesheet", "script"))
    assert weight < 100_000, weight  # HTML + CSS (+ JS: none) without the audio
    assert not [r for r in loaded if r.request.resource_type == "script"]
    audio = item.locator("audio")
    src = audio.get_attribute("src")
    assert src and src.startswith("/audio/")
    audio.evaluate("a => { a.preload = 'auto'; a.load(); }")
    phone.wait_for_function("a => a.readyState >= 1 && a.duration > 0", arg=audio.element_handle())
    assert_accessible(phone)

    with httpx.Client(base_url=public.url, timeout=10) as client:
        feed = client.get("/nghe-lai/thon-1/podcast.xml")
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/rss+xml")
        rss = ET.fromstring(feed.content)
        assert rss.tag == "rss" and rss.get("version") == "2.0"
        channel = rss.find("channel")
        assert channel is not None and channel.findtext("title") and channel.findtext(f"{ITUNES}author")
        items = channel.findall("item")
        assert [i.findtext("title") for i in items] == ["Họp thôn tối nay"]
        enclosure = items[0].find("enclosure")
        assert enclosure is not None and items[0].findtext(f"{ITUNES}duration", "").startswith("00:00:")
        assert enclosure.get("url") == public.url + src
        heard = client.get(enclosure.get("url", ""))
        assert heard.status_code == 200 and heard.headers["content-type"] == enclosure.get("type") == "audio/mpeg"
        assert heard.headers["content-length"] == enclosure.get("length") == str(len(heard.content))
        commune = ET.fromstring(client.get("/nghe-lai/podcast.xml").content)
        titles = {i.findtext("title") for i in commune.iter("item")}
        assert titles == {"Họp thôn tối nay", "Cắt điện thôn 2"}  # every village's, never the recalled one
    assert elsewhere


def test_feedback_from_a_phone_reaches_the_device_board_and_is_handled(public: Public, phone: Page, page: Page) -> None:
    desk = public.desk
    token = qr_token(desk.svc.config, "loa", "thon-1-loa")
    phone.goto(f"{public.url}/y-kien/loa/thon-1-loa/{token}")
    expect(phone.locator("h1")).to_contain_text("Loa chợ")
    phone.get_by_label("Không nghe rõ").check()
    phone.get_by_label("Nội dung (không bắt buộc)").fill("Loa chợ rè, không nghe rõ tin sáng nay.")
    phone.get_by_label("Số điện thoại (không bắt buộc)").fill("0912 345 678")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(phone)
    phone.get_by_role("button", name="Gửi ý kiến").click()
    expect(phone.get_by_role("status")).to_contain_text("Cảm ơn bà con")
    assert _stored(desk.svc) == 1

    desk.sign_in(page, Role.VIEWER)
    desk.open(page, "/devices")
    card = page.locator("li.device", has_text="thon-1-loa")
    expect(card.locator(".board-feedback")).to_contain_text("Không nghe rõ")
    expect(card.locator(".board-feedback")).to_contain_text("Loa chợ rè")
    expect(page.locator("li.device", has_text="thon-2-loa").locator(".board-feedback")).to_have_count(0)
    assert "0912345678" not in page.content()
    desk.open(page, "/feedback")
    expect(page.locator(".feedback-item")).to_contain_text("Loa chợ rè")
    assert "0912345678" not in page.content()  # a viewer does not see phone numbers
    expect(page.get_by_role("button", name="Đánh dấu đã xử lý")).to_have_count(0)

    page.context.clear_cookies()
    officer = desk.sign_in(page, Role.OFFICER)
    desk.open(page, "/feedback")
    expect(page.locator(".feedback-item .phone")).to_contain_text("0912345678")
    page.get_by_role("button", name="Đánh dấu đã xử lý").click()
    expect(page.locator("#form-error")).to_contain_text("Hãy ghi câu trả lời")  # a reply is required
    page.get_by_label("Trả lời ý kiến số 1").fill("Đã thay loa chợ.")
    page.get_by_role("button", name="Đánh dấu đã xử lý").click()
    expect(page.get_by_role("status")).to_contain_text("Đã đánh dấu đã xử lý")
    expect(page.locator(".feedback-item")).to_have_count(0)  # the open list is empty now
    with desk.svc.db.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "feedback.handle")).one()
    assert entry.actor == officer
    desk.open(page, "/feedback/qr")
    expect(page.locator(".qr-card svg")).to_have_count(4)  # two villages, two speakers
    expect(page.locator(".qr-card").first).to_contain_text("/y-kien/thon/thon-1/")
    assert_accessible(page)


def test_a_flood_and_a_honeypot_are_refused_in_vietnamese_and_store_nothing(public: Public, phone: Page) -> None:
    desk = public.desk
    path = f"/y-kien/thon/thon-2/{qr_token(desk.svc.config, 'thon', 'thon-2')}"
    phone.goto(public.url + path)
    phone.get_by_label("Quá to").check()
    phone.locator("#website").evaluate("input => { input.value = 'http://spam.example'; }")  # what robots do
    phone.get_by_role("button", name="Gửi ý kiến").click()
    expect(phone.get_by_role("alert")).to_contain_text("Không gửi được ý kiến")
    assert _stored(desk.svc) == 0
    limit = desk.svc.config.villagers.feedback_per_address
    with httpx.Client(base_url=public.url, timeout=10) as client:
        for _ in range(limit - 1):  # the honeypot's try counted too
            assert client.post(path, data={"category": "too_loud"}).status_code == 303
    assert _stored(desk.svc) == limit - 1
    phone.goto(public.url + path)
    phone.get_by_label("Quá to").check()
    phone.get_by_label("Nội dung (không bắt buộc)").fill("Lần nữa")
    with phone.expect_response(lambda r: r.request.method == "POST") as sent:
        phone.get_by_role("button", name="Gửi ý kiến").click()
    assert sent.value.status == 429 and sent.value.headers["retry-after"]
    expect(phone.get_by_role("alert")).to_contain_text("Bạn đã gửi nhiều ý kiến trong thời gian ngắn")
    expect(phone.get_by_label("Nội dung (không bắt buộc)")).to_have_value("Lần nữa")  # what was typed stays
    assert _stored(desk.svc) == limit - 1
