"""An upgrade from the very first schema (0001) to whatever head is now, on a database with a commune's
records in it, on SQLite and PostgreSQL: every row stays, the schema ends exactly as the models say, and
the services, the HTTP API and the metrics read the old rows as they read new ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from broadcaster.api.app import create_app
from broadcaster.api.server import HttpServer
from broadcaster.config import load_config
from broadcaster.db import Announcement, AnnouncementState, Base, Database, Role
from broadcaster.db.migrations import current_revision, head_revision, upgrade
from broadcaster.runtime.metrics import OpsMetrics
from broadcaster.services.build import build_services
from broadcaster.services.devices import list_devices
from broadcaster.services.reports import report
from broadcaster.services.views import recent_deliveries
from schedules.clock import SystemClock
from tests.broadcaster.conftest import make_token

SHA = "ab" * 32


def _first_schema_commune(db: Database, now: datetime) -> None:
    """What a commune had written by the time of the first schema, in that schema's own columns."""
    at = (now - timedelta(hours=1)).replace(tzinfo=None)  # UTCDateTime stores naive UTC
    rows = {
        "zones (id, name, kind, parent_id)": [
            {"a": "all", "b": "Xã Mẫu", "c": "COMMUNE", "d": None},
            {"a": "thon-1", "b": "Thôn 1", "c": "VILLAGE", "d": "all"},
            {"a": "thon-2", "b": "Thôn Đông", "c": "VILLAGE", "d": "all"},
        ],
    }
    with db.engine.begin() as conn:
        for columns, values in rows.items():
            names = columns.split("(")[1].rstrip(")").split(", ")
            marks = ", ".join(f":{k}" for k in "abcd"[: len(names)])
            for v in values:
                conn.execute(text(f"INSERT INTO {columns} VALUES ({marks})"), v)
        device = (
            "INSERT INTO devices (id, kind, village_id, name, online, last_seen, firmware, volume, signal, "
            "diacritics, broker_password_hash, created_at) VALUES (:id, :kind, :village, :name, :online, :at, "
            "'1.0.3', 80, -71, :diacritics, 'PBKDF2$sha512$100000$c2FsdA==$aGFzaA==', :at)"
        )
        conn.execute(text(device), {"id": "thon-1-loa", "kind": "SPEAKER", "village": "thon-1", "name": "Loa cổng làng",
                                    "online": True, "at": at, "diacritics": True})  # fmt: skip
        conn.execute(text(device), {"id": "thon-1-led", "kind": "LED", "village": "thon-1", "name": "Bảng LED",
                                    "online": False, "at": at, "diacritics": False})  # fmt: skip
        conn.execute(
            text("INSERT INTO announcements (id, title, text, priority, created_at, created_by, audio_sha256, "
                 "audio_size, audio_duration_ms, audio_ext, engine) VALUES (1, 'Họp thôn', :body, 'normal', :at, "
                 "'can-bo', :sha, 48213, 6120, 'mp3', 'espeak')"),
            {"body": "UBND xã thông báo: 19h30 ngày 25/11/2026 họp thôn tại nhà văn hóa.", "at": at, "sha": SHA},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO programmes (id, kind, title, targets, recurrence, starts_on, duration_ms, stream_url, "
                 "announcement_id, priority, options, active, created_at, created_by) VALUES (1, 'relay', "
                 "'Thời sự VOV1', '[\"all\"]', '06:00', '2026-11-01', 1800000, 'http://radio.example/vov1', NULL, "
                 "'normal', '{}', :yes, :at, 'can-bo')"),
            {"at": at, "yes": True},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO broadcasts (id, announcement_id, programme_id, title, zone_id, start_at, expires_at, "
                 "airing_id, window_id, order_key, kind, priority, duration_ms, code, explanation, status, late, "
                 "reason, dispatched_at) VALUES (1, 1, NULL, 'Họp thôn', 'thon-1', :at, :until, 'a-1', '', 0, "
                 "'notice', 'normal', 6120, 'as_requested', 'Phát đúng giờ đã chọn', 'DONE', :no, '', :at)"),
            {"at": at, "until": at + timedelta(minutes=15), "no": False},
        )  # fmt: skip
        delivery = (
            "INSERT INTO deliveries (id, broadcast_id, device_id, status, reason, start_error_ms, updated_at) "
            "VALUES (:id, 1, :device, :status, :reason, :error, :at)"
        )
        conn.execute(text(delivery), {"id": 1, "device": "thon-1-loa", "status": "DONE", "reason": "",
                                      "error": 4.5, "at": at})  # fmt: skip
        conn.execute(text(delivery), {"id": 2, "device": "thon-1-led", "status": "EXPIRED", "reason": "no_ack",
                                      "error": None, "at": at})  # fmt: skip
        conn.execute(
            text("INSERT INTO commands (id, device_id, delivery_id, type, payload, created_at, expires_at, sent_at, "
                 "send_count, acked_at) VALUES ('0b6f3c1e-5d2a-4c1e-9f3a-1d2c3b4a5f60', 'thon-1-loa', 1, 'play', "
                 "'{\"v\": 2}', :at, :until, :at, 1, :at)"),
            {"at": at, "until": at + timedelta(minutes=15)},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO audit_log (at, actor, action, detail) VALUES (:at, 'can-bo', 'announce', 'Họp thôn')"),
            {"at": at},
        )


