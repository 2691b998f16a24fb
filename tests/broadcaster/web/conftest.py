"""Fixtures for the desk's pages: the daemon's app served by uvicorn on a free port, on real services,
and Debian's Chromium driven by Playwright's sync API (never a downloaded browser).

- `browser` (session): one Chromium for the whole run.
- `desk` (per test): a fresh commune (SQLite in tmp_path, the clock stopped at `T0`, 09:00 on a
  Wednesday in the commune, two villages thon-1 and thon-2) served on a free port: `desk.url`,
  `desk.svc`, `desk.clock`, `desk.user(role)`, `desk.sign_in(page, role)`, `desk.open(page, path)`.
- `commune` (one for the run): the same, with a morning's business already in it (`populate`): devices,
  an airing that played on 3 of 4 speakers, one on air, some planned. Only read it.
- `page` (per test): a new browser context (no cookies; a Vietnamese browser, 1280×800) and its page.
  Console errors (a script that failed, anything the Content-Security-Policy blocked) fail the test.
- `assert_accessible(page)`: axe-core (tests/broadcaster/web/vendor/) finds no serious or critical
  violation (labels, contrast, names, ...).
- `screens(page, name)`: `name`-360.png and `name`-1280.png in tests/artifacts/screens/, and the phone
  layout does not scroll sideways.

A later page's test reads like:

    def test_compose(desk: Desk, page: Page) -> None:
        desk.sign_in(page, Role.OFFICER)
        desk.open(page, "/compose")
        ...
        assert_accessible(page)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Response, sync_playwright

from broadcaster.api.app import create_app
from broadcaster.api.auth import SESSION_COOKIE
from broadcaster.api.server import HttpServer
from broadcaster.db import Broadcast, BroadcastStatus, Delivery, DeliveryStatus, Device, DeviceKind, Role
from broadcaster.dispatch.claim import claim_placement
from broadcaster.dispatch.events import apply_delivery_update, finish_broadcast_if_complete
from broadcaster.services import Services
from broadcaster.services.accounts import LoginThrottle, session_principal, sign_in
from broadcaster.services.announcements import announce
from broadcaster.services.zones import add_device, add_village
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import PASSWORD, make_services, make_user

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=LOCAL_TZ)  # a Wednesday morning in the commune
ROOT = Path(__file__).resolve().parents[3]
SCREENS = ROOT / "tests" / "artifacts" / "screens"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
_names = itertools.count(1)


@dataclass
class Desk:
    url: str
    svc: Services
    clock: FakeClock
    facts: dict[str, Any] = field(default_factory=dict)  # what `populate` made, for the tests to look for
    _sessions: dict[str, str] = field(default_factory=dict)  # username -> session secret

    def user(self, role: Role | str, username: str | None = None) -> str:
        """An account of this role (password `PASSWORD`), made once."""
        name = username or f"{Role(role).value}-{next(_names)}"
        return make_user(self.svc, name, role)

    def sign_in(self, page: Page, role: Role | str, username: str | None = None) -> str:
        """A person of `role` signed in in `page`'s browser: a session opened by the accounts service,
        as the sign-in form opens it (the form itself is tested in test_session.py), its cookie set."""
        name = self.user(role, username)
        secret = self._sessions.get(name, "")
        if not secret or session_principal(self.svc, secret) is None:  # argon2 once per person, not per test
            secret = sign_in(self.svc, LoginThrottle(self.svc.clock, 100, 60), name, PASSWORD, "test").secret
            self._sessions[name] = secret
        page.context.add_cookies(
            [{"name": SESSION_COOKIE, "value": secret, "url": self.url, "httpOnly": True, "sameSite": "Strict"}]
        )
        return name

    def open(self, page: Page, path: str) -> Response:
        response = page.goto(self.url + path)
        assert response is not None, path
        return response


def _serve(tmp: Path, clock: FakeClock) -> tuple[HttpServer, Services]:
    svc = make_services(tmp, f"sqlite:///{tmp / 'loa.sqlite3'}", clock)
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
        add_village(s, "thon-2", "Thôn 2")
    server = HttpServer(create_app(svc, svc.audio.store), "127.0.0.1", 0)
    server.start()
    return server, svc


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    clock = FakeClock(T0)
    server, svc = _serve(tmp_path, clock)
    yield Desk(server.url, svc, clock)
    server.stop()
    svc.db.dispose()


@pytest.fixture(scope="session")
def commune(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    clock = FakeClock(T0)
    server, svc = _serve(tmp_path_factory.mktemp("commune"), clock)
    desk = Desk(server.url, svc, clock)
    populate(desk)
    yield desk
    server.stop()
    svc.db.dispose()


# ---------------------------------------------------------------- a morning in the commune


def air(svc: Services, broadcast_id: int, outcomes: dict[str, tuple[DeliveryStatus, str, float | None]]) -> None:
    """What dispatch and the devices do to a placement, without the broker: it is claimed (PLANNED ->
    DISPATCHED, every village of it), each device's delivery is made and moved as its acks would move
    it (`outcomes`: device -> status, reason, start error in ms), and a placement whose deliveries all
    ended is DONE."""
    now = svc.clock.now()
    with svc.db.session() as s:
        claimed = claim_placement(s, broadcast_id, now)
        assert claimed, f"broadcast {broadcast_id} was not planned"
        villages = {b.zone_id: b.id for b in claimed}
        for device_id, (status, reason, error_ms) in outcomes.items():
            device = s.get(Device, device_id)
            assert device is not None and device.village_id in villages, device_id
            delivery = Delivery(
                broadcast_id=villages[device.village_id],
                device_id=device_id,
                status=DeliveryStatus.SENT,
                updated_at=now,
                start_error_ms=error_ms,
            )
            s.add(delivery)
            apply_delivery_update(delivery, status, now, reason)
        s.flush()
        for bid in villages.values():
            finish_broadcast_if_complete(s, bid)


def populate(desk: Desk) -> None:
    """09:00: the devices report in; an announcement for both villages airs at 09:05 and plays on 3 of the
    4 speakers (one download failed); at 09:10 a priority notice starts in Thôn 1 and is on air; a notice
    airs in Thôn 2 at 09:30, where a speaker is offline (a warning); one at 17:00 and one tomorrow."""
    svc, clock = desk.svc, desk.clock
    officer = desk.user(Role.OFFICER, "can-bo")
    with svc.db.session() as s:
        for device_id, kind, village, online, volume, signal in [
            ("thon-1-loa-1", DeviceKind.SPEAKER, "thon-1", True, 80, -61),
            ("thon-1-loa-2", DeviceKind.SPEAKER, "thon-1", True, 75, -70),
            ("thon-1-led", DeviceKind.LED, "thon-1", True, None, -58),
            ("thon-2-loa-1", DeviceKind.SPEAKER, "thon-2", True, 90, -66),
            ("thon-2-loa-2", DeviceKind.SPEAKER, "thon-2", False, 60, -95),
        ]:
            device = add_device(s, device_id, kind, village, name=device_id)
            device.online, device.volume, device.signal, device.firmware = online, volume, signal, "loa-agent 1.4.2"
            device.last_seen = clock.now() - (timedelta(seconds=30) if online else timedelta(minutes=20))
    meeting = announce(
        svc, "Kính thưa bà con, 19 giờ tối nay họp thôn tại nhà văn hóa.", ["all"], "+5m",
        title="Họp thôn tối nay", actor=officer,
    )  # fmt: skip
    clock.advance(timedelta(minutes=5))
    air(
        svc,
        meeting["broadcasts"][0]["id"],
        {
            "thon-1-loa-1": (DeliveryStatus.DONE, "", 1.2),
            "thon-1-loa-2": (DeliveryStatus.DONE, "", -0.8),
            "thon-1-led": (DeliveryStatus.DONE, "", None),
            "thon-2-loa-1": (DeliveryStatus.DONE, "", 2.5),
            "thon-2-loa-2": (DeliveryStatus.FAILED, "download_failed: HTTP 404", None),
        },
    )
    clock.advance(timedelta(minutes=4))  # 09:09
    vaccine = announce(
        svc, "Trạm y tế xã tiêm phòng cho trẻ em từ 8 giờ sáng thứ bảy.", ["thon-1"], "+1m",
        title="Tiêm phòng cho trẻ", priority="priority", actor=officer,
    )  # fmt: skip
    power = announce(
        svc, "Điện lực thông báo cắt điện thôn 2 từ 13 giờ đến 15 giờ.", ["thon-2"], "+21m",
        title="Lịch cắt điện", actor=officer,
    )  # fmt: skip
    fund = announce(svc, "Thông báo thu quỹ phòng chống thiên tai.", ["all"], "17:00", title="Thu quỹ", actor=officer)
    tomorrow = announce(
        svc, "Ngày mai ra quân vệ sinh đường làng.", ["all"], "2026-11-26 07:00", title="Vệ sinh đường làng",
        actor=officer,
    )  # fmt: skip
    clock.set(datetime.fromisoformat(vaccine["broadcasts"][0]["start_at"]) + timedelta(seconds=1))  # on air
    air(
        svc,
        vaccine["broadcasts"][0]["id"],
        {
            "thon-1-loa-1": (DeliveryStatus.PLAYING, "", 0.6),
            "thon-1-loa-2": (DeliveryStatus.PLAYING, "", 1.1),
            "thon-1-led": (DeliveryStatus.PLAYING, "", None),
        },
    )
    with svc.db.session() as s:
        assert s.get(Broadcast, meeting["broadcasts"][0]["id"]).status is BroadcastStatus.DONE  # type: ignore[union-attr]
    desk.facts.update(
        officer=officer,
        meeting=meeting,
        vaccine=vaccine,
        power=power,
        fund=fund,
        tomorrow=tomorrow,
    )


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, locale="vi-VN")
    # generous: pass 1 runs four workers on two cores, beside daemons and simulated fleets; a page that
    # never comes still fails, a slow one under that load does not
    context.set_default_timeout(30_000)
    p = context.new_page()
    problems: list[str] = []

    def heard(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    p.on("console", heard)
    p.on("pageerror", lambda exc: problems.append(str(exc)))
    yield p
    context.close()
    # 4xx answers are part of what the pages do (a wrong password is a 401): the browser reports them
    # as failed loads, which are not script errors
    problems = [m for m in problems if "Failed to load resource" not in m]
    assert not problems, problems


# ---------------------------------------------------------------- checks


def assert_accessible(page: Page) -> None:
    """axe-core on the page as it is: no violation of impact serious or critical. axe is evaluated
    in the page rather than added as a <script>: the desk's Content-Security-Policy refuses inline
    scripts, which is what it is for, and this keeps the policy on while axe looks."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations
                .filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target.join(" ")).join(", ")}`);
        }"""
    )
    assert not found, f"{page.url}:\n" + "\n".join(found)


def screens(page: Page, name: str) -> None:
    """The page at phone and desktop width, saved for people to look at; on the phone nothing may
    stick out sideways (the officer would have to scroll every line)."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    for size in (PHONE, DESKTOP):
        page.set_viewport_size(size)
        page.screenshot(path=SCREENS / f"{name}-{size['width']}.png", full_page=True)
        if size is PHONE:
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{page.url} is {width} px wide on a 360-px phone"
