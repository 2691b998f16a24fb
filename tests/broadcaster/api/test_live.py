"""Going live over real HTTP: the browser's slices in (one authenticated, CSRF-checked POST each), the
MP3 stream out on the audio listener, the recording stored as the announcement's audio.

The rig is the daemon's parts wired as daemon.py wires them (the API and the audio listener sharing one
LiveDesk; with a broker, the way to the devices and real speaker agent processes with file sinks), so
what a speaker hears is what it opened from its signed `play`. The browser is stood in for by ffmpeg,
which makes the same WebM/Opus a MediaRecorder makes (the real Chromium is tests/broadcaster/web/).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.api.app import create_app, create_audio_app
from broadcaster.api.server import HttpServer
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import (
    Announcement,
    AuditEntry,
    Broadcast,
    BroadcastStatus,
    Command,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
    Role,
)
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.runtime.path import DevicePath
from broadcaster.services import Services
from broadcaster.services.live import LiveDesk
from broadcaster.services.zones import add_village
from schedules.clock import SystemClock
from tests.audio.test_live_stream import browser_recording, peak
from tests.broadcaster.conftest import PASSWORD, make_services, make_user
from tests.broadcaster.harness import played, village_fleet, wait_for

QUIET_OFF = {"LOA_SCHEDULE_QUIET_START": "00:00", "LOA_SCHEDULE_QUIET_END": "00:00"}


@dataclass
class Rig:
    svc: Services
    desk: LiveDesk
    api: str
    audio: str
    fleet_dir: Path | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    def signed_in(self, username: str, role: Role) -> tuple[httpx.Client, dict[str, str]]:
        """A browser signed in as a person of this role, and the headers its page's script sends."""
        make_user(self.svc, username, role)
        browser = httpx.Client(base_url=self.api, timeout=60)
        self.clients.append(browser)
        resp = browser.post("/api/v1/session", json={"username": username, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        return browser, {"X-CSRF-Token": resp.json()["csrf_token"], "Origin": self.api}

    def stored(self) -> tuple[int, int, int]:
        with self.svc.db.session() as s:
            return tuple(  # type: ignore[return-value]
                s.scalar(select(func.count()).select_from(m)) or 0 for m in (Announcement, Broadcast, Command)
            )

    def stream_url(self, session_id: int) -> str:
        """The URL the session's signed plays carry (what the dispatcher asks the desk)."""
        url = self.desk.stream_url(session_id)
        assert url is not None and url.startswith(self.audio + "/live/")
        return url


@contextmanager
def rig(tmp_path: Path, database_url: str, broker: ManagedBroker | None = None, **env: str) -> Iterator[Rig]:
    svc = make_services(tmp_path, database_url, SystemClock(), **{**QUIET_OFF, **env})
    fleet = None
    if broker is None:
        with svc.db.session() as s:
            add_village(s, "thon-1", "Thôn 1")
            add_village(s, "thon-2", "Thôn 2")
    else:  # two villages with a speaker and an LED board each, as agent processes
        fleet, signer = village_fleet(tmp_path, database_url, broker.url)
    desk = LiveDesk(svc)
    paths: list[DevicePath] = []

    def poke() -> None:  # as the daemon's API pokes its dispatcher after a change
        for path in paths:
            path.dispatcher.poke()

    api = HttpServer(create_app(svc, svc.audio.store, on_change=poke, live_desk=desk), "127.0.0.1", 0)
    audio = HttpServer(create_audio_app(svc.audio.store, desk), "127.0.0.1", 0)
    desk.publish_at(audio.url)
    if broker is not None:
        paths.append(
            DevicePath.build(
                svc.db, svc.clock, svc.config.dispatch, signer, BrokerAddress.parse(broker.url),
                lambda sha, ext: f"{audio.url}/audio/{sha}.{ext}", live_url=desk.stream_url,
            )
        )  # fmt: skip
    audio.start()
    api.start()
    for path in paths:
        path.start()
    desk.start()
    found = Rig(svc, desk, api.url, audio.url, tmp_path / "fleet" if fleet else None)
    try:
        yield found
    finally:
        desk.stop()
        for client in found.clients:
            client.close()
        for path in paths:
            path.stop()
        if fleet is not None:
            fleet.stop()
        api.stop()
        audio.stop()
        svc.db.dispose()


class Listener:
    """A speaker's connection to the stream, on a thread: what it got, and whether the stream ended."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.got = bytearray()
        self.status = 0
        self.opened = threading.Event()
        self.ended = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=30) as resp:
                self.status = resp.status_code
                self.opened.set()
                for block in resp.iter_raw():
                    self.got += block
        finally:
            self.opened.set()
            self.ended.set()


class Voice:
    """The officer talking: ffmpeg makes WebM/Opus in real time (what MediaRecorder makes, a cluster
    every 250 ms), and each piece is POSTed as the page posts its slices, numbered, until told to stop
    or refused."""

    def __init__(self, client: httpx.Client, headers: dict[str, str], session_id: int, seconds: float = 30) -> None:
        self.client, self.headers, self.session_id = client, headers, session_id
        self.answers: list[httpx.Response] = []
        self._stop = threading.Event()
        self._proc = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-nostdin", "-re", "-f", "lavfi",
             "-i", f"sine=frequency=660:sample_rate=48000:duration={seconds}",
             "-c:a", "libopus", "-b:a", "32k", "-f", "webm", "-cluster_time_limit", "250", "-flush_packets", "1",
             "pipe:1"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._proc.stdout is not None
        seq = 0
        while not self._stop.is_set():
            block = os.read(self._proc.stdout.fileno(), 65536)
            if not block:
                return
            resp = self.client.post(
                f"/api/v1/live/{self.session_id}/chunks", params={"seq": seq}, content=block, headers=self.headers
            )
            self.answers.append(resp)
            if resp.status_code != 200:
                return
            seq += 1

    def stop(self) -> None:
        self._stop.set()
        self._proc.kill()
        self._proc.wait()
        self._thread.join(timeout=10)


def _open(client: httpx.Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/live", json={"zones": ["all"], **body}, headers=headers)
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def _send(client: httpx.Client, headers: dict[str, str], session_id: int, pieces: list[bytes], first: int = 0) -> None:
    for n, piece in enumerate(pieces, start=first):
        resp = client.post(f"/api/v1/live/{session_id}/chunks", params={"seq": n}, content=piece, headers=headers)
        assert resp.status_code == 200, resp.text


def _slices(data: bytes, size: int = 2000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _audit(svc: Services, action: str) -> list[tuple[str, dict[str, Any]]]:
    with svc.db.session() as s:
        rows = s.execute(select(AuditEntry.actor, AuditEntry.detail).where(AuditEntry.action == action)).all()
    return [(actor, json.loads(detail)) for actor, detail in rows]


# ---------------------------------------------------------------- the stream, the recording


def test_two_speakers_hear_the_stream_and_the_recording_becomes_the_announcements_audio(
    tmp_path: Path, database_url: str
) -> None:
    with rig(tmp_path, database_url) as r:
        officer, headers = r.signed_in("can-bo", Role.OFFICER)
        live = _open(officer, headers, zones=["thon-1", "thon-2"], title="Thông báo khẩn về lúa")
        assert (live["state"], live["village_names"]) == ("live", ["Thôn 1", "Thôn 2"])
        url = r.stream_url(live["id"])
        first, second = Listener(url), Listener(url)
        assert first.opened.wait(10) and second.opened.wait(10)
        assert (first.status, second.status) == (200, 200)
        wait_for(lambda: r.desk.view(live["id"])["listeners"] == 2, 10, "both speakers listening")
        _send(officer, headers, live["id"], _slices(browser_recording(tmp_path / "voice.webm")))
        ended = officer.post(f"/api/v1/live/{live['id']}/end", headers=headers)
        assert ended.status_code == 200, ended.text
        assert first.ended.wait(10) and second.ended.wait(10)  # the stream ends on every speaker
        assert bytes(first.got) == bytes(second.got) and peak(bytes(first.got)) > 2000  # both heard the tone

        out = ended.json()
        assert (out["state"], out["end_reason"], out["ended_by"]) == ("ended", "ended", "can-bo")
        recording = out["recording"]
        assert recording is not None and recording["duration_ms"] > 500
        with r.svc.db.session() as s:
            item = s.get(Announcement, live["id"])
            assert item is not None
            assert (item.audio_sha256, item.created_by, item.engine) == (recording["sha256"], "can-bo", "live")
            kinds = {(b.kind, b.zone_id, b.status) for b in s.scalars(select(Broadcast))}
        # nothing dispatched them here (no broker): the session ended before they could go out
        assert kinds == {("live", "thon-1", BroadcastStatus.MISSED), ("live", "thon-2", BroadcastStatus.MISSED)}
        stored = httpx.get(f"{r.audio}{recording['url']}", timeout=10)  # served like any audio, by its hash
        assert stored.status_code == 200 and peak(stored.content) > 2000
        announced = officer.get(f"/api/v1/announcements/{live['id']}").json()
        assert announced["audio"]["sha256"] == recording["sha256"] and announced["title"] == "Thông báo khẩn về lúa"
        assert [a for a, _ in _audit(r.svc, "live.start")] == ["can-bo"]
        assert [(a, d["reason"]) for a, d in _audit(r.svc, "live.end")] == [("can-bo", "ended")]
        assert httpx.get(url, timeout=10).status_code == 404  # an ended session's path leads nowhere


def test_an_unknown_stream_is_not_found(tmp_path: Path, sqlite_url: str) -> None:
    with rig(tmp_path, sqlite_url) as r:
        officer, headers = r.signed_in("can-bo", Role.OFFICER)
        live = _open(officer, headers)
        real = r.stream_url(live["id"]).rsplit("/", 1)[1]
        for name in (f"{secrets.token_hex(16)}.mp3", real.replace(".mp3", ".ogg"), real[:-6] + "00.mp3",
                     real.upper(), "../audio", f"{real}x"):  # fmt: skip
            resp = httpx.get(f"{r.audio}/live/{name}", timeout=10)
            assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found", name
        assert httpx.get(f"{r.api}/live/{real}", timeout=10).status_code in (401, 404)  # not on the API's listener
        assert real not in json.dumps(officer.get(f"/api/v1/live/{live['id']}").json())  # the page never sees it


# ---------------------------------------------------------------- who may speak


def test_a_slice_needs_the_signed_in_speaker_and_the_csrf_token(tmp_path: Path, sqlite_url: str) -> None:
    with rig(tmp_path, sqlite_url) as r:
        officer, headers = r.signed_in("can-bo", Role.OFFICER)
        live = _open(officer, headers)
        chunks = f"{r.api}/api/v1/live/{live['id']}/chunks"
        piece = browser_recording(tmp_path / "voice.webm")[:2000]

        anonymous = httpx.post(chunks, params={"seq": 0}, content=piece, timeout=10)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_signed_in"
        no_csrf = officer.post(chunks, params={"seq": 0}, content=piece, headers={"Origin": r.api})
        assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "bad_csrf"
        forged = officer.post(chunks, params={"seq": 0}, content=piece, headers={**headers, "X-CSRF-Token": "x" * 43})
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "bad_csrf"
        elsewhere = officer.post(chunks, params={"seq": 0}, content=piece,
                                 headers={**headers, "Origin": "https://evil.example"})  # fmt: skip
        assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "bad_origin"
        colleague, theirs = r.signed_in("can-bo-2", Role.OFFICER)
        other = colleague.post(chunks, params={"seq": 0}, content=piece, headers=theirs)
        assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
        assert r.desk.view(live["id"])["bytes_in"] == 0  # none of them reached the encoder

        ok = officer.post(chunks, params={"seq": 0}, content=piece, headers=headers)
        assert ok.status_code == 200 and ok.json()["next_seq"] == 1
        again = officer.post(chunks, params={"seq": 0}, content=piece, headers=headers)  # a retry: taken once
        assert again.status_code == 200 and r.desk.view(live["id"])["bytes_in"] == len(piece)
        gap = officer.post(chunks, params={"seq": 5}, content=piece, headers=headers)
        assert gap.status_code == 409 and gap.json()["error"]["params"] == {"seq": 5, "expected": 1}
        assert colleague.post(f"/api/v1/live/{live['id']}/end", headers=theirs).status_code == 403


def test_who_may_go_live(tmp_path: Path, sqlite_url: str) -> None:
    """As for an announcement: officers and admins at normal and priority; an emergency is for the
    emergency roles, after its second look; viewers never. A refusal stores nothing."""
    with rig(tmp_path, sqlite_url) as r:
        viewer, vh = r.signed_in("xem", Role.VIEWER)
        officer, oh = r.signed_in("can-bo", Role.OFFICER)
        approver, ah = r.signed_in("duyet", Role.APPROVER)
        nothing = r.stored()
        assert viewer.post("/api/v1/live", json={"zones": ["all"]}, headers=vh).status_code == 403
        assert approver.post("/api/v1/live", json={"zones": ["all"]}, headers=ah).status_code == 403
        alarm = {"zones": ["thon-1"], "priority": "emergency", "title": "Lũ về"}
        refused = officer.post("/api/v1/live", json=alarm, headers=oh)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        wrong = officer.post("/api/v1/live", json={"zones": ["all"], "format": "audio/wav"}, headers=oh)
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "live_format"
        unknown = officer.post("/api/v1/live", json={"zones": ["thon-9"]}, headers=oh)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_zone"
        asked = approver.post("/api/v1/live", json=alarm, headers=ah)
        assert asked.status_code == 409 and asked.json()["error"]["code"] == "confirm_emergency"
        assert "Thôn 1" in asked.json()["error"]["message"]
        assert r.stored() == nothing

        code = asked.json()["error"]["params"]["confirmation"]
        no_reason = approver.post("/api/v1/live", json={**alarm, "confirmation": code}, headers=ah)
        assert no_reason.status_code == 400 and no_reason.json()["error"]["code"] == "reason_required"
        live = _open(approver, ah, **alarm, confirmation=code, reason="Đê thôn 1 sắp vỡ")
        assert (live["priority"], live["villages"]) == ("emergency", ["thon-1"])
        assert [d["reason"] for _, d in _audit(r.svc, "emergency.confirmed")] == ["Đê thôn 1 sắp vỡ"]

        # a second voice in the same village waits for the first, unless it ranks higher
        busy = officer.post("/api/v1/live", json={"zones": ["all"]}, headers=oh)
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "live_busy"
        elsewhere = _open(officer, oh, zones=["thon-2"])
        assert elsewhere["villages"] == ["thon-2"]


def test_only_an_emergency_goes_live_in_quiet_hours(tmp_path: Path, sqlite_url: str) -> None:
    with rig(tmp_path, sqlite_url, LOA_SCHEDULE_QUIET_START="00:00", LOA_SCHEDULE_QUIET_END="23:59") as r:
        officer, headers = r.signed_in("can-bo", Role.OFFICER)
        resp = officer.post("/api/v1/live", json={"zones": ["all"]}, headers=headers)
        if resp.status_code == 201:  # the one minute of the day outside these quiet hours
            pytest.skip("ran at 23:59, outside the quiet hours")
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "live_quiet_hours"
        assert r.stored() == (0, 0, 0)


# ---------------------------------------------------------------- how a session ends


def test_a_session_the_browser_stops_feeding_ends_by_itself(tmp_path: Path, sqlite_url: str) -> None:
    with rig(tmp_path, sqlite_url, LOA_LIVE_IDLE_S="2") as r:
        officer, headers = r.signed_in("can-bo", Role.OFFICER)
        live = _open(officer, headers)
        speaker = Listener(r.stream_url(live["id"]))
        assert speaker.opened.wait(10)
        _send(officer, headers, live["id"], _slices(browser_recording(tmp_path / "voice.webm")))
        # ... and then the tab is closed
        assert speaker.ended.wait(10)  # within idle_s and the watch's half second
        wait_for(lambda: r.desk.view(live["id"])["state"] == "ended", 10, "the recording stored")
        view = officer.get(f"/api/v1/live/{live['id']}").json()
        assert (view["state"], view["end_reason"], view["ended_by"]) == ("ended", "idle", "loa")
        assert view["recording"] is not None  # what was said before is kept
        late = officer.post(f"/api/v1/live/{live['id']}/chunks", params={"seq": 99}, content=b"x", headers=headers)
        assert late.status_code == 409 and late.json()["error"]["code"] == "live_ended"
        assert "trình duyệt ngừng gửi" in late.json()["error"]["message"]
        assert [(a, d["reason"], d["owner"]) for a, d in _audit(r.svc, "live.end")] == [("loa", "idle", "can-bo")]


# ---------------------------------------------------------------- with speakers: the signed command path


def _deliveries(svc: Services, announcement_id: int) -> dict[str, tuple[DeliveryStatus, str]]:
    with svc.db.session() as s:
        rows = s.execute(
            select(Delivery.device_id, Delivery.status, Delivery.reason)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .where(Broadcast.announcement_id == announcement_id)
        ).all()
    return {device: (status, reason) for device, status, reason in rows}


def _speakers_online(svc: Services) -> bool:
    with svc.db.session() as s:
        on = s.scalars(select(Device.id).where(Device.kind == DeviceKind.SPEAKER, Device.online.is_(True))).all()
    return len(on) == 2


def _playing(svc: Services, announcement_id: int) -> bool:
    got = _deliveries(svc, announcement_id)
    return [s for s, _ in got.values()] == [DeliveryStatus.PLAYING] * 2


@pytest.mark.slow
def test_speakers_play_it_through_their_signed_command_and_report_it_like_any_airing(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str
) -> None:
    with rig(tmp_path, sqlite_url, broker) as r:
        wait_for(lambda: _speakers_online(r.svc), 20, "the speakers online")
        officer, headers = r.signed_in("can-bo", Role.OFFICER)
        live = _open(officer, headers, title="Họp khẩn")
        voice = Voice(officer, headers, live["id"])
        try:
            wait_for(lambda: _playing(r.svc, live["id"]), 15, "both speakers playing the stream")
            time.sleep(2.0)  # two seconds of the officer's voice on air
        finally:
            voice.stop()
        ended = officer.post(f"/api/v1/live/{live['id']}/end", headers=headers)
        assert ended.status_code == 200, ended.text
        wait_for(lambda: set(_deliveries(r.svc, live["id"]).values()) == {(DeliveryStatus.DONE, "")}, 10,
                 "both speakers done")  # fmt: skip
        assert set(_deliveries(r.svc, live["id"])) == {"thon-1-loa", "thon-2-loa"}  # LED boards are not sent it
        with r.svc.db.session() as s:
            rows = list(s.scalars(select(Broadcast).where(Broadcast.announcement_id == live["id"])))
            payloads = [json.loads(c.payload) for c in s.scalars(select(Command).where(Command.type == "play"))]
        wait_for(lambda: _all_done(r.svc, live["id"]), 5, "the broadcasts done")
        assert all(b.duration_ms > 2000 for b in rows)  # its real length, not the longest it could have been
        assert {p["body"]["stream"]["url"] for p in payloads} == {
            f"{r.audio}/live/{r.desk._sessions[live['id']].token}.mp3"
        }
        assert all(p["priority"] == "normal" and p["to"].endswith("-loa") for p in payloads)
        assert r.fleet_dir is not None
        for speaker in ("thon-1-loa", "thon-2-loa"):
            (entry,) = played(r.fleet_dir / speaker)
            heard = (r.fleet_dir / speaker / "played" / entry["file"]).read_bytes()
            assert entry["stream"].endswith(".mp3") and peak(heard) > 2000
        assert ended.json()["recording"] is not None


def _all_done(svc: Services, announcement_id: int) -> bool:
    with svc.db.session() as s:
        return all(
            b.status is BroadcastStatus.DONE
            for b in s.scalars(select(Broadcast).where(Broadcast.announcement_id == announcement_id))
        )


@pytest.mark.slow
def test_a_recall_while_live_stops_the_speakers_and_ends_the_session(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str
) -> None:
    with rig(tmp_path, sqlite_url, broker) as r:
        wait_for(lambda: _speakers_online(r.svc), 20, "the speakers online")
        officer, headers = r.signed_in("can-bo", Role.OFFICER)
        chairman, theirs = r.signed_in("chu-tich", Role.ADMIN)
        live = _open(officer, headers)
        voice = Voice(officer, headers, live["id"])
        try:
            wait_for(lambda: _playing(r.svc, live["id"]), 15, "both speakers playing the stream")
            recall = chairman.delete(f"/api/v1/announcements/{live['id']}", params={"reason": "Nói nhầm"},
                                     headers=theirs)  # fmt: skip
            assert recall.status_code == 200, recall.text
            assert recall.json()["cancelled_after_dispatch"] == 2 and recall.json()["devices_to_stop"] == 2
            stopped = {speaker: (DeliveryStatus.FAILED, "stopped") for speaker in ("thon-1-loa", "thon-2-loa")}
            wait_for(lambda: _deliveries(r.svc, live["id"]) == stopped, 5, "both speakers stopped by the recall")
            wait_for(lambda: r.desk.view(live["id"])["state"] == "ended", 5, "the session ended")
            wait_for(lambda: voice.answers and voice.answers[-1].status_code == 409, 5, "the page told it ended")
        finally:
            voice.stop()
        view = officer.get(f"/api/v1/live/{live['id']}").json()
        assert (view["end_reason"], view["ended_by"]) == ("recalled", "loa")
        assert view["recording"] is not None  # what was said before the recall is on record
        assert voice.answers[-1].json()["error"]["code"] == "live_ended"
        with r.svc.db.session() as s:
            statuses = {(b.status, b.reason) for b in s.scalars(select(Broadcast).where(Broadcast.kind == "live"))}
        assert statuses == {(BroadcastStatus.CANCELLED, "recalled")}


def test_a_session_left_on_air_by_a_crash_is_closed_at_the_next_start(tmp_path: Path, sqlite_url: str) -> None:
    """Its stream died with the daemon: the next daemon's desk closes its broadcasts instead of leaving
    them planned (or sent) for half an hour."""
    with rig(tmp_path, sqlite_url) as r:
        officer, headers = r.signed_in("can-bo", Role.OFFICER)
        live = _open(officer, headers)
        after_the_crash = LiveDesk(r.svc)  # a new daemon on the same database
        after_the_crash.publish_at(r.audio)
        after_the_crash.start()
        try:
            with r.svc.db.session() as s:
                rows = list(s.scalars(select(Broadcast).where(Broadcast.announcement_id == live["id"])))
            assert {(b.status, b.reason) for b in rows} == {(BroadcastStatus.MISSED, "live_ended")}
            assert after_the_crash.stream_url(live["id"]) is None  # nothing to send a speaker to
        finally:
            after_the_crash.stop()
