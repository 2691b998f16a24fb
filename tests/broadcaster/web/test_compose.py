"""The compose page in Chromium, on a commune whose clock is stopped at 09:00 (the `desk` fixture) and
which asks for approval: a recording from the phone heard and placed, the planner's placement with what
it moves and what it refuses, drafts, programmes, an emergency's second look, and bad input said in
Vietnamese with nothing stored. The whole way to the speakers is test_approval.py's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from broadcaster.db import Announcement, AuditEntry, Broadcast, Programme, Role
from broadcaster.services.announcements import announce
from tests.broadcaster.web.conftest import Desk, assert_accessible, screens


@pytest.fixture
def approving(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Desk:
    """The commune asks for an approver's look before anything airs (the default of a real one)."""
    monkeypatch.setattr(desk.svc.config.security, "require_approval", True)
    return desk


def rows(desk: Desk) -> list[int]:
    """What a refused request must not have written: announcements, broadcasts, programmes, audio files."""
    with desk.svc.db.session() as s:
        counts = [s.scalar(select(func.count()).select_from(m)) or 0 for m in (Announcement, Broadcast, Programme)]
    return [*counts, len(list(desk.svc.audio.store.root.glob("*.mp3")))]


def _recording(tmp_path: Path) -> Path:
    """What an officer records on a phone: two seconds of a voice-like tone, as m4a."""
    path = tmp_path / "loi-keu-goi.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
         "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_a_recording_from_the_phone_is_heard_placed_and_submitted(approving: Desk, page: Page, tmp_path: Path) -> None:
    desk = approving
    desk.sign_in(page, Role.OFFICER, "can-bo")
    desk.open(page, "/compose")
    expect(page.get_by_role("heading", level=1)).to_have_text("Soạn tin")
    assert_accessible(page)
    screens(page, "compose")

    page.get_by_label("Bản ghi âm", exact=True).check()
    expect(page.get_by_label("Nội dung cần đọc")).to_be_hidden()  # a recording has no text to read
    page.get_by_label("Tiêu đề (hiện trên bảng LED; để trống thì lấy dòng đầu)").fill("Lời kêu gọi phòng dịch")
    page.get_by_label("Bản ghi âm (chọn tệp hoặc ghi bằng điện thoại)").set_input_files(_recording(tmp_path))
    heard = page.wait_for_function(
        "() => { const a = document.getElementById('recording-preview'); return a.duration > 0 && a.duration }"
    ).json_value()
    assert 1.5 < heard < 2.5  # the officer hears it on the phone, before anything is sent

    page.get_by_label(desk.svc.config.general.commune, exact=True).uncheck()
    page.get_by_label("Thôn 1", exact=True).check()
    page.get_by_label("Vào lúc").check()
    page.get_by_label("hoặc gõ thời điểm").fill("17:00")
    before = rows(desk)
    page.get_by_role("button", name="Xem giờ phát dự kiến").click()
    plan = page.locator("#plan")
    expect(plan.locator(".new-item")).to_contain_text("17:00 25/11/2026")
    expect(plan.locator(".new-item .where")).to_have_text("Thôn 1")
    expect(plan.locator(".new-item .why")).not_to_be_empty()  # the planner's explanation
    expect(plan).to_contain_text("Không trùng với tin nào khác.")
    assert rows(desk)[:3] == before[:3]  # the plan stored nothing

    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.locator("#item-state")).to_contain_text("Chờ duyệt")
    expect(page.get_by_role("status")).to_have_text("Đã gửi duyệt. Người duyệt sẽ nghe và quyết định.")
    item_id = int(page.url.split("/approvals/")[1].split("?")[0])
    duration = page.wait_for_function(
        "() => { const a = document.getElementById('item-audio'); return a && a.duration > 0 && a.duration }"
    ).json_value()
    assert duration > 1.5
    with desk.svc.db.session() as s:
        item = s.get(Announcement, item_id)
        assert item is not None and item.engine == "recording" and item.state.value == "awaiting_approval"
        assert item.title == "Lời kêu gọi phòng dịch" and item.created_by == "can-bo"
    assert_accessible(page)
    screens(page, "approval-item")


