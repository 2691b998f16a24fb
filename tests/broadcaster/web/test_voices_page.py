"""The admin's voices page in Chromium: the pinned voices, an install from a local stand-in for the Piper
voices repository followed while it runs, a refusal said in Vietnamese, and the page for admins only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from broadcaster.db import AuditEntry, Role
from broadcaster.services import voices
from broadcaster.services.voices import voice_installed
from tests.broadcaster.services.fake_voices import NAME, FakeVoices, pins_for, tiny_voice_files
from tests.broadcaster.web.conftest import Desk, assert_accessible


@pytest.fixture
def fake(tmp_path: Path, desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVoices]:
    files = tiny_voice_files(tmp_path / "tiny")
    monkeypatch.setattr(voices, "load_pins", lambda source=None: pins_for(files))  # the repository's pins
    with FakeVoices(files) as server:
        desk.svc.config.speech.voices_base_url = server.url
        desk.svc.config.speech.piper_voice = NAME
        yield server


def test_an_admin_installs_a_voice_and_sees_why_one_failed(desk: Desk, page: Page, fake: FakeVoices) -> None:
    desk.sign_in(page, Role.ADMIN, "chu-tich")
    desk.open(page, "/voices")
    expect(page.get_by_role("heading", level=1)).to_have_text("Giọng đọc tự nhiên (Piper)")
    expect(page.get_by_role("link", name="Giọng đọc")).to_be_visible()  # in the menu, for an admin
    voice = page.locator(f"#voice-{NAME}")
    expect(voice).to_contain_text("Chưa cài")
    expect(voice).to_contain_text("giọng mặc định")
    assert_accessible(page)

    fake.mode, fake.only = "corrupt", ".onnx"
    voice.get_by_role("button", name=f"Cài đặt giọng {NAME}").click()
    expect(page.get_by_role("alert")).to_contain_text("có mã SHA-256 khác với mã đã ghim", timeout=10_000)
    assert not voice_installed(desk.svc.config, NAME)

    fake.mode = "ok"
    page.locator(f"#voice-{NAME}").get_by_role("button", name=f"Cài đặt giọng {NAME}").click()
    expect(page.locator(f"#voice-{NAME}")).to_contain_text("Đã cài giọng", timeout=10_000)
    expect(page.locator(f"#voice-{NAME}")).to_contain_text("16000 Hz")
    assert voice_installed(desk.svc.config, NAME)
    with desk.svc.db.session() as s:
        actions = [(e.actor, e.action) for e in s.scalars(select(AuditEntry).where(AuditEntry.action.like("voice.%")))]
    assert actions == [("chu-tich", "voice.install_failed"), ("chu-tich", "voice.install")]
    page.reload()
    expect(page.locator(f"#voice-{NAME}")).to_contain_text("Đã cài")
    assert_accessible(page)


def test_the_voices_page_is_for_admins_only(desk: Desk, page: Page, fake: FakeVoices) -> None:
    desk.sign_in(page, Role.OFFICER, "can-bo")
    response = desk.open(page, "/voices")
    assert response.status == 403
    expect(page.get_by_role("link", name="Giọng đọc")).to_have_count(0)
    assert fake.requests == []
