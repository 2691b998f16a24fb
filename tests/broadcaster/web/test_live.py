"""Going live from the page, measured: the officer's microphone (Chromium's fake device playing a file)
to two simulated speakers, within the issue's goal of three seconds from mouth to speaker.

Everything on the way is real: Debian's Chromium (getUserMedia, MediaRecorder, fetch) running the page
and its script, the daemon's parts wired as daemon.py wires them (the API and the desk on one listener,
the audio listener, the dispatcher, the managed Mosquitto), and two reference speaker agent processes
on the device core that open the stream from their signed `play` and decode it (onset_speaker.py).

The fake microphone plays `voice.wav` from the moment the page opens it: TONE_AT_S of silence, then a
loud tone. The page notes when getUserMedia gave it the microphone (`loaLive.micOpenedAt`, epoch ms)
and when its level meter first saw a loud sample (`loaLive.loudAt`); the tone was captured at the
earlier of `micOpenedAt + TONE_AT_S` and `loudAt`. A speaker notes when its decoder first gives out a
loud sample. Both clocks are this machine's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect
from sqlalchemy import select

from broadcaster import protocol
from broadcaster.api.app import create_app, create_audio_app
from broadcaster.api.auth import SESSION_COOKIE
from broadcaster.api.server import HttpServer
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Announcement, Broadcast, Delivery, DeliveryStatus, Role
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.runtime.path import DevicePath
from broadcaster.services import Services
from broadcaster.services.accounts import LoginThrottle, sign_in
from broadcaster.services.live import LiveDesk
from broadcaster.services.zones import ensure_commune
from broadcaster.simulation.commune import provision
from schedules.clock import SystemClock
from tests.broadcaster.conftest import PASSWORD, make_services, make_user
from tests.broadcaster.harness import ROOT, wait_for
from tests.broadcaster.web.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, assert_accessible, screens

pytestmark = pytest.mark.slow

GOAL_S = 3.0  # issue 12, item 4: from mouth to simulated speaker
TONE_AT_S = 5.0  # long enough for the speakers to have opened the stream (`[live] lead_s` is 1 s)
SPEAKERS = ("thon-1-loa", "thon-2-loa")


@dataclass
class Commune:
    url: str
    svc: Services
    desk: LiveDesk
    onsets: dict[str, Path]


def _voice(path: Path) -> Path:
    """What the officer says: silence, then a loud 1 kHz tone, then silence (16-bit PCM, as Chromium's
    fake capture reads it)."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"anullsrc=r=48000:cl=mono:d={TONE_AT_S}",
         "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=3",
         "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono:d=10",
         "-filter_complex", "[1]volume=6[tone];[0][tone][2]concat=n=3:v=0:a=1",
         "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture
