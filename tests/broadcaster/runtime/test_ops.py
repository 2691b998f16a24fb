"""What an operator's tools see: the Prometheus metrics, /healthz and /readyz, and the JSON log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from broadcaster import protocol
from broadcaster.api.app import create_app
from broadcaster.api.server import HttpServer
from broadcaster.broker.managed import ManagedBroker
from broadcaster.config import load_config
from broadcaster.db import (
    Broadcast,
    BroadcastStatus,
    Command,
    Database,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
    RenderJob,
    Role,
)
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.runtime.logs import configure_logging, redact
from broadcaster.runtime.metrics import OpsMetrics, follow, readiness
from broadcaster.runtime.path import DevicePath
from broadcaster.services import Services
from broadcaster.services.zones import add_device, add_village
from schedules.clock import SystemClock
from tests.broadcaster.conftest import make_services, make_token
from tests.broadcaster.harness import wait_for


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample by its name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _commune(svc: Services) -> None:
    """Two villages: an online speaker, an offline one and an LED board; an airing an hour ago (done on
    one speaker, failed on the other) and one in ten minutes (one command out, one still unsent)."""
    now = datetime.now(UTC)
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
        add_village(s, "thon-2", "Thôn 2")
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1")
        add_device(s, "thon-2-loa", DeviceKind.SPEAKER, "thon-2")
        add_device(s, "thon-1-led", DeviceKind.LED, "thon-1")
        s.flush()
        s.get_one(Device, "thon-1-loa").online = True
        old = Broadcast(title="Họp thôn", zone_id="thon-1", start_at=now - timedelta(hours=1),
                        expires_at=now - timedelta(minutes=50), status=BroadcastStatus.DONE)  # fmt: skip
        soon = Broadcast(title="Tiêm phòng", zone_id="thon-1", start_at=now + timedelta(minutes=10),
                         expires_at=now + timedelta(minutes=20), status=BroadcastStatus.DISPATCHED)  # fmt: skip
        ancient = Broadcast(title="Tuần trước", zone_id="thon-2", start_at=now - timedelta(days=7),
                            expires_at=now - timedelta(days=7), status=BroadcastStatus.MISSED)  # fmt: skip
        s.add_all([old, soon, ancient])
        s.flush()
        s.add_all([
            Delivery(broadcast_id=old.id, device_id="thon-1-loa", status=DeliveryStatus.DONE, updated_at=now),
            Delivery(broadcast_id=old.id, device_id="thon-2-loa", status=DeliveryStatus.FAILED, updated_at=now),
        ])  # fmt: skip
        d1 = Delivery(broadcast_id=soon.id, device_id="thon-1-loa", status=DeliveryStatus.SENT, updated_at=now)
        d2 = Delivery(broadcast_id=soon.id, device_id="thon-2-loa", status=DeliveryStatus.QUEUED, updated_at=now)
        d3 = Delivery(broadcast_id=soon.id, device_id="thon-1-led", status=DeliveryStatus.RECEIVED, updated_at=now)
        s.add_all([d1, d2, d3])
        s.flush()
        expires = now + timedelta(minutes=20)
        s.add_all([  # one render running now, one a dead daemon left "running" an hour ago, one done
            RenderJob(id="r1", state="running", created_at=now, updated_at=now),
            RenderJob(id="r2", state="running", created_at=now, updated_at=now - timedelta(hours=1)),
            RenderJob(id="r3", state="done", created_at=now, updated_at=now),
        ])
        s.add_all([
            Command(device_id="thon-1-loa", delivery_id=d1.id, type="play", payload="{}", created_at=now,
                    expires_at=expires, sent_at=now),
            Command(device_id="thon-2-loa", delivery_id=d2.id, type="play", payload="{}", created_at=now,
                    expires_at=expires),
            Command(device_id="thon-1-led", delivery_id=d3.id, type="led.show", payload="{}", created_at=now,
                    expires_at=expires, sent_at=now, acked_at=now),  # acknowledged: out of the outbox's count
        ])  # fmt: skip


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[str, Services, OpsMetrics]]:
    svc = make_services(tmp_path, database_url, SystemClock())
    ops = OpsMetrics(svc.db, svc.clock, cache_s=0)
    server = HttpServer(create_app(svc, svc.audio.store, ops_metrics=ops), "127.0.0.1", 0)
    server.start()
    yield server.url, svc, ops
    server.stop()
    svc.db.dispose()


def test_metrics_count_what_the_database_holds_for_a_reader_only(
    served: tuple[str, Services, OpsMetrics],
) -> None:
    url, svc, _ops = served
    _commune(svc)
    assert httpx.get(f"{url}/metrics").status_code == 401  # it counts what the commune airs: not for anyone
    assert httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer loa_made-up"}).status_code == 401
    token = make_token(svc, "prometheus", Role.VIEWER)
    resp = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    got = scrape(resp.text)
    assert got[("loa_database_up", ())] == 1
    # the last day and what is planned after it; last week's missed airing is history, not a state
    assert got[("loa_broadcasts", (("state", "done"),))] == 1
    assert got[("loa_broadcasts", (("state", "dispatched"),))] == 1
    assert got[("loa_broadcasts", (("state", "missed"),))] == 0
    assert got[("loa_broadcasts", (("state", "planned"),))] == 0
    for state, n in {"done": 1, "failed": 1, "sent": 1, "queued": 1, "received": 1, "playing": 0}.items():
        assert got[("loa_deliveries", (("state", state),))] == n, state
    assert got[("loa_devices", (("kind", "speaker"), ("online", "true")))] == 1
    assert got[("loa_devices", (("kind", "speaker"), ("online", "false")))] == 1
    assert got[("loa_devices", (("kind", "led"), ("online", "false")))] == 1
    assert got[("loa_outbox_commands", (("state", "unsent"),))] == 1
    assert got[("loa_outbox_commands", (("state", "unacked"),))] == 1
    assert got[("loa_render_jobs_running", ())] == 1
    assert token not in resp.text and "Tiêm phòng" not in resp.text  # counts and states only


def test_acks_start_errors_and_renders_are_counted_where_they_happen(
    served: tuple[str, Services, OpsMetrics],
) -> None:
    url, svc, ops = served
    metrics = Metrics()
    ops.watch(metrics, svc.audio)
    writer = EventWriter(svc.db, svc.clock, metrics)  # not started: `put` is where a heard ack is counted
    writer.put("ack", "thon-1-loa", {"cmd": "c-1", "state": "playing", "start_error_ms": -30.0})
    writer.put("ack", "thon-2-loa", {"cmd": "c-2", "state": "playing", "start_error_ms": 700.0})
    writer.put("ack", "thon-2-loa", {"cmd": "c-3", "state": "failed", "reason": "download"})
    writer.put("ack", "thon-2-loa", {"cmd": "c-4", "state": "bogus"})  # refused, and counted as such
    svc.audio.render("Kính thưa bà con.")
    svc.audio.render("Kính thưa bà con.")  # a cache hit: no render time
    token = make_token(svc, "prometheus", Role.VIEWER)
    got = scrape(httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text)
    assert got[("loa_acks_total", (("state", "playing"),))] == 2
    assert got[("loa_acks_total", (("state", "failed"),))] == 1
    assert got[("loa_start_error_seconds_count", ())] == 2
    assert got[("loa_start_error_seconds_bucket", (("le", "0.05"),))] == 1  # 30 ms early
    assert got[("loa_start_error_seconds_bucket", (("le", "0.5"),))] == 1  # 700 ms late is above
    assert got[("loa_start_error_seconds_sum", ())] == pytest.approx(0.73)
    assert got[("loa_render_seconds_count", ())] == 1
    assert got[("loa_device_messages_dropped_total", (("reason", "malformed_ack"),))] == 1
    assert writer.backlog == 3


def test_a_reconnection_to_the_broker_is_counted_and_readyz_names_the_link_while_it_is_down(
    tmp_path: Path, sqlite_url: str, broker: ManagedBroker
) -> None:
    svc = make_services(tmp_path, sqlite_url, SystemClock())
    signer = protocol.load_or_create_signer(tmp_path / "keys" / "daemon.pem")
    path = DevicePath.build(svc.db, svc.clock, svc.config.dispatch, signer, BrokerAddress.parse(broker.url),
                            lambda sha, ext: f"http://x/{sha}.{ext}", client_id="loa-ops-test")  # fmt: skip
    ops = OpsMetrics(svc.db, svc.clock, cache_s=0)
    ops.watch(path.metrics)
    follow(ops, path, leading=lambda: True)
    server = HttpServer(create_app(svc, svc.audio.store, ready_probe=lambda: readiness(path), ops_metrics=ops),
                        "127.0.0.1", 0)  # fmt: skip
    server.start()
    path.start(dispatch=False)
    try:
        assert httpx.get(f"{server.url}/readyz").json() == {"ready": True, "failing": []}
        assert ops.reconnects._value.get() == 0
        port = broker.port
        broker.stop()  # down until started again, on the port it saved
        down = wait_for(lambda: (r := httpx.get(f"{server.url}/readyz")).status_code == 503 and r, 10, "not ready")
        assert down.json() == {"ready": False, "failing": ["mqtt_link"]}
        assert httpx.get(f"{server.url}/healthz").json() == {"ok": True}  # alive all the same: no restart
        broker.start()
        assert broker.port == port
        wait_for(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 30, "ready again")
        token = make_token(svc, "prometheus", Role.VIEWER)
        got = scrape(httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {token}"}).text)
        assert got[("loa_broker_reconnects_total", ())] == 1
        assert got[("loa_broker_connected", ())] == 1
        assert got[("loa_event_writer_backlog", ())] == 0
        assert got[("loa_leader", ())] == 1
    finally:
        path.stop()
        server.stop()
        svc.db.dispose()
    assert readiness(path) == ["mqtt_link", "mqtt_loop", "event_writer"]


def test_readyz_names_an_unreachable_database_and_the_metrics_say_so(tmp_path: Path, sqlite_url: str) -> None:
    svc = make_services(tmp_path, sqlite_url, SystemClock())
    server = HttpServer(create_app(svc, svc.audio.store), "127.0.0.1", 0)
    server.start()
    try:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        gone = Database("postgresql+psycopg://loa@127.0.0.1:9/nowhere?connect_timeout=2")  # nothing listens
        ops_db, svc.db = svc.db, gone
        resp = httpx.get(f"{server.url}/readyz", timeout=30)
        assert (resp.status_code, resp.json()) == (503, {"ready": False, "failing": ["database"]})
        svc.db = ops_db
        got = scrape(OpsMetrics(gone, svc.clock).exposition()[0].decode())
        assert got[("loa_database_up", ())] == 0  # a scrape still answers, and says the database did not
        gone.dispose()
    finally:
        server.stop()
        svc.db.dispose()


def test_json_logs_are_one_object_a_line_with_no_secret() -> None:
    out = io.StringIO()
    handler = configure_logging("INFO", "json", out)
    try:
        log = logging.getLogger("loa.test")
        log.info("connected to broker %s", "mqtt://loa-daemon:s3cret-pass@10.0.0.5:1883")
        try:
            raise RuntimeError("token=abc123 refused")
        except RuntimeError:
            log.exception("could not write %d device events", 3)
        log.debug("not at INFO")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "INFO" and first["logger"] == "loa.test"
    assert first["message"] == "connected to broker mqtt://loa-daemon:***@10.0.0.5:1883"
    assert datetime.fromisoformat(first["time"]).utcoffset() == timedelta(0)
    assert second["level"] == "ERROR" and second["message"] == "could not write 3 device events"
    assert "Traceback" in second["exception"] and "RuntimeError: token=*** refused" in second["exception"]
    assert "s3cret" not in out.getvalue() and "abc123" not in out.getvalue()


def test_text_logs_are_redacted_too_and_the_format_is_checked_at_the_edge() -> None:
    out = io.StringIO()
    handler = configure_logging("INFO", "text", out)
    try:
        logging.getLogger("loa.test").warning("Authorization: Bearer AbC.dEf-123 from postgresql://u:pw@db/loa")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "AbC.dEf-123" not in out.getvalue() and ":pw@" not in out.getvalue()
    assert redact("mqtts://thon-1-loa:p@ss@host") == "mqtts://thon-1-loa:***@host"
    assert load_config(None, environ={"LOA_GENERAL_LOG_FORMAT": "json"}).general.log_format == "json"
    with pytest.raises(Exception, match="log_format"):
        load_config(None, environ={"LOA_GENERAL_LOG_FORMAT": "xml"})


def test_an_error_in_a_route_is_logged_as_one_json_object_too() -> None:
    """uvicorn logs an app's exception itself ("Exception in ASGI application"): through the same handler."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 went wrong")

    out = io.StringIO()
    handler = configure_logging("INFO", "json", out)
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    try:
        assert httpx.get(f"{server.url}/boom").status_code == 500
    finally:
        server.stop()
        logging.getLogger().removeHandler(handler)
    entries = [json.loads(line) for line in out.getvalue().splitlines()]  # every line is an object
    errors = [e for e in entries if e["level"] == "ERROR"]
    assert errors and "RuntimeError" in errors[0]["exception"] and "hunter2" not in out.getvalue()
