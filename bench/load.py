"""Load bench (#15 item 4): a day's schedule for 5,000 speakers in ten minutes, 10% of them reconnecting
every minute, against the real daemon; every airing delivered, the daemon's memory flat.

    .venv/bin/python bench/load.py                         # 5,000 speakers, 10 minutes, 30 items
    .venv/bin/python bench/load.py --devices 200 --minutes 0.4 --items 3   # the suite's short version

What runs: `daemon.py` as a process of its own (SQLite, or PostgreSQL with --postgres) on a Mosquitto
the bench starts (ManagedBroker on a free port; the daemon is given it as `[broker] url`, so the
simulated speakers need no broker passwords), and the simulated fleet (broadcaster.simulation.fleet,
the device core of the reference agents, on one selector loop per process) in two processes. Each
worker drops the network connection of a tenth of its speakers every minute, spread over the minute
(the socket shut down under paho: the link is lost, not closed, and the speaker reconnects with its
persistent session after its back-off).

The day: `--items` items (default 30) placed evenly over the run after a minute's warm-up, each
announced through the HTTP API 40 s before its start, as an officer adds notices during a day: mostly
to the whole commune, some to a few villages, every fifth one of bulletin length (about 30 s of
speech), one priority item, and one emergency (sent with its confirmation; two airings).

Memory: the daemon's resident set (VmRSS from /proc) sampled every 10 s. baseline_rss_mb: the same
daemon, started, idle, with no devices in its database, before the fleet is provisioned.
growth_pct: the last sample against the first after the warm-up (`--warmup-min`, default 2), goal
< 10 %; slope_mb_per_min: the least-squares slope of the samples after the warm-up.

Delivered: a delivery (airing x speaker of its villages) its speaker took and reported on (`done`, or `failed`
with its reason, e.g. cut by the emergency: `preempted`); `done`: played to its end. The fleet's own
count of plays says whether any speaker played an airing twice (`duplicated`).

The LAST stdout line is one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import throwaway_database  # noqa: E402

from broadcaster import protocol  # noqa: E402
from broadcaster.broker.managed import BrokerSettings, ManagedBroker  # noqa: E402
from broadcaster.config import load_config  # noqa: E402
from broadcaster.db import (  # noqa: E402
    FINAL_DELIVERY,
    Broadcast,
    BroadcastStatus,
    Command,
    Database,
    Delivery,
    DeliveryStatus,
    Role,
)
from broadcaster.services.accounts import create_user, issue_token  # noqa: E402
from broadcaster.services.build import build_services  # noqa: E402
from broadcaster.simulation.commune import provision_fleet  # noqa: E402
from broadcaster.simulation.fleet import (  # noqa: E402
    Fleet,
    FleetReport,
    FleetSettings,
    Node,
    Worker,
    WorkerSpec,
    fleet_devices,
    split,
)
from schedules.clock import SystemClock  # noqa: E402

CHURN_ENV = "LOA_LOAD_CHURN_PER_MIN"
SAMPLE_S = 10.0
ANNOUNCE_AHEAD_S = 40.0


def say(text: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- a fleet whose links drop


class ChurnWorker(Worker):
    """The fleet's worker, losing the link of `churn` of its speakers per minute, a few each second."""

    def __init__(self, spec: WorkerSpec, conn: Connection | None, churn: float) -> None:
        super().__init__(spec, conn)
        self.churn_per_s = churn * len(self.nodes) / 60.0
        self._owed = 0.0
        self._next = time.monotonic() + 1.0
        self.dropped = 0

    def step(self) -> None:
        super().step()
        now = time.monotonic()
        if now < self._next or self._near_start():
            return
        self._next = now + 1.0
        self._owed += self.churn_per_s
        up = [n for n in self.nodes if n.connected and n.fd >= 0]
        k = min(int(self._owed), len(up))
        self._owed -= k
        for node in random.sample(up, k):
            self._drop(node)

    def _on_disconnect(self, client: Any, node: Node, *args: Any) -> None:
        """Once per lost link: paho reports a link shut under it from its read and again from its write,
        and the second report would queue a second reconnect of the node, whose first socket then stays
        registered with the selector under a number the kernel hands out again."""
        if node.fd < 0 and not node.connected and not node.connecting:
            return
        super()._on_disconnect(client, node, *args)

    def _drop(self, node: Node) -> None:
        sock = node.client.socket()
        if not isinstance(sock, socket.socket):
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # paho reads EOF: the link is lost, it reconnects after a back-off
        self.dropped += 1


