"""`loa voice install` and `loa voice list` as the technician types them, against a local stand-in for
the Piper voices repository (in-process, so that the repository's pins can be swapped for the test
voice's): Vietnamese output, exit code 2 and nothing installed on a refusal, the OS account audited."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.cli.main import main
from broadcaster.config import load_config
from broadcaster.db import AuditEntry, Database
from broadcaster.services import voices
from tests.broadcaster.services.fake_voices import NAME, FakeVoices, pins_for, tiny_voice_files


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVoices]:
    files = tiny_voice_files(tmp_path / "tiny")
    monkeypatch.setattr(voices, "load_pins", lambda source=None: pins_for(files))
    monkeypatch.setenv("LOA_GENERAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOA_SPEECH_PIPER_VOICE", NAME)
    monkeypatch.delenv("LOA_CONFIG", raising=False)
    with FakeVoices(files) as server:
        monkeypatch.setenv("LOA_SPEECH_VOICES_BASE_URL", server.url)
        yield server


def test_a_voice_is_installed_listed_and_audited(
    tmp_path: Path, fake: FakeVoices, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["voice", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{NAME}: chưa cài — giọng mặc định" in out and "Bộ đọc đang dùng: espeak ([speech] engine = auto)" in out

    fake.mode, fake.only = "404", ".onnx"
    assert main(["voice", "install", NAME]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Lỗi: Không tải được giọng") and "HTTP 404" in err and "(voice_download_http)" in err
    assert sorted(p.name for p in (tmp_path / "data" / "voices").iterdir()) == []

    fake.mode = "ok"
    assert main(["voice", "install", NAME, "--base-url", fake.url]) == 0
    out = capsys.readouterr().out
    assert f"Đã cài giọng {NAME}" in out and "16000 Hz" in out and "giọng mặc định từ lần khởi động" in out

    assert main(["voice", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["engine"] == "piper+espeak"
    assert [v["installed"] for v in listed["voices"] if v["name"] == NAME] == [True]

    db = Database(load_config(None).database_url)
    with db.session() as s:
        rows = [(e.actor, e.action) for e in s.scalars(select(AuditEntry).where(AuditEntry.action.like("voice.%")))]
    db.dispose()
    assert rows == [(getpass.getuser(), "voice.install_failed"), (getpass.getuser(), "voice.install")]


def test_an_unknown_voice_is_refused_with_the_known_ones(fake: FakeVoices, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["voice", "install", "en_US-lessac-high"]) == 2
    err = capsys.readouterr().err
    assert "Không có giọng 'en_US-lessac-high'" in err and NAME in err and fake.requests == []