def test_the_plan_shows_what_the_item_would_move_and_what_the_planner_refuses(approving: Desk, page: Page) -> None:
    desk = approving
    announce(desk.svc, "Thông báo thu quỹ phòng chống thiên tai.", ["all"], "17:00", title="Thu quỹ", actor="can-bo")
    desk.sign_in(page, Role.OFFICER, "can-bo")
    desk.open(page, "/compose")
    page.get_by_label("Nội dung cần đọc").fill("Khẩn trương gia cố nhà cửa trước khi bão vào.")
    page.get_by_label("Vào lúc").check()
    page.get_by_label("hoặc gõ thời điểm").fill("17:00")
    page.get_by_label("Ưu tiên", exact=True).check()
    before = rows(desk)
    page.get_by_role("button", name="Xem giờ phát dự kiến").click()
    plan = page.locator("#plan")
    expect(plan.locator(".new-item")).to_contain_text("17:00 25/11/2026")
    expect(plan.locator(".warning")).to_contain_text("Các tin khác sẽ bị dời:")
    expect(plan.locator(".warning")).to_contain_text("«Thu quỹ»")  # a priority item goes first
    expect(plan.locator(".timeline-around")).to_contain_text("Thu quỹ")
    assert_accessible(page)
    screens(page, "compose-plan")

    page.get_by_label("Thường", exact=True).check()
    page.get_by_label("hoặc gõ thời điểm").fill("23:00")  # quiet hours
    page.get_by_role("button", name="Xem giờ phát dự kiến").click()
    expect(plan.get_by_role("alert")).to_contain_text("Chưa xếp được vào lịch phát:")
    expect(plan.get_by_role("alert")).to_contain_text("yên tĩnh")
    page.get_by_label("hoặc gõ thời điểm").fill("ngày mai 7h")  # as officers type it (schedules/when.py)
    page.get_by_role("button", name="Xem giờ phát dự kiến").click()
    expect(plan.locator(".new-item")).to_contain_text("07:00 26/11/2026")
    assert rows(desk)[:3] == before[:3]


def test_bad_input_is_said_in_vietnamese_and_nothing_is_stored(approving: Desk, page: Page) -> None:
    desk = approving
    desk.sign_in(page, Role.OFFICER, "can-bo")
    desk.open(page, "/compose")
    before = rows(desk)

    page.get_by_label("Tiêu đề (hiện trên bảng LED; để trống thì lấy dòng đầu)").fill("Họp thôn")
    with page.expect_response(lambda r: r.url.endswith("/compose") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Gửi duyệt").click()
    assert answer.value.status == 400
    expect(page.get_by_role("alert")).to_contain_text("Nội dung thông báo đang trống.")
    expect(page.get_by_label("Tiêu đề (hiện trên bảng LED; để trống thì lấy dòng đầu)")).to_have_value("Họp thôn")

    page.get_by_label("Nội dung cần đọc").fill("Họp thôn lúc 8 giờ.")
    page.get_by_label("Vào lúc").check()
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.get_by_role("alert")).to_contain_text("Hãy chọn ngày giờ phát, hoặc gõ thời điểm")

    page.get_by_label("Vào lúc").check()
    page.get_by_label("hoặc gõ thời điểm").fill("8:00")  # this morning, already gone
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.get_by_role("alert")).to_contain_text("đã qua")

    page.get_by_label("Vào lúc").check()
    page.get_by_label("hoặc gõ thời điểm").fill("tám giờ kém")
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.get_by_role("alert")).to_contain_text("Không hiểu thời điểm 'tám giờ kém'")

    page.get_by_label("Tiếp sóng đài").check()
    page.get_by_label("Địa chỉ luồng phát của đài (http:// hoặc https://)").fill("ftp://dai/vov1")
    page.get_by_label("Thời lượng mỗi lần tiếp sóng (phút)").fill("ba mươi")
    page.get_by_label("Lặp lại theo lịch").check()
    page.get_by_label("Lịch lặp lại").fill("06:00")
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.get_by_role("alert")).to_contain_text("Thời lượng «ba mươi» không đúng")
    page.get_by_label("Thời lượng mỗi lần tiếp sóng (phút)").fill("30")
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.get_by_role("alert")).to_contain_text("ftp://dai/vov1")

    page.get_by_label("Bản ghi âm", exact=True).check()
    page.get_by_label("Ngay khi được duyệt").check()
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.get_by_role("alert")).to_contain_text("Chưa chọn bản ghi âm")
    assert_accessible(page)
    assert rows(desk) == before


