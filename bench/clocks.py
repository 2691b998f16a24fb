"""Clock bench: speakers whose clocks are off by ±S seconds still start together (docs/protocol.md, *Clock offset*).

    .venv/bin/python bench/clocks.py                     # 500 speakers, half 2 s fast, half 2 s slow
    .venv/bin/python bench/clocks.py --skew-s 0          # the same fleet, clocks right: the reference

Everything is real, as in bench/fanout.py (whose audio server and bulletin it borrows): a Mosquitto
started here, a SQLite file, the daemon's path (DevicePath: its link answers the time requests, its
writer stores the offsets), the simulated fleet (broadcaster/simulation/fleet.py) whose devices each
read the machine's clock shifted by their skew, and one bulletin, one broadcast row per village.

measured_s: from the fleet's connection until every speaker's offset is in the database.
offset_error_ms: each stored offset minus the true one (-skew), the worst and p99 in absolute value, at
the end of the speakers' round (first_offset_error_max_ms: their first answers, while all connect at once).
true_start_error_*: each speaker's actual start on the MACHINE's clock minus `start_at` (what a villager
hears); reported_start_error_*: what the speakers reported (`start_error_ms`, on their estimate of the
daemon's clock). The goal (issue #15, as bench/fanout.py's for clocks that are right): p99 of the true
start error <= 5 ms at 500 speakers, whatever their skew.

The LAST stdout line is one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import throwaway_database
from fanout import audio_server, plan_bulletin
from sqlalchemy import select

from broadcaster import protocol
from broadcaster.broker.managed import BrokerSettings, ManagedBroker
from broadcaster.config import DispatchConfig
from broadcaster.db import Database, Delivery, DeliveryStatus, Device
from broadcaster.device.clock import RETRY_S, ROUND, ROUND_GAP_S
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.runtime.path import DevicePath
from broadcaster.services.reports import percentile
from broadcaster.simulation.commune import provision_fleet, village_of
from broadcaster.simulation.fleet import (
    TIME_REQUEST_SPREAD_S,
    TIME_ROUND_SPREAD_S,
    Fleet,
    FleetSettings,
    SimDevice,
    fleet_devices,
)
from schedules.clock import SystemClock

GOAL_P99_MS = 5.0


def say(text: str) -> None:
    print(f"[clocks {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def run(
    tmp: Path, n: int, villages: int, processes: int, skew_s: float, lead_s: float, postgres: str | None
) -> dict[str, Any]:
    broker = ManagedBroker(tmp / "broker", BrokerSettings(port=0))
    broker.start()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(broker.stop)
        db = Database(cleanup.enter_context(throwaway_database(postgres, tmp)))
        cleanup.callback(db.dispose)
        db.upgrade()
        # Alternate within each village: every village has speakers fast and slow
        devices = [
            SimDevice(d.id, d.kind, clock_skew_s=skew_s if i % 2 == 0 else -skew_s)
            for i, d in enumerate(fleet_devices(villages, n // villages))
        ]
        provision_fleet(db, devices)
        skews = {d.id: d.clock_skew_s for d in devices}
        signer = protocol.load_or_create_signer(tmp / "keys" / "daemon-ed25519.pem")
        base_url, audio = cleanup.enter_context(audio_server(tmp / "www", 1.0))
        path = DevicePath.build(
            db,
            SystemClock(),
            DispatchConfig(lead_s=min(lead_s - 1, 30.0), reconcile_s=0.5),
            signer,
            BrokerAddress.parse(broker.url),
            lambda sha, ext: f"{base_url}/audio/{sha}.{ext}",
        )
        path.start()
        cleanup.callback(path.stop)
        fleet = Fleet(
            FleetSettings(broker.url, {signer.kid: signer.public_b64}, str(tmp / "fleet")), devices, processes
        )
        t0 = time.perf_counter()
        fleet.start(timeout=300)
        cleanup.callback(fleet.stop)
        say(f"{n} speakers connected in {time.perf_counter() - t0:.1f} s; waiting for their offsets")

        def offsets() -> dict[str, float | None]:
            with db.session() as s:
                return {device: offset for device, offset in s.execute(select(Device.id, Device.clock_offset_ms))}

        wait(lambda: None not in offsets().values(), 120, "every offset in the database")
        measured_s = time.perf_counter() - t0
        first_errors = [abs(o - (-skews[d] * 1000)) for d, o in offsets().items() if o is not None]
        say(
            f"every offset stored after {measured_s:.1f} s; worst error of the first answers {max(first_errors):.2f} ms"
        )

        # The round at connect is taken in the connection storm; the one RETRY_S later is what speakers keep
        round_s = TIME_ROUND_SPREAD_S + ROUND * (ROUND_GAP_S + TIME_REQUEST_SPREAD_S)
        settle = t0 + RETRY_S + 2 * round_s + 2 - time.perf_counter()
        say(f"waiting {settle:.0f} s for the round after the connection storm")
        time.sleep(max(0.0, settle))
        start = datetime.now(UTC) + timedelta(seconds=lead_s)
        zones = sorted({village_of(d.id) for d in devices})
        bids = plan_bulletin(db, audio, start, zones)

        def final() -> bool:
            with db.session() as s:
                statuses = s.scalars(select(Delivery.status).where(Delivery.broadcast_id.in_(bids))).all()
            return len(statuses) == n and all(st in (DeliveryStatus.DONE, DeliveryStatus.FAILED) for st in statuses)

        wait(final, lead_s + 120, "every delivery final")
        plays = fleet.report().plays
        # What the speakers said at the end of their round (the least delayed of three): what they started by
        offset_errors = [abs(o - (-skews[d] * 1000)) for d, o in offsets().items() if o is not None]
        true_errors = [abs(p.started_at - start.timestamp()) * 1000 for p in plays]
        reported = [abs(p.start_error_ms) for p in plays]
        with db.session() as s:
            done = s.scalar(
                select(Delivery.id).where(Delivery.broadcast_id.in_(bids), Delivery.status != DeliveryStatus.DONE)
            )
        p99 = percentile(true_errors, 99)
        return {
            "speakers_done": n if done is None else None,
            "plays": len(plays),
            "measured_s": round(measured_s, 2),
            "first_offset_error_max_ms": round(max(first_errors), 3),
            "offset_error_max_ms": round(max(offset_errors), 3),
            "offset_error_p99_ms": percentile(offset_errors, 99),
            "true_start_error_p50_ms": percentile(true_errors, 50),
            "true_start_error_p99_ms": p99,
            "true_start_error_max_ms": round(max(true_errors), 3) if true_errors else None,
            "reported_start_error_p99_ms": percentile(reported, 99),
            "goal_p99_ms": GOAL_P99_MS,
            "goal_met": p99 is not None and p99 <= GOAL_P99_MS,
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=500)
    p.add_argument("--villages", type=int, default=None, help="default: one per 10 speakers, at most 50")
    p.add_argument("--processes", type=int, default=1, help="fleet processes")
    p.add_argument("--skew-s", type=float, default=2.0, help="half the speakers this fast, half this slow")
    p.add_argument("--lead-s", type=float, default=10.0, help="start_at minus the time the bulletin is planned")
    p.add_argument("--postgres", metavar="URL", help="a throw-away schema in this PostgreSQL instead of SQLite")
    args = p.parse_args(argv)
    villages = args.villages or min(50, max(1, args.devices // 10))
    if args.devices % villages:
        p.error("--devices must be a multiple of --villages")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="loa-clocks-") as tmp:
        result = run(Path(tmp), args.devices, villages, args.processes, args.skew_s, args.lead_s, args.postgres)
    result.update(
        devices=args.devices,
        villages=villages,
        processes=args.processes,
        skew_s=args.skew_s,
        database="postgresql" if args.postgres else "sqlite",
        loadavg_1m_before=round(load_before, 2),
        cpus=os.cpu_count(),
    )
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["speakers_done"] == args.devices else 1


if __name__ == "__main__":
    sys.exit(main())
