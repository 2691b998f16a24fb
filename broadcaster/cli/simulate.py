"""`loa simulate`: thousands of speakers and LED boards in a few processes, against a running daemon."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from broadcaster import protocol
from broadcaster.db import Database
from broadcaster.errors import LoaError
from broadcaster.runtime.datadir import running_broker_url
from broadcaster.services.reports import percentile
from broadcaster.simulation.commune import provision_fleet
from broadcaster.simulation.fleet import Fleet, FleetSettings, fleet_devices


def resolve_broker(explicit: str | None, config_url: str, data_dir: Path) -> str:
    """--broker, else the configured broker, else the managed one the running daemon wrote down."""
    if explicit:
        return explicit
    if config_url:
        return config_url
    url = running_broker_url(data_dir)
    if url:
        return url
    raise LoaError("no_broker", {})


def cmd_simulate(args: argparse.Namespace) -> int:
    from broadcaster.config import load_config

    cfg = load_config(getattr(args, "config", None))
    data = Path(cfg.general.data_dir).resolve()
    signer = protocol.load_or_create_signer(data / "keys" / "daemon-ed25519.pem")
    broker_url = resolve_broker(args.broker, cfg.broker.url, data)
    devices = fleet_devices(args.villages, args.speakers_per_village, args.leds_per_village)
    if not devices:
        raise LoaError("no_devices", {})
    db = Database(cfg.database_url)
    db.prepare(upgrade=False)  # migrating is `loa db upgrade`'s job
    provision_fleet(db, devices, cfg.general.commune)
    db.dispose()
    settings = FleetSettings(
        broker_url=broker_url,
        public_keys={signer.kid: signer.public_b64},
        state_dir=str(args.state_dir or data / "fleet"),
        topic_prefix=cfg.broker.topic_prefix,
    )
    fleet = Fleet(settings, devices, args.processes or os.cpu_count() or 1, logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.monotonic()
    try:
        fleet.start()
    except Exception:
        fleet.stop()
        raise
    print(
        f"Mô phỏng {len(devices)} thiết bị ở {args.villages} thôn trong {fleet.processes} tiến trình, "
        f"đã kết nối {broker_url} sau {time.monotonic() - started:.1f} s. Ctrl-C để dừng.",
        flush=True,
    )
    while not stop.wait(1.0):
        if not fleet.alive():
            print("Một tiến trình mô phỏng đã dừng bất thường (worker_died)", file=sys.stderr)
            fleet.stop()
            return 1
    report = fleet.stop()
    errors = [abs(e) for e in report.start_errors_ms()]
    p99 = percentile(errors, 99)
    print(
        f"Đã dừng: {report.commands} lệnh, {len(report.plays)} lượt phát"
        + (f", lệch khởi phát p99 {p99:.1f} ms" if p99 is not None else "")
        + (f", từ chối {report.refused}" if report.refused else ""),
        flush=True,
    )
    return 0