def churn_worker_main(fd: int) -> None:
    """As broadcaster.simulation.fleet.worker_main, with a ChurnWorker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    spec, log_level = conn.recv()
    logging.basicConfig(level=log_level, format=f"%(asctime)s w{spec.index} %(levelname)s %(message)s")
    worker = ChurnWorker(spec, conn, float(os.environ.get(CHURN_ENV, "0")))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run()


class ChurnFleet(Fleet):
    """Fleet.start with the churning worker (the same socket-pair protocol)."""

    def __init__(self, settings: FleetSettings, devices: Any, processes: int, churn: float) -> None:
        super().__init__(settings, devices, processes)
        self.churn = churn

    def start(self, timeout: float = 300.0) -> None:
        state_dir = Path(self.settings.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, CHURN_ENV: str(self.churn), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}"}
        for index, part in enumerate(split(self.devices, self.processes)):
            ours, theirs = socket.socketpair()
            proc = subprocess.Popen(
                [sys.executable, "-c", f"from load import churn_worker_main; churn_worker_main({theirs.fileno()})"],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
            )  # fmt: skip
            theirs.close()
            conn = Connection(ours.detach())
            conn.send((WorkerSpec(index, self.settings, part), self.log_level))
            self._procs.append((proc, conn))
        deadline = time.monotonic() + timeout
        for proc, conn in self._procs:
            self._await(proc, conn, "ready", deadline)


# ---------------------------------------------------------------- the daemon


class DaemonRun:
    def __init__(self, root: Path, database_url: str, broker_url: str, lead_s: float) -> None:
        self.root = root
        self.data = root / "data"
        self.config = root / "loa.toml"
        self.config.write_text(
            "\n".join([
                "[general]", f'data_dir = "{self.data}"', 'log_level = "WARNING"',
                "[database]", f'url = "{database_url}"',
                "[broker]", f'url = "{broker_url}"',
                "[http]", "port = 0", "audio_port = 0",
                "[speech]", 'engine = "espeak"', "chimes = false",
                "[schedule]", 'quiet_start = "00:00"', 'quiet_end = "00:00"', "emergency_repeats = 2",
                "emergency_gap_s = 10",
                "[security]", "require_approval = false",
                "[simulation]", "villages = 0",
                "[led]", "slogan_every_s = 0",
                "[dispatch]", f"lead_s = {lead_s}", "validity_s = 180", "reconcile_s = 1",
            ]) + "\n",
            encoding="utf-8",
        )  # fmt: skip
        svc = build_services(load_config(self.config, environ={}), SystemClock())
        try:
            create_user(svc, "bench", Role.ADMIN, "mật khẩu của bench", actor="bench")
            self.token = issue_token(svc, "bench", "load", actor="bench")["secret"]
        finally:
            svc.db.dispose()
        self.signer = protocol.load_or_create_signer(self.data / "keys" / "daemon-ed25519.pem")
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_url = ""

    def start(self, timeout: float = 90) -> None:
        out = (self.root / "daemon.log").open("ab")
        env = {k: v for k, v in os.environ.items() if k != "LOA_CONFIG"}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "daemon.py"), "--config", str(self.config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}; see {self.root / 'daemon.log'}")
            with contextlib.suppress(OSError, ValueError):
                info = json.loads((self.data / "runtime.json").read_text(encoding="utf-8"))
                if info.get("pid") == self.proc.pid:
                    self.api_url = info["api_url"]
                    return
            time.sleep(0.2)
        raise RuntimeError("daemon did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def announce(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.api_url}/api/v1/announcements"
        resp = httpx.post(url, json=body, headers=headers, timeout=120)
        if resp.status_code == 409 and body.get("priority") == "emergency":  # asked: confirm it
            code = resp.json()["error"]["params"]["confirmation"]
            resp = httpx.post(url, json={**body, "confirmation": code, "reason": "bench: diễn tập"}, headers=headers,
                              timeout=120)  # fmt: skip
        if resp.status_code != 201:
            raise RuntimeError(f"announcement refused: {resp.status_code} {resp.text[:300]}")
        result: dict[str, Any] = resp.json()
        return result


# ---------------------------------------------------------------- the day


SENTENCES = [
    "UBND xã thông báo lịch tiêm chủng mở rộng cho trẻ em dưới năm tuổi vào sáng thứ bảy tại trạm y tế xã.",
    "Đề nghị bà con chủ động phòng chống dịch bệnh trên đàn gia súc, gia cầm trong mùa mưa.",
    "Hội Nông dân xã tổ chức tập huấn kỹ thuật trồng lúa vào lúc 14 giờ chiều nay tại nhà văn hóa thôn.",
    "Bà con lưu ý nộp quỹ phòng chống thiên tai năm 2026 trước ngày 30 tháng 6.",
    "Công an xã khuyến cáo người dân cảnh giác với các cuộc gọi lừa đảo qua điện thoại.",
    "Đoàn thanh niên ra quân dọn vệ sinh môi trường vào sáng chủ nhật tuần này.",
]


def day_plan(n: int, t0: float, run_s: float, warmup_s: float, villages: list[str], rng: random.Random) -> list[dict]:
    """`n` items over the run, after the warm-up: (start epoch, API body, kind)."""
    first, last = t0 + min(60.0, warmup_s / 2), t0 + run_s - 20.0
    step = (last - first) / max(1, n - 1)
    items = []
    emergency_at = n // 2
    for i in range(n):
        start = first + i * step
        body: dict[str, Any] = {"title": f"Mục {i + 1}"}
        if i == emergency_at:
            kind = "emergency"
            body |= {"text": "Khẩn cấp: bão đổ bộ, bà con khẩn trương chằng chống nhà cửa.", "priority": "emergency",
                     "zones": ["all"]}  # fmt: skip
        elif i % 5 == 4:
            kind = "bulletin"
            body |= {"text": " ".join(rng.sample(SENTENCES, 4)) + f" Bản tin số {i + 1}.", "zones": ["all"]}
        elif i == 1:
            kind = "priority"
            body |= {"text": f"Thông báo ưu tiên số {i + 1}: mất điện từ 13 giờ.", "priority": "priority",
                     "zones": ["all"]}  # fmt: skip
        elif i % 3 == 2:
            kind = "villages"
            body |= {
                "text": f"{rng.choice(SENTENCES)} Tin số {i + 1}.",
                "zones": rng.sample(villages, min(3, len(villages))),
            }
        else:
            kind = "notice"
            body |= {"text": f"{rng.choice(SENTENCES)} Tin số {i + 1}.", "zones": ["all"]}
        items.append({"start": start, "body": body, "kind": kind})
    return items


class Sampler(threading.Thread):
    def __init__(self, pid: int, t0: float) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.t0 = pid, t0
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            value = rss_mb(self.pid)
            if value is not None:
                self.samples.append((round(time.time() - self.t0, 1), round(value, 1)))
            if self.stop.wait(SAMPLE_S):
                return


def slope_per_min(samples: list[tuple[float, float]]) -> float | None:
    if len(samples) < 3:
        return None
    xs = [t / 60 for t, _ in samples]
    ys = [v for _, v in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den, 3) if den else None


def tally(db: Database, announcement_ids: list[int], speakers_in: dict[str, int]) -> dict[str, Any]:
    from broadcaster.db import Zone, villages_of

    with db.session() as s:
        rows = list(s.scalars(select(Broadcast).where(Broadcast.announcement_id.in_(announcement_ids))))
        by_status: dict[int, Counter[str]] = {}
        for bid, status, n in s.execute(
            select(Delivery.broadcast_id, Delivery.status, func.count())
            .where(Delivery.broadcast_id.in_([b.id for b in rows]))
            .group_by(Delivery.broadcast_id, Delivery.status)
        ):
            by_status.setdefault(bid, Counter())[status.value] += n
        expected = 0
        per_airing: list[dict[str, Any]] = []
        for b in rows:
            if b.status is BroadcastStatus.CANCELLED:
                continue  # re-planned (an emergency took its slot): its replacement is another row
            zone = s.get(Zone, b.zone_id)
            want = sum(speakers_in.get(v, 0) for v in villages_of(s, zone)) if zone else 0
            got = by_status.get(b.id, Counter())
            expected += want
            per_airing.append({
                "broadcast": b.id, "announcement": b.announcement_id, "zone": b.zone_id, "status": b.status.value,
                "expected": want, "done": got.get("done", 0),
                "reached": sum(n for st, n in got.items() if st not in ("queued", "sent", "expired")),
                "other": {k: v for k, v in got.items() if k != "done"},
            })  # fmt: skip
        open_ = s.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.broadcast_id.in_([b.id for b in rows]), Delivery.status.not_in(list(FINAL_DELIVERY)))
        )
        sends = s.scalar(select(func.sum(Command.send_count)))
        why_not_done = Counter(
            f"{status.value}: {reason or '-'}"
            for status, reason in s.execute(
                select(Delivery.status, Delivery.reason).where(
                    Delivery.broadcast_id.in_([a["broadcast"] for a in per_airing]),
                    Delivery.status != DeliveryStatus.DONE,
                )
            )
        )
    done = sum(a["done"] for a in per_airing)
    # Delivered: the speaker took the command (it acknowledged it, and played it or said why not, e.g. cut by
    # an emergency: `failed: preempted`); never heard of it: queued, sent or expired (`no_ack`).
    reached = sum(a["reached"] for a in per_airing)
    return {
        "airings": len(per_airing),
        "replanned": len(rows) - len(per_airing),
        "expected": expected,
        "delivered": reached,
        "done": done,
        "open": open_,
        "airings_complete": sum(1 for a in per_airing if a["reached"] == a["expected"]),
        "incomplete": [a for a in per_airing if a["reached"] != a["expected"]][:10],
        "command_sends": sends,
        "not_done": dict(why_not_done.most_common(10)),  # a preempted item is delivered, then cut: `failed: preempted`
    }


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    broker = ManagedBroker(tmp / "broker", BrokerSettings(port=0))
    broker.start()
    run_s = args.minutes * 60
    warmup_s = args.warmup_min * 60 if args.minutes >= 5 else run_s / 4
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(broker.stop)
        url = cleanup.enter_context(throwaway_database(args.postgres, tmp))
        daemon = DaemonRun(tmp, url, broker.url, args.lead_s)
        daemon.start()
        cleanup.callback(daemon.stop)
        assert daemon.proc is not None
        pid = daemon.proc.pid
        time.sleep(args.baseline_s)  # idle, no devices: the baseline
        baseline: list[float] = []
        for _ in range(3):
            baseline += [v] if (v := rss_mb(pid)) is not None else []
            time.sleep(1)
        baseline_rss = round(sum(baseline) / len(baseline), 1)
        say(f"idle daemon, no devices: {baseline_rss} MB")
        villages = min(50, max(1, args.devices // 20))
        db = Database(url)
        cleanup.callback(db.dispose)
        devices = provision_fleet(db, fleet_devices(villages, args.devices // villages))
        speakers_in = Counter(d.id.rsplit("-", 2)[0] for d in devices)
        settings = FleetSettings(broker.url, {daemon.signer.kid: daemon.signer.public_b64}, str(tmp / "fleet"))
        fleet = ChurnFleet(settings, devices, args.processes, args.churn)
        t = time.monotonic()
        fleet.start(timeout=600)
        say(f"{len(devices)} speakers in {villages} villages connected in {time.monotonic() - t:.0f} s")
        t0 = time.time()
        sampler = Sampler(pid, t0)
        sampler.start()
        plan = day_plan(args.items, t0, run_s, warmup_s, sorted(speakers_in), rng)
        ids: list[int] = []
        kinds: Counter[str] = Counter()
        for item in plan:
            time.sleep(max(0.0, item["start"] - ANNOUNCE_AHEAD_S - time.time()))
            at = datetime.fromtimestamp(max(item["start"], time.time() + args.lead_s + 5), UTC)
            made = daemon.announce({**item["body"], "at": at.isoformat()})
            ids.append(int(made["id"]))
            kinds[item["kind"]] += 1
            say(f"{item['kind']} {made['id']} for {at.astimezone().strftime('%H:%M:%S')} ({item['body']['zones']})")
        time.sleep(max(0.0, t0 + run_s - time.time()))
        say("run over; waiting for the last deliveries to close")
        deadline = time.time() + 240
        while time.time() < deadline:
            counts = tally(db, ids, speakers_in)
            if not counts["open"] and counts["delivered"] >= counts["expected"]:
                break
            time.sleep(5)
        sampler.stop.set()
        sampler.join()
        report: FleetReport = fleet.stop()
        counts = tally(db, ids, speakers_in)
        plays = Counter((p.device_id, p.command_id) for p in report.plays)
        samples = sampler.samples
        after = [s for s in samples if s[0] >= warmup_s]
        first_after = after[0][1] if after else None
        last = samples[-1][1] if samples else None
        return {
            "devices": len(devices),
            "villages": villages,
            "processes": fleet.processes,
            "minutes": args.minutes,
            "items": len(ids),
            "item_kinds": dict(kinds),
            **{k: v for k, v in counts.items()},
            "all_delivered": counts["delivered"] == counts["expected"]
            and counts["airings_complete"] == counts["airings"],
            "plays": len(report.plays),
            "duplicated": sum(1 for n in plays.values() if n > 1),
            "fleet_replays": report.replays,
            "reconnects": report.reconnects,
            "churn_per_min": args.churn,
            "baseline_rss_mb": baseline_rss,
            "rss_after_warmup_mb": first_after,
            "rss_end_mb": last,
            "rss_max_mb": max((v for _, v in samples), default=None),
            "growth_pct": round((last - first_after) / first_after * 100, 1) if first_after and last else None,
            "slope_mb_per_min": slope_per_min(after),
            "warmup_s": warmup_s,
            "rss_samples": samples,
            "goal": "every airing delivered; growth_pct < 10 after warm-up",
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=5000)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--items", type=int, default=30, help="items of the day (one of them an emergency: two airings)")
    p.add_argument("--churn", type=float, default=0.10, help="share of the speakers losing their link per minute")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--lead-s", type=float, default=10.0, help="the daemon's [dispatch] lead_s")
    p.add_argument("--warmup-min", type=float, default=2.0)
    p.add_argument("--baseline-s", type=float, default=10.0, help="idle time before the baseline's samples")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--postgres", metavar="URL", help="PostgreSQL (a throw-away schema) instead of a SQLite file")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped bench still cleans up its daemon
    t = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loa-load-") as tmp_name:
        result = run(args, Path(tmp_name))
    result["duration_s"] = round(time.monotonic() - t, 1)
    result["database"] = "postgresql" if args.postgres else "sqlite"
    result["cpus"] = os.cpu_count()
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["all_delivered"] and not result["duplicated"] else 1


if __name__ == "__main__":
    sys.exit(main())
