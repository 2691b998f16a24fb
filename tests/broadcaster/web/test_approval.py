"""From the officer's keyboard to the villages' speakers, in Chromium: compose, see the reading, hear the
preview, fix a reading in the lexicon and hear it change, submit; an approver hears it and approves;
it airs on simulated speakers. An emergency with its second look, recalled while it plays: the speakers
stop. And a rejection, whose reason the officer reads.

The airing rig is shared by the module's end-to-end tests (about ten seconds to build): a real Mosquitto,
the fleet simulator's speakers on the device core in a worker process, and the daemon's parts wired as
daemon.py wires them (the API and the desk on one listener, poking the dispatcher after a change; the
audio listener; DevicePath), as tests/broadcaster/test_recall_end_to_end.py builds them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from broadcaster import protocol
from broadcaster.api.auth import SESSION_COOKIE
from broadcaster.broker.managed import BrokerSettings, ManagedBroker
from broadcaster.db import Announcement, Broadcast, BroadcastStatus, Delivery, DeliveryStatus, Role, User
from broadcaster.services import Services
from broadcaster.services.accounts import LoginThrottle, Principal, sign_in
from broadcaster.services.approvals import approve, compose
from broadcaster.services.programmes import add_programme
from broadcaster.simulation.commune import provision_fleet
from broadcaster.simulation.fleet import Fleet, fleet_devices
from schedules.clock import SystemClock
from tests.broadcaster.conftest import PASSWORD, make_services, make_user
from tests.broadcaster.harness import wait_for
from tests.broadcaster.test_recall_end_to_end import Acks, _daemon, _fleet, _online, _plays
from tests.broadcaster.web.conftest import Desk, assert_accessible, screens

pytestmark = pytest.mark.slow

RIG_ENV = {
    "LOA_SECURITY_REQUIRE_APPROVAL": "true",
    "LOA_SCHEDULE_QUIET_START": "00:00",  # a real clock: the test must not depend on the hour it runs at
    "LOA_SCHEDULE_QUIET_END": "00:00",
    "LOA_SCHEDULE_EMERGENCY_REPEATS": "2",
    "LOA_SCHEDULE_EMERGENCY_GAP_S": "0",
    "LOA_DISPATCH_EMERGENCY_LEAD_S": "1",
}
STOP_WITHIN_S = 3.0  # from the click on "Xác nhận thu hồi" to each speaker's stop (the API's goal is 2 s)
# About twelve seconds read out: long enough to be recalled from the page while it plays.
ALARM = (
    "Khẩn cấp: nước suối Nậm Mu đang lên rất nhanh. Bà con ở ven suối thôn một và thôn hai khẩn trương "
    "di chuyển người, gia súc và tài sản lên chỗ cao, không qua lại ngầm tràn, không vớt củi trên suối."
)


@dataclass
class Rig:
    url: str
    svc: Services
    acks: Acks
    fleet: Fleet
    speakers: list[str]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp: Path = tmp_path_factory.mktemp("rig")
    broker = ManagedBroker(tmp / "broker", BrokerSettings(port=0))
    broker.start()
    svc = make_services(tmp, f"sqlite:///{tmp / 'loa.sqlite3'}", SystemClock(), **RIG_ENV)
    devices = provision_fleet(svc.db, fleet_devices(2, 1))  # thon-1-loa-1, thon-2-loa-1
    speakers = [d.id for d in devices]
    signer = protocol.load_or_create_signer(tmp / "keys" / "daemon-ed25519.pem")
    acks = Acks(broker.url)
    try:
        with _fleet(tmp, "fleet", broker, signer, devices) as fleet, _daemon(svc, broker, signer) as url:
            wait_for(lambda: _online(svc.db, speakers), 20, "the simulated speakers online")
            yield Rig(url, svc, acks, fleet, speakers)
    finally:
        acks.close()
        svc.db.dispose()
        broker.stop()


def _as(page: Page, rig: Rig, username: str, role: Role) -> None:
    """`username` signed in in this browser (whoever was before is signed out of it)."""
    make_user(rig.svc, username, role)
    secret = sign_in(rig.svc, LoginThrottle(rig.svc.clock, 100, 60), username, PASSWORD, "test").secret
    page.context.clear_cookies()
    page.context.add_cookies(
        [{"name": SESSION_COOKIE, "value": secret, "url": rig.url, "httpOnly": True, "sameSite": "Strict"}]
    )


def _heard(page: Page, selector: str, other_than: str = "") -> tuple[str, float]:
    """The audio element's sound (its sha256, or its address), once the browser has loaded it and knows
    it lasts more than nothing; `other_than` waits for a different sound."""
    found = page.wait_for_function(
        """([selector, other]) => {
            const a = document.querySelector(selector);
            const sound = a && (a.dataset.sha256 || a.getAttribute("src"));
            return a && sound !== other && a.readyState >= 1 && a.duration > 0 && [sound, a.duration];
        }""",
        arg=[selector, other_than],
        timeout=30_000,
    ).json_value()
    return str(found[0]), float(found[1])


def _deliveries(svc: Services, announcement_id: int) -> dict[str, DeliveryStatus]:
    with svc.db.session() as s:
        rows = s.execute(
            select(Delivery.device_id, Delivery.status)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .where(Broadcast.announcement_id == announcement_id)
        ).all()
    return {device: status for device, status in rows}


def _item_id(page: Page) -> int:
    return int(page.url.split("/approvals/")[1].split("?")[0])


def test_composed_heard_fixed_submitted_approved_and_aired(rig: Rig, page: Page) -> None:
    _as(page, rig, "can-bo", Role.OFFICER)
    page.goto(rig.url + "/compose")
    page.get_by_label("Nội dung cần đọc").fill("UBND xã mời ông Y Sơn ở buôn Ea Kly lên nhận giấy tờ lúc 14h.")
    reading = page.locator("#reading")
    expect(reading.locator("mark[title='UBND']")).to_have_text("ủy ban nhân dân")
    expect(reading.locator("mark[title='14h']")).to_have_text("mười bốn giờ")
    expect(reading.locator("mark[title='Ea Kly']")).to_have_count(0)

    page.get_by_role("button", name="Nghe thử").click()
    first, first_s = _heard(page, "#preview-audio")
    assert first_s > 1.0

    page.get_by_label("Chữ viết").fill("Ea Kly")
    page.get_by_label("Đọc là").fill("ê a cờ li")
    page.get_by_role("button", name="Thêm vào từ điển").click()
    expect(page.locator("#fix").get_by_role("status")).to_have_text("Đã thêm: «Ea Kly» đọc là «ê a cờ li».")
    expect(reading.locator("mark[title='Ea Kly']")).to_have_text("ê a cờ li")
    second, second_s = _heard(page, "#preview-audio", other_than=first)  # rendered again, with the new reading
    assert second != first and second_s > 1.0

    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.locator("#item-state")).to_contain_text("Chờ duyệt")
    item_id = _item_id(page)
    assert _deliveries(rig.svc, item_id) == {}  # nothing airs before an approver says so

    _as(page, rig, "chu-tich", Role.APPROVER)
    page.goto(rig.url + "/approvals")
    card = page.locator(f"#item-{item_id}")
    expect(card).to_contain_text("UBND xã mời ông Y Sơn")
    _heard(page, f"#item-{item_id} audio")  # the approver hears what will air
    assert_accessible(page)
    card.get_by_role("button", name="Duyệt và lên lịch").click()
    expect(page.get_by_role("status")).to_have_text("Đã duyệt và lên lịch phát.")

    wait_for(
        lambda: _deliveries(rig.svc, item_id) == dict.fromkeys(rig.speakers, DeliveryStatus.DONE),
        30,
        "both villages' speakers played it",
    )
    plays = _plays(rig.svc.db, item_id)
    ours = {c.id for c in plays.values()}
    played = sorted((p.device_id, p.command_id) for p in rig.fleet.report().plays if p.command_id in ours)
    assert played == sorted((device, plays[device].id) for device in rig.speakers)

    _as(page, rig, "can-bo", Role.OFFICER)
    page.goto(rig.url + "/approvals")
    mine = page.locator("#mine-h + p + ul > li").filter(has_text="UBND xã mời ông Y Sơn")
    expect(mine.locator("[data-state]")).to_have_text("Đã phát", timeout=10_000)
    expect(mine).to_contain_text("chu-tich đã duyệt lúc")
    expect(mine).to_contain_text("2/2 loa đã phát xong")


def test_an_emergency_confirmed_then_recalled_while_playing_stops_the_speakers(rig: Rig, page: Page) -> None:
    _as(page, rig, "chu-tich", Role.APPROVER)
    page.goto(rig.url + "/approvals")
    page.get_by_role("link", name="Gửi tin khẩn cấp").click()
    page.get_by_label("Tiêu đề (hiện trên bảng LED; để trống thì lấy dòng đầu)").fill("Lũ quét suối Nậm Mu")
    page.get_by_label("Nội dung cần đọc").fill(ALARM)
    page.get_by_role("button", name="Tiếp tục: xác nhận tin khẩn cấp").click()
    expect(page.locator("#emergency-villages li")).to_have_text(["Thôn 1", "Thôn 2"])
    expect(page.get_by_text("sẽ phát 2 lần")).to_be_visible()
    page.get_by_label("Lý do phát khẩn cấp (ai yêu cầu, vì sao)").fill("Trạm thủy văn báo lũ")
    page.get_by_role("button", name="Xác nhận: phát khẩn cấp 2 lần").click()
    expect(page.get_by_role("status")).to_have_text("Đã gửi tin khẩn cấp.")
    item_id = _item_id(page)

    def playing() -> bool:
        plays = _plays(rig.svc.db, item_id)
        return all(d in plays and "playing" in rig.acks.states(plays[d].id) for d in rig.speakers)

    wait_for(playing, 20, "the alarm on air in both villages")
    plays = _plays(rig.svc.db, item_id)
    page.reload()
    expect(page.locator("#item-state [data-state]")).to_have_text("Đang phát")
    page.get_by_role("link", name="Thu hồi").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thu hồi thông báo")
    page.get_by_role("button", name="Xác nhận thu hồi").click()
    expect(page.get_by_role("alert")).to_contain_text("Cần lý do thu hồi")  # nothing recalled yet
    assert not any(rig.acks.stopped_at(plays[d].id) for d in rig.speakers)
    assert_accessible(page)
    screens(page, "recall-confirm")

    page.get_by_label("Lý do thu hồi (ví dụ: báo nhầm, sai nội dung)").fill("Báo nhầm: nước đã rút")
    clicked = time.time()
    page.get_by_role("button", name="Xác nhận thu hồi").click()
    wait_for(lambda: all(rig.acks.stopped_at(plays[d].id) for d in rig.speakers), 10, "both speakers stopped")
    stopped = {d: (rig.acks.stopped_at(plays[d].id) or 0) - clicked for d in rig.speakers}
    assert all(0 < s < STOP_WITHIN_S for s in stopped.values()), stopped
    expect(page.get_by_role("status")).to_have_text("Đã thu hồi. Loa đang phát sẽ dừng ngay.")
    expect(page.locator("#item-state [data-state]")).to_have_text("Đã thu hồi")
    expect(page.locator("#recalled")).to_contain_text("chu-tich đã thu hồi lúc")
    expect(page.locator("#recalled")).to_contain_text("«Báo nhầm: nước đã rút»")
    assert_accessible(page)
    with rig.svc.db.session() as s:  # the repeat never airs
        rows = s.scalars(select(Broadcast).where(Broadcast.announcement_id == item_id)).all()
        assert {(b.status, b.reason) for b in rows} == {(BroadcastStatus.CANCELLED, "recalled")}
        assert len(rows) == 4


def test_a_rejection_needs_a_reason_and_the_officer_reads_it(
    desk: Desk, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk.svc.config.security, "require_approval", True)
    officer = desk.user(Role.OFFICER, "can-bo")
    item = compose(desk.svc, "Họp tổ dân phố lúc 19 giờ tại nhà văn hóa.", ["thon-1"], "17:00", actor=officer)
    desk.sign_in(page, Role.APPROVER, "pho-chu-tich")
    desk.open(page, "/approvals")
    card = page.locator(f"#item-{item['id']}")
    expect(card.locator("[data-state]")).to_have_text("Chờ duyệt")
    assert_accessible(page)
    screens(page, "approvals")

    card.get_by_role("button", name="Trả lại").click()
    expect(page.get_by_role("alert")).to_contain_text("Cần lý do trả lại (reason), để cán bộ biết phải sửa gì.")
    with desk.svc.db.session() as s:
        still = s.get(Announcement, item["id"])
        assert still is not None and still.state.value == "awaiting_approval" and not still.decided_by
    page.get_by_label("Lý do trả lại (cán bộ cần sửa gì)").fill("Ghi rõ tổ dân phố số mấy")
    page.get_by_role("button", name="Trả lại").click()
    expect(page.get_by_role("status")).to_have_text("Đã trả lại kèm lý do.")
    expect(page.locator("#item-state [data-state]")).to_have_text("Bị trả lại")

    desk.sign_in(page, Role.OFFICER, "can-bo")
    desk.open(page, "/approvals")
    mine = page.locator("#mine-h + p + ul > li").first
    expect(mine.locator("[data-state]")).to_have_text("Bị trả lại")
    expect(mine).to_contain_text("pho-chu-tich trả lại lúc 09:00 25/11/2026: «Ghi rõ tổ dân phố số mấy»")
    assert_accessible(page)
    screens(page, "approvals-officer")
    mine.get_by_role("link", name="Họp tổ dân phố lúc 19 giờ tại nhà văn hóa.").click()
    expect(page.get_by_role("link", name="Sửa", exact=True)).to_be_visible()  # to fix it and send it again


def test_nobody_approves_their_own_item(desk: Desk, page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(desk.svc.config.security, "require_approval", True)
    admin = desk.sign_in(page, Role.ADMIN, "chu-tich")  # an admin composes and approves, but not both at once
    item = compose(desk.svc, "Lịch tiêm phòng dại cho chó mèo.", ["all"], "17:00", actor=admin)
    desk.open(page, f"/approvals/{item['id']}")
    expect(page.get_by_text("Tin của bạn: cần một người duyệt khác.")).to_be_visible()
    expect(page.get_by_role("button", name="Duyệt và lên lịch")).to_have_count(0)


def _principal(desk: Desk, role: Role, username: str) -> Principal:
    desk.user(role, username)
    with desk.svc.db.session() as s:
        u = s.scalars(select(User).where(User.username == username)).one()
        return Principal(u.id, u.username, u.display_name, u.role, "test")


def test_a_waiting_programme_is_approved_on_the_desk_and_an_airing_offers_its_recall(
    desk: Desk, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk.svc.config.security, "require_approval", True)
    officer, approver = _principal(desk, Role.OFFICER, "can-bo"), _principal(desk, Role.APPROVER, "chu-tich")
    relay = add_programme(
        desk.svc, "relay", "Thời sự VOV1", ["thon-1"], "18:00", stream_url="http://radio.example/vov1",
        duration_s=600, actor=officer.username, by=officer,
    )  # fmt: skip
    desk.sign_in(page, Role.APPROVER, "chu-tich")
    desk.open(page, "/approvals")
    card = page.locator(f"#programme-{relay['id']}")
    expect(card).to_contain_text("Lịch: 18:00")
    card.get_by_role("button", name="Duyệt và lên lịch").click()
    expect(page.get_by_role("status")).to_have_text("Đã duyệt chương trình và lên lịch phát.")
    with desk.svc.db.session() as s:
        assert s.scalars(select(Broadcast.programme_id)).all() == [relay["id"]] * 2  # today's 18:00, tomorrow's

    item = compose(desk.svc, "Họp thôn lúc 19 giờ.", ["thon-1"], "17:00", actor=officer.username, by=officer)
    airing = approve(desk.svc, item["id"], actor=approver.username, by=approver)["broadcasts"][0]["id"]
    desk.open(page, f"/broadcasts/{airing}")
    page.get_by_role("link", name="Thu hồi").click()
    expect(page).to_have_url(f"{desk.url}/approvals/{item['id']}/recall")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thu hồi thông báo")
    desk.sign_in(page, Role.VIEWER, "xem")  # a viewer reads the airing, and recalls nothing
    desk.open(page, f"/broadcasts/{airing}")
    expect(page.get_by_role("link", name="Thu hồi")).to_have_count(0)
