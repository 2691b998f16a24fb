"""`loa backup` and `loa restore`: a commune backed up while its daemon runs comes back whole in an empty
folder and airs what it had planned, with the audio and the key its speakers trust."""

from __future__ import annotations

import hashlib
import json
import stat
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from broadcaster.broker.managed import ManagedBroker
from broadcaster.cli.main import main as loa
from broadcaster.config import load_config
from broadcaster.db import Announcement, Broadcast, Database, Delivery, DeliveryStatus
from broadcaster.runtime.backup import _written_whole, backup, restore
from broadcaster.services.announcements import announce
from broadcaster.services.build import build_services
from broadcaster.services.zones import add_village
from schedules.clock import SystemClock
from tests.broadcaster.harness import DaemonProcess, played, village_fleet, wait_for, write_config

pytestmark = pytest.mark.slow


def _speaker_done(db: Database, announcement_id: int) -> bool:
    with db.session() as s:
        status = s.scalar(
            select(Delivery.status).join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .where(Broadcast.announcement_id == announcement_id, Delivery.device_id == "thon-1-loa")
        )  # fmt: skip
    return status is DeliveryStatus.DONE


def _online(db: Database) -> bool:
    from broadcaster.db import Device

    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Device).where(Device.online.is_(True))) == 2


def test_a_backup_taken_while_the_daemon_runs_restores_into_an_empty_folder_and_airs(
    tmp_path: Path, broker: ManagedBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    url_a, url_b = f"sqlite:///{tmp_path / 'a.sqlite3'}", f"sqlite:///{tmp_path / 'b.sqlite3'}"
    agents, _ = village_fleet(tmp_path, url_a, broker.url, villages=1)  # its key in tmp/data/keys: A's
    config_a = write_config(tmp_path / "a.toml", tmp_path / "data", url_a, broker.url, lead_s=2, reconcile_s=0.2)
    config_b = write_config(tmp_path / "b.toml", tmp_path / "restored", url_b, broker.url, lead_s=2, reconcile_s=0.2)
    config_b.write_text(config_b.read_text().replace('log_level = "INFO"', 'log_level = "INFO"\nlog_format = "json"'))
    a = DaemonProcess(config_a, tmp_path / "data", tmp_path / "a.log").start()
    db_a, db_b = Database(url_a), None
    b: DaemonProcess | None = None
    try:
        wait_for(lambda: _online(db_a), 20, "the speaker and the LED board online")
        start_at = datetime.now(UTC) + timedelta(seconds=10)  # after A is gone and B is up (later still plays)
        resp = a.post("/api/v1/announcements", {"text": "Thông báo lịch tiêm phòng cho trâu bò.", "zones": ["all"],
                                                "at": start_at.isoformat(), "title": "Tiêm phòng"})  # fmt: skip
        assert resp.status_code == 201, resp.text
        item = resp.json()

        archive = tmp_path / "backups" / "xa.tar"
        assert loa(["--config", str(config_a), "backup", str(archive), "--json"]) == 0  # A still running
        made = json.loads(capsys.readouterr().out)
        a.stop()
        assert made["database"] == "sqlite" and made["path"] == str(archive)
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds the signing key
        assert [p.name for p in archive.parent.iterdir()] == ["xa.tar"]  # no partial file left beside it
        with tarfile.open(archive) as tar:
            names = set(tar.getnames())
        assert {"manifest.json", "database.sqlite3", "data/keys/daemon-ed25519.pem", "audio/index.sqlite3"} <= names
        assert f"audio/{item['audio']['sha256']}.mp3" in names
        assert not any(n.endswith(("daemon.lock", "-wal", "-shm")) for n in names)

        (tmp_path / "restored").mkdir()
        (tmp_path / "restored" / "stray.txt").write_text("x")
        assert loa(["--config", str(config_b), "restore", str(archive)]) == 2  # never over something
        err = capsys.readouterr().err
        assert "không trống" in err and "(restore_not_empty)" in err
        assert not (tmp_path / "b.sqlite3").exists() and list((tmp_path / "restored").iterdir()) == [
            tmp_path / "restored" / "stray.txt"
        ]
        (tmp_path / "restored" / "stray.txt").unlink()
        assert loa(["--config", str(config_b), "restore", str(archive)]) == 0
        capsys.readouterr()

        b = DaemonProcess(config_b, tmp_path / "restored", tmp_path / "b.log").start()
        db_b = Database(url_b)
        wait_for(lambda: _speaker_done(db_b, item["id"]), 40, "the planned item played by the restored daemon")
        plays = played(tmp_path / "fleet" / "thon-1-loa")
        assert len(plays) == 1  # once: A never sent it, B did
        copy = tmp_path / "fleet" / "thon-1-loa" / "played" / plays[0]["file"]
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == item["audio"]["sha256"]  # the audio came back
        logged = [json.loads(line) for line in (tmp_path / "b.log").read_text().splitlines() if line.startswith("{")]
        assert logged and all({"time", "level", "logger", "message"} <= set(entry) for entry in logged)
    finally:
        for daemon in (a, b):
            if daemon is not None:
                daemon.stop()
        agents.stop()
        db_a.dispose()
        if db_b is not None:
            db_b.dispose()


@pytest.mark.postgres
def test_postgresql_is_dumped_and_restored_into_an_empty_schema(tmp_path: Path, postgres_url: str) -> None:
    env = {"LOA_DATABASE_URL": postgres_url, "LOA_SPEECH_CHIMES": "false", "LOA_SECURITY_REQUIRE_APPROVAL": "false",
           "LOA_SCHEDULE_QUIET_START": "00:00", "LOA_SCHEDULE_QUIET_END": "00:00"}  # any hour the test runs at
    config = load_config(None, environ={**env, "LOA_GENERAL_DATA_DIR": str(tmp_path / "data")})
    svc = build_services(config, SystemClock())
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
    item = announce(svc, "Kính mời bà con dự họp thôn lúc 19 giờ.", ["thon-1"], at="+2h")
    sha = item["audio"]["sha256"]
    (tmp_path / "backups").mkdir()
    info = backup(config, tmp_path / "backups")  # a folder: a dated name in it
    assert info.path.name.startswith("loa-backup-") and info.database == "postgresql"
    schema = svc.db.engine.connect().execute(text("SELECT current_schema()")).scalar()
    svc.db.dispose()

    elsewhere = load_config(None, environ={**env, "LOA_GENERAL_DATA_DIR": str(tmp_path / "new")})
    with pytest.raises(Exception, match="restore_database_not_empty"):
        restore(elsewhere, info.path)  # the schema still holds the commune
    assert not (tmp_path / "new").exists()
    admin = Database(postgres_url)
    with admin.engine.begin() as conn:  # the new server's empty database, same name
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    manifest = restore(elsewhere, info.path)
    assert manifest["schema"] == schema
    svc = build_services(elsewhere, SystemClock())
    try:
        with svc.db.session() as s:
            restored = s.scalars(select(Announcement)).one()
            assert restored.audio_sha256 == sha
            assert s.scalar(select(func.count()).select_from(Broadcast)) == 1
        stored = svc.audio.store.open(sha)  # in the restored index, and its file there
        assert stored is not None and hashlib.sha256(stored.path.read_bytes()).hexdigest() == sha
        assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
        assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "new").rglob("*") if p.is_file()} == {0o600}
    finally:
        svc.db.dispose()


def test_an_archive_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    dest = tmp_path / "b.tar"
    with pytest.raises(RuntimeError), _written_whole(dest) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    with _written_whole(dest) as partial:
        partial.write_bytes(b"whole")
    assert dest.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [dest]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