def test_a_draft_is_saved_then_changed_and_submitted(approving: Desk, page: Page) -> None:
    desk = approving
    desk.sign_in(page, Role.OFFICER, "can-bo")
    desk.open(page, "/compose")
    page.get_by_label("Nội dung cần đọc").fill("Họp thôn tối nay lúc 19 giờ.")
    page.get_by_role("button", name="Lưu nháp").click()
    expect(page.locator("#item-state")).to_contain_text("Bản nháp")
    expect(page.get_by_role("status")).to_have_text("Đã lưu nháp. Chưa gửi duyệt.")

    page.get_by_role("link", name="Sửa", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sửa thông báo số")
    text = page.get_by_label("Nội dung cần đọc")
    expect(text).to_have_value("Họp thôn tối nay lúc 19 giờ.")
    text.fill("Họp thôn tối nay lúc 19 giờ 30 tại nhà văn hóa.")
    expect(page.locator("#reading mark[title='30']")).to_have_text("ba mươi")
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.locator("#item-state")).to_contain_text("Chờ duyệt")
    expect(page.locator(".said")).to_have_text("Họp thôn tối nay lúc 19 giờ 30 tại nhà văn hóa.")
    with desk.svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Announcement)) == 1  # the draft itself, sent on


def test_a_relay_is_a_programme_that_waits_for_approval(approving: Desk, page: Page) -> None:
    desk = approving
    desk.sign_in(page, Role.OFFICER, "can-bo")
    desk.open(page, "/compose")
    page.get_by_label("Tiếp sóng đài").check()
    expect(page.get_by_label("Ngay khi được duyệt")).to_be_hidden()  # a relay is on a schedule
    page.get_by_label("Tiêu đề (hiện trên bảng LED; để trống thì lấy dòng đầu)").fill("Thời sự VOV1")
    page.get_by_label("Địa chỉ luồng phát của đài (http:// hoặc https://)").fill("http://127.0.0.1:9/vov1")
    page.get_by_label("Thời lượng mỗi lần tiếp sóng (phút)").fill("30")
    page.get_by_label("Lịch lặp lại").fill("06:00")
    page.get_by_role("button", name="Xem giờ phát dự kiến").click()
    expect(page.locator("#plan .new-item").first).to_contain_text("06:00 26/11/2026")
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.get_by_role("status")).to_have_text(
        "Đã gửi duyệt chương trình. Chương trình chỉ phát khi người duyệt đồng ý."
    )
    with desk.svc.db.session() as s:
        relay = s.scalars(select(Programme)).one()
        assert (relay.kind, relay.stream_url, relay.duration_ms) == ("relay", "http://127.0.0.1:9/vov1", 1_800_000)
        assert relay.state.value == "awaiting_approval" and s.scalars(select(Broadcast)).all() == []
    expect(page.locator(f"#programme-{relay.id} [data-state]")).to_have_text("Chờ duyệt")  # on /approvals