def test_a_commune_on_the_first_schema_upgrades_to_head_with_its_records(tmp_path: Path, database_url: str) -> None:
    now = datetime.now(UTC)
    db = Database(database_url)
    upgrade(db.engine, "0001")
    _first_schema_commune(db, now)
    db.upgrade()  # every migration since, whichever is head today
    assert current_revision(db.engine) == head_revision()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
    db.dispose()

    environ = {"LOA_GENERAL_DATA_DIR": str(tmp_path / "data"), "LOA_DATABASE_URL": database_url}
    svc = build_services(load_config(None, environ=environ), SystemClock())  # no migration left to run
    try:
        with svc.db.session() as s:
            item = s.get(Announcement, 1)
            assert item is not None
            assert (item.title, item.audio_sha256, item.state) == ("Họp thôn", SHA, AnnouncementState.APPROVED)
            assert item.created_at == (now - timedelta(hours=1)).replace(microsecond=item.created_at.microsecond)
        devices = {d["id"]: d for d in list_devices(svc)}
        assert set(devices) == {"thon-1-loa", "thon-1-led"}
        assert devices["thon-1-loa"]["firmware"] == "1.0.3" and devices["thon-1-loa"]["online"] is True
        deliveries = {d["device"]: d for d in recent_deliveries(svc)}
        assert deliveries["thon-1-loa"]["start_error_ms"] == 4.5
        assert deliveries["thon-1-led"]["status"] == "expired"
        period = report(svc, now - timedelta(days=1), now + timedelta(days=1))
        assert (period["items"], period["plays"]) == (1, 1)  # the speaker's done play, heard

        token = make_token(svc, "quan-tri", Role.ADMIN)
        server = HttpServer(create_app(svc, svc.audio.store), "127.0.0.1", 0)
        server.start()
        try:
            auth = {"Authorization": f"Bearer {token}"}
            got = httpx.get(f"{server.url}/api/v1/broadcasts", headers=auth).json()
            assert [(b["id"], b["title"], b["status"]) for b in got] == [(1, "Họp thôn", "done")]
            programmes = httpx.get(f"{server.url}/api/v1/programmes", headers=auth).json()
            assert [p["title"] for p in programmes] == ["Thời sự VOV1"]
            metrics = httpx.get(f"{server.url}/metrics", headers=auth).text
        finally:
            server.stop()
        samples = {(s.name, tuple(s.labels.values())): s.value
                   for f in text_string_to_metric_families(metrics) for s in f.samples}  # fmt: skip
        assert samples[("loa_deliveries", ("done",))] == 1 and samples[("loa_deliveries", ("expired",))] == 1
        assert samples[("loa_devices", ("speaker", "true"))] == 1
        assert OpsMetrics(svc.db, svc.clock).exposition()[0]  # and without the app
    finally:
        svc.db.dispose()