def commune(tmp_path: Path, broker: ManagedBroker) -> Iterator[Commune]:
    svc = make_services(
        tmp_path, f"sqlite:///{tmp_path / 'loa.sqlite3'}", SystemClock(),
        LOA_SCHEDULE_QUIET_START="00:00", LOA_SCHEDULE_QUIET_END="00:00",
    )  # fmt: skip
    signer = protocol.load_or_create_signer(tmp_path / "keys" / "daemon-ed25519.pem")
    with svc.db.session() as s:
        ensure_commune(s, svc.config.general.commune)
    configs = provision(
        svc.db, tmp_path / "fleet", 2, broker.url, {signer.kid: signer.public_b64}, protocol.DEFAULT_PREFIX, "null"
    )
    onsets = {device: tmp_path / f"{device}-onsets.jsonl" for device in SPEAKERS}
    logs = [(tmp_path / f"{device}.log").open("wb") for device in SPEAKERS]
    runner = [sys.executable, "-m", "tests.broadcaster.web.onset_speaker"]
    agents = [
        subprocess.Popen(
            [*runner, "--config", str(cfg), "--out", str(onsets[cfg.stem])],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for cfg, log in zip([c for c in configs if c.stem in SPEAKERS], logs, strict=True)
    ]
    desk = LiveDesk(svc)
    paths: list[DevicePath] = []
    api = HttpServer(
        create_app(svc, svc.audio.store, on_change=lambda: paths[0].dispatcher.poke(), live_desk=desk),
        "127.0.0.1",
        0,
    )
    audio = HttpServer(create_audio_app(svc.audio.store, desk), "127.0.0.1", 0)
    desk.publish_at(audio.url)
    paths.append(
        DevicePath.build(
            svc.db, svc.clock, svc.config.dispatch, signer, BrokerAddress.parse(broker.url),
            lambda sha, ext: f"{audio.url}/audio/{sha}.{ext}", live_url=desk.stream_url,
        )
    )  # fmt: skip
    audio.start()
    api.start()
    paths[0].start()
    desk.start()
    try:
        yield Commune(api.url, svc, desk, onsets)
    finally:
        desk.stop()
        for agent in agents:
            agent.terminate()
        for agent in agents:
            agent.wait(timeout=10)
        for log in logs:
            log.close()
        paths[0].stop()
        api.stop()
        audio.stop()
        svc.db.dispose()


@pytest.fixture
def microphone_page(playwright: Playwright, tmp_path: Path) -> Iterator[Page]:
    """A Chromium whose microphone is `voice.wav` (and whose permission prompt says yes by itself)."""
    browser: Browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={_voice(tmp_path / 'voice.wav')}",
        ],
    )
    context = browser.new_context(viewport={"width": DESKTOP["width"], "height": DESKTOP["height"]}, locale="vi-VN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []

    def heard(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", heard)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    yield page
    context.close()
    browser.close()
    assert not [m for m in problems if "Failed to load resource" not in m], problems


def _onsets(commune: Commune) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for device, path in commune.onsets.items():
        lines = path.read_text().splitlines() if path.exists() else []
        out[device] = [entry for line in lines if line.strip() and "onset_at" in (entry := json.loads(line))]
    return out


def _speaker_deliveries(svc: Services, announcement_id: int) -> set[tuple[str, DeliveryStatus]]:
    with svc.db.session() as s:
        return {
            (device, status)
            for device, status in s.execute(
                select(Delivery.device_id, Delivery.status)
                .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
                .where(Broadcast.announcement_id == announcement_id)
            )
        }


def test_the_officers_voice_reaches_the_speakers_within_three_seconds(commune: Commune, microphone_page: Page) -> None:
    page = microphone_page
    officer = make_user(commune.svc, "can-bo", Role.OFFICER)
    done = sign_in(commune.svc, LoginThrottle(commune.svc.clock, 100, 60), officer, PASSWORD, "test")
    page.context.add_cookies(
        [{"name": SESSION_COOKIE, "value": done.secret, "url": commune.url, "httpOnly": True, "sameSite": "Strict"}]
    )
    page.goto(commune.url + "/live")
    expect(page.get_by_role("heading", level=1)).to_have_text("Phát trực tiếp")
    expect(page.get_by_label(commune.svc.config.general.commune)).to_be_checked()  # the whole commune by default
    expect(page.get_by_label("Thường")).to_be_checked()
    assert_accessible(page)
    screens(page, "live")

    page.get_by_role("button", name="Bắt đầu phát trực tiếp").click()
    banner = page.get_by_role("heading", name="ĐANG PHÁT TRỰC TIẾP")
    expect(banner).to_be_visible()
    expect(page.locator("#live-villages")).to_have_text("Đang phát tới: Thôn 1, Thôn 2")
    expect(page.get_by_role("button", name="Kết thúc phát")).to_be_enabled()
    expect(page.locator("#live-listeners")).to_have_text("2 loa đang nghe", timeout=10_000)

    heard = wait_for(
        lambda: (got := _onsets(commune)) and all(got[d] and got[d][0]["onset_at"] for d in SPEAKERS) and got,
        5.0 + TONE_AT_S + GOAL_S + 2.0,
        "both speakers hearing the tone",
    )
    times = page.evaluate("window.loaLive")
    by_clock = times["micOpenedAt"] / 1000 + TONE_AT_S
    by_meter = times["loudAt"] / 1000 if times["loudAt"] else by_clock
    assert abs(by_meter - by_clock) < 0.5, times  # the fake microphone starts the file when it opens
    spoken = min(by_clock, by_meter)
    latency = {d: heard[d][0]["onset_at"] - spoken for d in SPEAKERS}
    print(
        f"\nmouth to speaker: {', '.join(f'{d} {s:.2f} s' for d, s in latency.items())} "
        f"(goal {GOAL_S:.0f} s; tone captured {by_clock - times['micOpenedAt'] / 1000:.3f} s after the microphone "
        f"opened by the file, {by_meter - times['micOpenedAt'] / 1000:.3f} s by the page's meter)"
    )
    assert all(0 < s <= GOAL_S for s in latency.values()), latency
    assert_accessible(page)
    screens(page, "live-on-air")

    page.get_by_role("button", name="Kết thúc phát").click()
    outcome = page.locator("#live-done-text")
    expect(outcome).to_contain_text("Đã kết thúc phát trực tiếp: người phát đã kết thúc.", timeout=30_000)
    expect(outcome).to_contain_text("Bản ghi")
    session_id = times["sessionId"]
    wait_for(
        lambda: _speaker_deliveries(commune.svc, session_id) == {(d, DeliveryStatus.DONE) for d in SPEAKERS},
        10,
        "both speakers done",
    )
    with commune.svc.db.session() as s:
        item = s.get(Announcement, session_id)
        assert item is not None and item.audio_sha256 is not None and item.created_by == officer
    assert_accessible(page)


def test_an_emergency_goes_live_only_after_its_confirmation_and_a_reason(
    commune: Commune, microphone_page: Page
) -> None:
    page = microphone_page
    approver = make_user(commune.svc, "chu-tich", Role.APPROVER)
    done = sign_in(commune.svc, LoginThrottle(commune.svc.clock, 100, 60), approver, PASSWORD, "test")
    page.context.add_cookies(
        [{"name": SESSION_COOKIE, "value": done.secret, "url": commune.url, "httpOnly": True, "sameSite": "Strict"}]
    )
    page.goto(commune.url + "/live")
    expect(page.get_by_role("radio", name="Thường")).to_have_count(0)  # an approver goes live for an emergency only
    page.get_by_label(commune.svc.config.general.commune).uncheck()
    page.get_by_label("Thôn 2").check()
    expect(page.get_by_role("radio", name="Khẩn cấp")).to_be_checked()
    page.get_by_role("button", name="Bắt đầu phát trực tiếp").click()
    confirm = page.locator("#live-confirm")
    expect(confirm).to_contain_text("KHẨN CẤP")
    expect(confirm).to_contain_text("Thôn 2")
    assert commune.desk.sessions() == []  # asked, not on air
    page.get_by_role("button", name="Xác nhận và phát").click()
    expect(page.get_by_role("alert")).to_have_text("Hãy ghi lý do phát khẩn cấp rồi bấm xác nhận.")
    assert commune.desk.sessions() == []
    page.get_by_label("Lý do phát khẩn cấp (ai yêu cầu, vì sao)").fill("Đê thôn 2 có nguy cơ vỡ")
    page.get_by_role("button", name="Xác nhận và phát").click()
    expect(page.get_by_role("heading", name="ĐANG PHÁT TRỰC TIẾP")).to_be_visible()
    expect(page.locator("#live-villages")).to_have_text("Đang phát tới: Thôn 2")
    (session,) = commune.desk.sessions()
    assert (session["priority"], session["villages"], session["started_by"]) == ("emergency", ["thon-2"], approver)
    assert_accessible(page)
    page.get_by_role("button", name="Kết thúc phát").click()
    expect(page.locator("#live-done-text")).to_contain_text("Đã kết thúc phát trực tiếp", timeout=30_000)