def test_an_emergency_names_its_villages_and_repeats_and_needs_a_reason(desk: Desk, page: Page) -> None:
    desk.sign_in(page, Role.APPROVER, "chu-tich")  # an emergency role, who composes nothing else
    desk.open(page, "/compose")
    expect(page.get_by_text("Vai trò của bạn chỉ gửi tin khẩn cấp từ trang này")).to_be_visible()
    expect(page.get_by_label("Khẩn cấp", exact=True)).to_be_checked()
    page.get_by_label("Nội dung cần đọc").fill("Lũ quét ở suối Nậm Mu, bà con tránh xa bờ suối.")
    page.get_by_role("button", name="Tiếp tục: xác nhận tin khẩn cấp").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Xác nhận tin khẩn cấp")
    expect(page.locator("#emergency-villages li")).to_have_text(["Thôn 1", "Thôn 2"])
    expect(page.get_by_text("sẽ phát 3 lần")).to_be_visible()
    assert_accessible(page)
    screens(page, "emergency-confirm")

    before = rows(desk)
    page.get_by_role("button", name="Xác nhận: phát khẩn cấp 3 lần").click()
    expect(page.get_by_role("alert")).to_contain_text("Tin khẩn cấp cần lý do")
    assert rows(desk)[:3] == before[:3]
    page.get_by_label("Lý do phát khẩn cấp (ai yêu cầu, vì sao)").fill("Trạm thủy văn báo lũ")
    page.get_by_role("button", name="Xác nhận: phát khẩn cấp 3 lần").click()  # the same code: it was not spent
    expect(page.get_by_role("status")).to_have_text("Đã gửi tin khẩn cấp.")
    expect(page.locator("#item-state")).to_contain_text("Đã lên lịch")
    with desk.svc.db.session() as s:
        item = s.scalars(select(Announcement)).one()
        assert (item.priority, item.approved_via, item.created_by) == ("emergency", "emergency", "chu-tich")
        assert s.scalar(select(func.count()).select_from(Broadcast)) == 6  # three repeats, two villages
        logged = list(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("emergency.%"))))
        assert logged == ["emergency.asked", "emergency.confirmed"]


def test_the_voice_chosen_is_heard_before_saving_and_is_what_airs(approving: Desk, page: Page) -> None:
    """#13 item 3: the officer picks a voice and a rate; "Nghe thử" plays that voice, and the item saved
    is that very file (its sha256), recorded with the choice; editing the draft shows the choice again."""
    desk = approving
    desk.sign_in(page, Role.OFFICER, "can-bo")
    desk.open(page, "/compose")
    page.get_by_label("Nội dung cần đọc").fill("Chiều nay 15 giờ, thôn 2 họp bàn việc làm đường.")
    page.get_by_label("Giọng", exact=True).select_option(label="Giọng máy, miền Nam · eSpeak NG (ngoại tuyến)")
    page.get_by_label("Tốc độ đọc").select_option(label="Hơi chậm (0,9)")
    assert_accessible(page)
    page.get_by_role("button", name="Nghe thử").click()
    audio = page.locator("#preview-audio")
    expect(audio).to_have_attribute("data-sha256", re.compile(r"^[0-9a-f]{64}$"), timeout=30_000)
    heard = audio.get_attribute("data-sha256")

    page.get_by_role("button", name="Lưu nháp").click()
    expect(page.locator("#item-state")).to_contain_text("Bản nháp")
    page.get_by_role("link", name="Sửa", exact=True).click()
    expect(page.get_by_label("Giọng", exact=True)).to_have_value("espeak|vi-vn-x-south")
    expect(page.get_by_label("Tốc độ đọc")).to_have_value("0.9")
    page.get_by_role("button", name="Gửi duyệt").click()
    expect(page.locator("#item-state")).to_contain_text("Chờ duyệt")
    expect(page.locator("#item-voice")).to_have_text("Giọng máy, miền Nam · eSpeak NG (ngoại tuyến), ×0,9")
    with desk.svc.db.session() as s:
        item = s.scalars(select(Announcement)).one()
        assert (item.voice_engine, item.voice, item.speaking_rate) == ("espeak", "vi-vn-x-south", 0.9)
        assert item.audio_sha256 == heard  # what the officer heard is what airs
