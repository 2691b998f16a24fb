"""Installing a Piper voice from a local HTTP server that behaves like the voices repository
(tests/broadcaster/services/fake_voices.py): a good download, and every way one goes wrong leaving the
voices folder as it was; the installed voice becoming the offline default ("auto")."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.db import AuditEntry, Role
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.audio import audio_pipeline, effective_engine
from broadcaster.services.voices import (
    install_job,
    install_voice,
    list_voices,
    load_pins,
    start_install,
    voice_installed,
    voices_dir,
)
from schedules.clock import LOCAL_TZ, FakeClock
from tests.audio.conftest import needs_tools
from tests.broadcaster.conftest import make_services
from tests.broadcaster.services.fake_voices import NAME, PREFIX, FakeVoices, pins_for, tiny_voice_files

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=LOCAL_TZ)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return tiny_voice_files(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def svc(tmp_path: Path, sqlite_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, sqlite_url, FakeClock(NOW), LOA_SPEECH_PIPER_VOICE=NAME)
    yield services
    services.db.dispose()


@pytest.fixture
def fake(files: dict[str, bytes]) -> Iterator[FakeVoices]:
    with FakeVoices(files) as server:
        yield server


def folder(svc: Services) -> list[str]:
    d = voices_dir(svc.config)
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def audited(svc: Services) -> list[tuple[str, str, dict[str, object]]]:
    with svc.db.session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action.like("voice.%")).order_by(AuditEntry.id))
        return [(e.actor, e.action, json.loads(e.detail)) for e in rows]


def install(svc: Services, fake: FakeVoices, files: dict[str, bytes], read_timeout: float = 1.0) -> dict[str, object]:
    return install_voice(svc, NAME, actor="root", base_url=fake.url, pins=pins_for(files), connect_timeout=1.0,
                         read_timeout=read_timeout)  # fmt: skip


def test_the_repositorys_pin_is_the_published_one() -> None:
    pin = load_pins()["vi_VN-vais1000-medium"]
    assert pin.model.path == "vi/vi_VN/vais1000/medium/vi_VN-vais1000-medium.onnx"
    assert (pin.model.size, pin.model.sha256) == (
        63201294,
        "d82296bdf909163dadcc66d20314f126589e3070ccdae720b8f28d365643fce8",
    )
    assert pin.config.path.endswith(".onnx.json") and pin.config.max_size


@needs_tools
def test_a_good_download_installs_the_voice_and_it_becomes_the_offline_default(
    svc: Services, fake: FakeVoices, files: dict[str, bytes]
) -> None:
    assert effective_engine(svc.config) == "espeak"  # auto, before the voice is there
    done = install(svc, fake, files)
    model = files[f"{PREFIX}/{NAME}.onnx"]
    assert done["size"] == len(model) and done["sample_rate"] == 16000
    assert folder(svc) == [f"{NAME}.onnx", f"{NAME}.onnx.json"]  # nothing else: no temp files left
    assert (voices_dir(svc.config) / f"{NAME}.onnx").read_bytes() == model
    assert voice_installed(svc.config, NAME)
    [listed] = [v for v in list_voices(svc.config, pins_for(files)) if v["name"] == NAME]
    assert listed["installed"] and listed["default"] and listed["size"] == len(model)
    [(actor, action, detail)] = audited(svc)
    assert (actor, action, detail["voice"], detail["sha256"]) == ("root", "voice.install", NAME, done["sha256"])

    assert effective_engine(svc.config) == "piper+espeak"
    pipeline = audio_pipeline(svc.config, svc.audio.store)
    assert pipeline.engine.name == "piper+espeak" and pipeline.work_rate == 16000
    assert pipeline.render("Kính thưa bà con.").engine == "piper"
    svc.config.speech.engine = "espeak"  # an explicit choice stays the choice
    assert audio_pipeline(svc.config, svc.audio.store).engine.name == "espeak"


@pytest.mark.parametrize(
    ("mode", "only", "code"),
    [
        ("corrupt", ".onnx", "voice_download_hash"),
        ("truncated", ".onnx", "voice_download_truncated"),
        ("404", ".onnx", "voice_download_http"),
        ("404", ".json", "voice_download_http"),
        ("oversized", ".onnx", "voice_download_size"),
        ("corrupt", ".json", "voice_bad_config"),
    ],
)
def test_a_bad_download_is_refused_and_leaves_nothing(
    svc: Services, fake: FakeVoices, files: dict[str, bytes], mode: str, only: str, code: str
) -> None:
    fake.mode, fake.only = mode, only  # type: ignore[assignment]
    with pytest.raises(LoaError) as err:
        install(svc, fake, files)
    assert err.value.code == code
    assert "Chưa cài gì" in err.value.message("vi") or "chưa cài gì" in err.value.message("vi")
    assert folder(svc) == []
    assert not voice_installed(svc.config, NAME)
    [(actor, action, detail)] = audited(svc)
    assert (actor, action, detail["code"]) == ("root", "voice.install_failed", code)


def test_a_server_that_never_answers_is_given_up_on(svc: Services, fake: FakeVoices, files: dict[str, bytes]) -> None:
    fake.mode = "hang"
    started = time.monotonic()
    with pytest.raises(LoaError) as err:
        install(svc, fake, files, read_timeout=0.5)
    assert err.value.code == "voice_download_timeout"
    assert time.monotonic() - started < 5  # the read timeout, not the server's ten seconds
    assert folder(svc) == []


def test_no_network_is_said_as_such(svc: Services, files: dict[str, bytes]) -> None:
    with socket.socket() as s:  # a port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LoaError) as err:
        install_voice(svc, NAME, actor="root", base_url=f"http://127.0.0.1:{port}", pins=pins_for(files),
                      connect_timeout=1.0, read_timeout=1.0)  # fmt: skip
    assert err.value.code == "voice_download_unreachable" and err.value.params["host"] == "127.0.0.1"
    assert folder(svc) == []


def test_a_failed_reinstall_keeps_the_voice_that_was_there(
    svc: Services, fake: FakeVoices, files: dict[str, bytes]
) -> None:
    install(svc, fake, files)
    before = folder(svc)
    fake.mode, fake.only = "truncated", ".onnx"
    with pytest.raises(LoaError):
        install(svc, fake, files)
    assert folder(svc) == before and voice_installed(svc.config, NAME)


def test_only_pinned_voices_and_only_admins(svc: Services, fake: FakeVoices, files: dict[str, bytes]) -> None:
    with pytest.raises(LoaError) as err:
        install_voice(svc, "en_US-lessac-high", actor="root", base_url=fake.url, pins=pins_for(files))
    assert err.value.code == "voice_not_pinned" and err.value.status == 404
    officer = Principal(2, "can-bo", "Cán bộ", Role.OFFICER, "session")
    with pytest.raises(LoaError) as err:
        install_voice(svc, NAME, actor="can-bo", by=officer, base_url=fake.url, pins=pins_for(files))
    assert err.value.code == "forbidden"
    assert fake.requests == [] and folder(svc) == []


def test_the_desks_background_install_reports_its_outcome(
    svc: Services, fake: FakeVoices, files: dict[str, bytes]
) -> None:
    admin = Principal(1, "chu-tich", "Chủ tịch", Role.ADMIN, "session")
    fake.mode, fake.only = "hang", ".onnx"
    job = start_install(svc, NAME, actor="chu-tich", by=admin, base_url=fake.url, pins=pins_for(files),
                        connect_timeout=1.0, read_timeout=0.5)  # fmt: skip
    with pytest.raises(LoaError) as err:  # one at a time
        start_install(svc, NAME, actor="chu-tich", by=admin, base_url=fake.url, pins=pins_for(files))
    assert err.value.code == "voice_install_busy"
    deadline = time.monotonic() + 5
    while job.state == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.state == "failed" and job.error is not None and job.error.code == "voice_download_timeout"
    assert install_job(svc, NAME) is job
    fake.mode = "ok"
    job = start_install(svc, NAME, actor="chu-tich", by=admin, base_url=fake.url, pins=pins_for(files))
    while job.state == "running" and time.monotonic() < deadline + 5:
        time.sleep(0.02)
    assert job.state == "done" and job.percent == 100
    assert [a[:2] for a in audited(svc)] == [("chu-tich", "voice.install_failed"), ("chu-tich", "voice.install")]
