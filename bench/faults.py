"""Fault bench (#15 item 3): the real daemon and real speakers, hurt at random moments of dispatch.

    .venv/bin/python bench/faults.py                      # every scenario, 20 trials of each kill
    .venv/bin/python bench/faults.py --quick              # one trial of daemon_kill and speaker_reboot (the suite's)
    .venv/bin/python bench/faults.py --scenarios daemon_kill,broker_kill --trials 5 --seed 7

What runs: `daemon.py` as a process of its own (its own data folder and config, free ports, its managed
Mosquitto, SQLite, or PostgreSQL through a proxy for `db_outage`), and four speakers in two villages,
each a real `loa agent speaker` process (bench/play_log_agent.py: the reference agent, writing down
every play it starts and ends with the command id and the wall time) reaching the broker through a TCP
proxy of its own, so its network can be cut. Each trial announces one item to the whole commune through
the HTTP API, injects its fault at a random moment around the item's dispatch (half the trials within
half a second of the instant the timer fires, the rest anywhere from just before dispatch to the item's
end), repairs what it broke and goes on. Once every airing's validity has passed, what each speaker
played is read back and reconciled with the database:

- `airings`: broadcast rows (one per village) of the items the API accepted; `deliveries`: airing x
  speaker of its village.
- `lost`: a delivery no speaker played once and the database does not report missed, failed or expired
  with a reason (or reports `done`).
- `duplicated`: a delivery played more than once (or a play of a command the database never issued).
- `stale`: a play that started after its command's expiry.
- `misrecorded`: the database disagrees with the speaker: `done` with no play, or a play heard whole
  recorded otherwise.
- `unheard`: deliveries to a speaker that was reachable during the airing that did not play (each one
  reported with a reason, else it is in `lost`): the price of the fault, not a bug.

Scenarios:
- daemon_kill: SIGKILL to the daemon's pid alone (its broker follows by the parent-death signal);
  restarted at once.
- group_kill: SIGKILL to the daemon's whole process group (daemon, mosquitto, espeak-ng); restarted.
- broker_kill: SIGKILL to mosquitto alone; half the time its persistence file is first replaced by an
  older copy, so it comes back with an old snapshot and re-delivers old messages; the daemon restarts it.
- speaker_cut_before: one speaker's network cut before its command goes out, restored at a random
  moment (some after the item's expiry: then unreachable, and it must be reported).
- speaker_cut_after: one speaker's network cut once it has acknowledged its command; restored later.
- speaker_reboot: one speaker killed (SIGKILL) between `downloaded` and its start, and started again:
  it must still play, on time (`late`: plays starting more than 0.5 s after their start).
- speech_hang: espeak-ng hangs (a wrapper on the daemon's PATH waits while a flag file exists) while an
  item is announced; an item accepted before must still air on time.
- disk_full: the audio folder is a 64 MB tmpfs, filled up while an item is announced (root only; else
  skipped with the reason).
- db_outage: the daemon on PostgreSQL through a TCP proxy, cut for 10 s around a dispatch (skipped when
  no PostgreSQL answers).

The LAST stdout line is one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import postgres_problem  # noqa: E402
from broadcaster import protocol  # noqa: E402
from broadcaster.broker.credentials import issue_credentials  # noqa: E402
from broadcaster.config import load_config  # noqa: E402
from broadcaster.db import (  # noqa: E402
    FINAL_DELIVERY,
    Broadcast,
    BroadcastStatus,
    Command,
    Database,
    Delivery,
    Device,
    DeviceKind,
    Role,
)
from broadcaster.device.config import AgentConfig  # noqa: E402
from broadcaster.services.accounts import create_user, issue_token  # noqa: E402
from broadcaster.services.build import build_services  # noqa: E402
from broadcaster.services.zones import add_device, add_village, ensure_commune  # noqa: E402
from schedules.clock import SystemClock  # noqa: E402

POSTGRES_URL = os.environ.get("LOA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
VILLAGES, SPEAKERS_PER_VILLAGE = 2, 2
ON_TIME_S = 0.5
REPORTED = ("failed", "expired")  # final delivery states that say it did not air
KILL_SCENARIOS = ("daemon_kill", "group_kill")
ALL_SCENARIOS = (
    "daemon_kill", "group_kill", "broker_kill", "speaker_cut_before", "speaker_cut_after", "speaker_reboot",
    "speech_hang", "disk_full", "db_outage",
)  # fmt: skip
QUICK = {"daemon_kill": 1, "speaker_reboot": 1}
PLAYING_GRACE_S = 60.0  # broadcaster.dispatch.reconcile: a `playing` delivery is closed this long after expiry


def say(text_: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {text_}", file=sys.stderr, flush=True)


def port_below_ephemeral(rng: random.Random) -> int:
    """A free port below the kernel's ephemeral range, as 1883 is: a port from that range, free while the
    broker is down, can be taken meanwhile as the local end of any outgoing connection, and the restarted
    broker would then find its port taken (the daemon refuses to move it: devices hold it)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = rng.randrange(20000, min(low, 30000))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


# ---------------------------------------------------------------- a TCP proxy that can be cut


class Proxy:
    """Forwards 127.0.0.1:port to an upstream; `cut()` resets every connection and refuses new ones
    until `restore()` (a speaker's network, the database's)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.down = False
        self._closed = False
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.down:
                _reset(client)
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            up.settimeout(None)
            with self._lock:
                self._open |= {client, up}
            for a, b in ((client, up), (up, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._open -= {src, dst}

    def cut(self) -> None:
        self.down = True
        with self._lock:
            conns, self._open = set(self._open), set()
        for s in conns:
            _reset(s)

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()


def _reset(s: socket.socket) -> None:
    """End a connection so that both ends hear of it at once (a refused, reset link). The shutdown comes
    first: a close alone does not wake the proxy's own thread blocked reading the socket, which keeps it
    open, and the far end then waits on a link that is silently gone (a blackhole, not an outage)."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


# ---------------------------------------------------------------- the speakers


@dataclass
class Speaker:
    id: str
    village: str
    config: Path
    plays: Path
    log: Path
    proxy: Proxy
    proc: subprocess.Popen[bytes] | None = None
    held_down: bool = False  # killed on purpose: the watcher leaves it down

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "play_log_agent.py"), str(self.config), str(self.plays)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
        )  # fmt: skip
        out.close()
        self.held_down = False

    def kill(self) -> None:
        self.held_down = True
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self.held_down = True
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def events(self) -> list[dict[str, Any]]:
        if not self.plays.exists():
            return []
        return [json.loads(line) for line in self.plays.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------- one environment: a daemon and its commune


@dataclass
class Env:
    root: Path
    postgres: bool = False
    tmpfs_audio: bool = False
    lead_s: float = 5.0
    validity_s: float = 20.0
    data: Path = field(init=False)
    db_url: str = field(init=False)  # the harness's own connection
    daemon_db_url: str = field(init=False)  # the daemon's (through the proxy for PostgreSQL)
    speakers: list[Speaker] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    api_url: str = ""
    token: str = ""
    db_proxy: Proxy | None = None
    hang_flag: Path = field(init=False)
    config: Path = field(init=False)
    bin_dir: Path = field(init=False)
    db: Database = field(init=False)
    schema: str = ""
    mounted: bool = False
    restarts: int = 0
    _watching: bool = False

    def __post_init__(self) -> None:
        self.data = self.root / "data"
        self.hang_flag = self.root / "espeak-hang"

    # ------------------------------------------------------------ set-up

    def setup(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.tmpfs_audio:
            (self.data / "audio").mkdir(mode=0o700, exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(self.data / "audio")],
                           check=True)  # fmt: skip
            self.mounted = True
        if self.postgres:
            self.schema = f"loa_faults_{uuid.uuid4().hex[:10]}"
            admin = create_engine(POSTGRES_URL)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            admin.dispose()
            opts = f"?options=-csearch_path%3D{self.schema}"
            self.db_url = POSTGRES_URL + opts
            pg = PgAddress(POSTGRES_URL)
            self.db_proxy = Proxy((pg.host, pg.port))
            self.daemon_db_url = pg.with_port(self.db_proxy.port) + opts
        else:
            self.db_url = self.daemon_db_url = f"sqlite:///{self.data / 'loa.sqlite3'}"
        self._write_espeak_wrapper()
        broker_port = port_below_ephemeral(random.Random())
        config = self.root / "loa.toml"
        config.write_text(
            "\n".join([
                "[general]", f'data_dir = "{self.data}"', 'log_level = "INFO"',
                "[database]", f'url = "{self.daemon_db_url}"',
                "[broker]", f"port = {broker_port}",
                "[http]", "port = 0", "audio_port = 0",
                "[speech]", 'engine = "espeak"', "chimes = false",
                "[schedule]", 'quiet_start = "00:00"', 'quiet_end = "00:00"',
                "[security]", "require_approval = false",
                "[simulation]", "villages = 0",
                "[dispatch]", f"lead_s = {self.lead_s}", f"validity_s = {self.validity_s}", "reconcile_s = 0.5",
            ]) + "\n",
            encoding="utf-8",
        )  # fmt: skip
        self.config = config
        # The commune, its speakers and an admin's token, before the daemon's first start (as `loa device add`
        # does it), so the broker's password file has them from the start.
        svc = build_services(load_config(config, environ={}), SystemClock())
        try:
            signer = protocol.load_or_create_signer(self.data / "keys" / "daemon-ed25519.pem")
            with svc.db.session() as session:
                ensure_commune(session, "Xã thử lỗi")
                for v in range(1, VILLAGES + 1):
                    village = f"thon-{v}"
                    add_village(session, village, f"Thôn {v}")
                    for k in range(1, SPEAKERS_PER_VILLAGE + 1):
                        sid = f"{village}-loa-{k}"
                        device = add_device(session, sid, DeviceKind.SPEAKER, village)
                        secret = issue_credentials(device)
                        proxy = Proxy(("127.0.0.1", broker_port))
                        state = self.root / "speakers" / sid
                        cfg = AgentConfig(
                            device_id=sid, kind="speaker", broker_url=f"mqtt://127.0.0.1:{proxy.port}",
                            public_keys={signer.kid: signer.public_b64}, username=sid, password=secret,
                            state_dir=str(state), sink="null", tele_s=0,
                        )  # fmt: skip
                        path = self.root / "speakers" / f"{sid}.json"
                        cfg.save(path)
                        self.speakers.append(
                            Speaker(sid, village, path, self.root / "speakers" / f"{sid}.plays.jsonl",
                                    self.root / "speakers" / f"{sid}.log", proxy)
                        )  # fmt: skip
            create_user(svc, "bench", Role.ADMIN, "mật khẩu của bench", actor="bench")
            self.token = issue_token(svc, "bench", "faults", actor="bench")["secret"]
        finally:
            svc.db.dispose()
        self.db = Database(self.db_url)
        self.start_daemon()
        for s in self.speakers:
            s.start()
        self._watching = True
        threading.Thread(target=self._watch_speakers, name="speakers-watch", daemon=True).start()
        self.wait_online()

    def _write_espeak_wrapper(self) -> None:
        """espeak-ng that waits while the flag file exists (speech_hang), then runs the real one."""
        real = shutil.which("espeak-ng") or "/usr/bin/espeak-ng"
        bin_dir = self.root / "bin"
        bin_dir.mkdir(exist_ok=True)
        wrapper = bin_dir / "espeak-ng"
        wrapper.write_text(f'#!/bin/sh\nwhile [ -e "{self.hang_flag}" ]; do sleep 0.1; done\nexec "{real}" "$@"\n')
        wrapper.chmod(0o755)
        self.bin_dir = bin_dir

    def _watch_speakers(self) -> None:
        """A device's own supervisor: a speaker that died (its agent gives up when no broker answers for a
        minute) is started again, unless the bench holds it down."""
        while self._watching:
            for s in self.speakers:
                if not s.held_down and s.proc is not None and s.proc.poll() is not None:
                    s.start()
            time.sleep(1.0)

    def wait_online(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        online = 0
        while time.monotonic() < deadline:
            with self.db.session() as s:
                online = s.scalar(select(func.count()).select_from(Device).where(Device.online.is_(True))) or 0
            if online == len(self.speakers):
                return
            time.sleep(0.3)
        raise RuntimeError(f"only {online}/{len(self.speakers)} speakers online after {timeout} s")

    # ------------------------------------------------------------ the daemon

    def start_daemon(self, timeout: float = 60) -> None:
        runtime = self.data / "runtime.json"
        out = (self.root / "daemon.log").open("ab")
        env = {**os.environ, "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.pop("LOA_CONFIG", None)
        # daemon.py as it is, with every thread's stack dumped to its log on SIGUSR1 (a hang is a finding)
        boot = (
            "import faulthandler, runpy, signal, sys; faulthandler.register(signal.SIGUSR1, all_threads=True); "
            f"sys.argv = [{str(ROOT / 'daemon.py')!r}, '--config', {str(self.config)!r}]; "
            f"runpy.run_path({str(ROOT / 'daemon.py')!r}, run_name='__main__')"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", boot],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
            start_new_session=True,  # its own process group: daemon, mosquitto, espeak-ng
        )  # fmt: skip
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}; see {self.root / 'daemon.log'}")
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(runtime.read_text(encoding="utf-8"))
                if info.get("pid") == self.proc.pid:
                    self.api_url = info["api_url"]
                    return
            time.sleep(0.1)
        raise RuntimeError(f"daemon did not start in {timeout} s; see {self.root / 'daemon.log'}")

    def kill_daemon(self, group: bool) -> None:
        assert self.proc is not None
        if group:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def broker_pid(self) -> int | None:
        try:
            return int((self.data / "broker" / "mosquitto.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    # ------------------------------------------------------------ announcing, reading back

    def announce(self, text_: str, at: datetime, timeout: float = 90) -> tuple[int | None, str]:
        """(announcement id, "") when accepted, else (None, why)."""
        try:
            resp = httpx.post(
                f"{self.api_url}/api/v1/announcements",
                json={"text": text_, "zones": ["all"], "at": at.isoformat()},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}"
        if resp.status_code == 201:
            return int(resp.json()["id"]), ""
        try:
            code = resp.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = resp.text[:80]
        return None, f"{resp.status_code} {code}"

    def broadcasts(self, announcement_id: int) -> list[Broadcast]:
        with self.db.session() as s:
            rows = list(s.scalars(select(Broadcast).where(Broadcast.announcement_id == announcement_id)))
            s.expunge_all()
            return rows

    def stop(self) -> None:
        """The speakers (cleanly: their play logs end whole), then the daemon and its broker."""
        self._watching = False
        for s in self.speakers:
            s.stop()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(OSError):
            pid = self.broker_pid()
            if pid and Path(f"/proc/{pid}/cwd").resolve() == (self.data / "broker").resolve():
                os.kill(pid, signal.SIGKILL)  # only what this run left of its own

    def close(self) -> None:
        """`stop`, then what the environment holds: proxies, the tmpfs, the PostgreSQL schema."""
        self.stop()
        for s in self.speakers:
            s.proxy.close()
        if self.db_proxy:
            self.db_proxy.close()
        with contextlib.suppress(AttributeError):
            self.db.dispose()
        if self.mounted:
            self.mounted = False
            subprocess.run(["umount", "-l", str(self.data / "audio")], check=False)
        if self.schema:
            self.schema, schema = "", self.schema
            admin = create_engine(POSTGRES_URL)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


class PgAddress:
    """host and port of a PostgreSQL URL, and the same URL on another port (the proxy's)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.url = make_url(url)
        self.host = self.url.host or "127.0.0.1"
        self.port = self.url.port or 5432

    def with_port(self, port: int) -> str:
        return self.url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


# ---------------------------------------------------------------- trials


@dataclass
class Trial:
    scenario: str
    number: int
    announcements: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # announcements the API did not accept, and why
    unreachable: set[tuple[int, str]] = field(default_factory=set)  # (announcement, speaker) cut all along
    watch: dict[tuple[int, str], str] = field(default_factory=dict)  # (announcement, speaker) -> what was done
    on_time: set[tuple[int, str]] = field(default_factory=set)  # of those, the ones that must start on time
    notes: list[str] = field(default_factory=list)


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def fault_time(rng: random.Random, fire_at: float, end_at: float) -> float:
    """Half the trials within half a second of the dispatch instant, the rest anywhere around it."""
    if rng.random() < 0.5:
        return fire_at + rng.uniform(-0.2, 0.3)
    return rng.uniform(fire_at - 1.0, end_at)


def announce_one(env: Env, trial: Trial, in_s: float) -> tuple[int, Broadcast] | None:
    """One item to the whole commune, `in_s` from now; its id and one of its broadcasts (they share the
    start), or None if refused."""
    at = datetime.now(UTC) + timedelta(seconds=in_s)
    aid, why = env.announce(f"Thông báo thử lỗi {trial.scenario} lần {trial.number}, xin bà con chú ý.", at)
    if aid is None:
        trial.refused.append(why)
        say(f"  {trial.scenario} #{trial.number}: announcement refused: {why}")
        return None
    trial.announcements.append(aid)
    rows = env.broadcasts(aid)
    return aid, rows[0]


def _times(env: Env, b: Broadcast) -> tuple[float, float, float]:
    start = b.start_at.timestamp()
    return start - env.lead_s, start, start + b.duration_ms / 1000


def wait_for_state(env: Env, aid: int, sp: Speaker, states: tuple[str, ...], until: float) -> bool:
    """Until the speaker itself has acked its command of announcement `aid` with one of `states`, as its
    memory of ids (seen.json, written at every ack) says: the database hears of it later, through the
    broker and the daemon's writer, and on a busy machine that can be after the start."""
    command: str | None = None
    seen = Path(json.loads(sp.config.read_text(encoding="utf-8"))["state_dir"]) / "seen.json"
    while time.time() < until:
        if command is None:
            with env.db.session() as s:
                command = s.scalar(
                    select(Command.id)
                    .join(Delivery, Command.delivery_id == Delivery.id)
                    .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
                    .where(Broadcast.announcement_id == aid, Delivery.device_id == sp.id)
                )
        if command is not None:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                if (json.loads(seen.read_text(encoding="utf-8"))[command]["ack"] or {}).get("state") in states:
                    return True
        time.sleep(0.02)
    return False


def restart_daemon(env: Env, trial: Trial, attempts: int = 5) -> None:
    """Start the daemon again, as a service manager would: a start that fails is noted (with the end of
    its log: a failure to come back is a finding of its own) and tried again after a pause."""
    for attempt in range(1, attempts + 1):
        size = (env.root / "daemon.log").stat().st_size if (env.root / "daemon.log").exists() else 0
        try:
            env.start_daemon()
            env.restarts += 1
            return
        except RuntimeError as exc:
            with (env.root / "daemon.log").open("rb") as f:
                f.seek(size)
                tail = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if " ERROR " in ln][-2:]
            trial.notes.append(f"restart {attempt} failed: {exc}: {' | '.join(tail)[:400]}")
            say(f"  {trial.scenario} #{trial.number}: {trial.notes[-1]}")
            time.sleep(2.0)
    raise RuntimeError(f"the daemon did not come back after {attempts} starts")


def trial_daemon_kill(env: Env, trial: Trial, rng: random.Random, group: bool = False) -> None:
    got = announce_one(env, trial, env.lead_s + 2)
    if got is None:
        return
    _aid, b = got
    fire_at, _start, end_at = _times(env, b)
    t = fault_time(rng, fire_at, end_at)
    sleep_until(t)
    env.kill_daemon(group)
    trial.notes.append(f"killed {'group' if group else 'pid'} at {t - fire_at:+.2f} s from dispatch")
    time.sleep(rng.uniform(0, 1.0))
    restart_daemon(env, trial)
    sleep_until(end_at + 0.5)


def trial_group_kill(env: Env, trial: Trial, rng: random.Random) -> None:
    trial_daemon_kill(env, trial, rng, group=True)


def trial_broker_kill(env: Env, trial: Trial, rng: random.Random) -> None:
    snapshot = env.data / "broker" / "mosquitto.db"
    old = env.root / "mosquitto.db.old"
    if snapshot.exists() and not old.exists():
        shutil.copyfile(snapshot, old)  # the first snapshot seen: restored later, with its old messages
    got = announce_one(env, trial, env.lead_s + 2)
    if got is None:
        return
    _aid, b = got
    fire_at, _start, end_at = _times(env, b)
    t = fault_time(rng, fire_at, end_at)
    sleep_until(t)
    pid = env.broker_pid()
    if pid is None:
        trial.notes.append("no broker pid")
        return
    restore_old = old.exists() and rng.random() < 0.5
    os.kill(pid, signal.SIGKILL)
    if restore_old:
        with contextlib.suppress(OSError):
            shutil.copyfile(old, snapshot)  # in place: the file keeps its owner (mosquitto)
    old_note = ", old snapshot restored" if restore_old else ""
    trial.notes.append(f"mosquitto killed at {t - fire_at:+.2f} s from dispatch{old_note}")
    sleep_until(end_at + 0.5)


def trial_speaker_cut_before(env: Env, trial: Trial, rng: random.Random) -> None:
    sp = rng.choice(env.speakers)
    sp.proxy.cut()
    got = announce_one(env, trial, env.lead_s + 2)
    if got is None:
        sp.proxy.restore()
        return
    aid, b = got
    fire_at, start, end_at = _times(env, b)
    expires = b.expires_at.timestamp()
    back = rng.uniform(fire_at, expires + 3)  # some after the expiry: never reachable for this item
    trial.watch[(aid, sp.id)] = f"cut before dispatch, back at {back - start:+.1f} s from start"
    if back >= expires - 1:
        trial.unreachable.add((aid, sp.id))
    sleep_until(back)
    sp.proxy.restore()
    sleep_until(end_at + 0.5)


def trial_speaker_cut_after(env: Env, trial: Trial, rng: random.Random) -> None:
    sp = rng.choice(env.speakers)
    got = announce_one(env, trial, env.lead_s + 2)
    if got is None:
        return
    aid, b = got
    _fire_at, start, end_at = _times(env, b)
    if not wait_for_state(env, aid, sp, ("received", "downloaded"), start):
        trial.notes.append(f"{sp.id}: no received ack before the start")
    sp.proxy.cut()
    back = time.time() + rng.uniform(0.5, end_at - time.time() + 8)
    trial.watch[(aid, sp.id)] = f"cut after its command, back at {back - start:+.1f} s from start"
    sleep_until(back)
    sp.proxy.restore()
    sleep_until(end_at + 0.5)


def trial_speaker_reboot(env: Env, trial: Trial, rng: random.Random) -> None:
    sp = rng.choice(env.speakers)
    got = announce_one(env, trial, env.lead_s + 2)
    if got is None:
        return
    aid, b = got
    _fire_at, start, end_at = _times(env, b)
    if not wait_for_state(env, aid, sp, ("downloaded",), start):
        trial.notes.append(f"{sp.id}: not downloaded before the start; rebooted anyway")
    sp.kill()
    sp.start()
    trial.watch[(aid, sp.id)] = f"rebooted {start - time.time():.1f} s before its start"
    trial.notes.append(f"{sp.id} {trial.watch[(aid, sp.id)]}")
    trial.on_time.add((aid, sp.id))
    sleep_until(end_at + 0.5)


def trial_speech_hang(env: Env, trial: Trial, rng: random.Random) -> None:
    got = announce_one(env, trial, env.lead_s + 3)  # accepted before the engine hangs: must air on time
    if got is None:
        return
    aid, b = got
    _fire_at, start, end_at = _times(env, b)
    env.hang_flag.touch()
    hang_s = rng.uniform(2, 25)  # beyond the engine's 20-s timeout in some trials
    result: list[tuple[int | None, str]] = []
    late = datetime.now(UTC) + timedelta(seconds=hang_s + env.lead_s + 5)
    poster = threading.Thread(
        target=lambda: result.append(
            env.announce(f"Tin trong lúc máy đọc treo, lần {trial.number}.", late, timeout=120)
        ),
        daemon=True,
    )
    poster.start()
    worst = 0.0
    stop_at = time.time() + hang_s
    while time.time() < stop_at:  # the API still answers while a render hangs
        t = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{env.api_url}/api/v1/health", timeout=10)
        worst = max(worst, time.perf_counter() - t)
        time.sleep(0.5)
    env.hang_flag.unlink(missing_ok=True)
    poster.join(120)
    if result and result[0][0] is not None:
        trial.announcements.append(int(result[0][0]))
        trial.notes.append(f"hang {hang_s:.1f} s: the item posted meanwhile was accepted")
    else:
        why = result[0][1] if result else "no answer"
        trial.refused.append(why)
        trial.notes.append(f"hang {hang_s:.1f} s: the item posted meanwhile was refused ({why})")
    trial.notes.append(f"health at worst {worst:.2f} s")
    for sp in env.speakers:
        trial.watch[(aid, sp.id)] = "accepted before the hang"
        trial.on_time.add((aid, sp.id))
    sleep_until(max(end_at + 0.5, start))


def trial_disk_full(env: Env, trial: Trial, rng: random.Random) -> None:
    got = announce_one(env, trial, env.lead_s + 3)
    if got is None:
        return
    aid, b = got
    _fire_at, _start, end_at = _times(env, b)
    filler = env.data / "audio" / "filler.bin"
    with contextlib.suppress(OSError), filler.open("wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    late = datetime.now(UTC) + timedelta(seconds=env.lead_s + 4)
    aid2, why = env.announce(f"Tin khi đĩa đầy, lần {trial.number}: họp thôn lúc 19 giờ.", late)
    if aid2 is None:
        trial.refused.append(why)
        trial.notes.append(f"disk full: the item was refused ({why})")
    else:
        trial.announcements.append(aid2)
        trial.notes.append("disk full: the item was accepted")
    time.sleep(rng.uniform(1, 4))
    filler.unlink(missing_ok=True)
    for sp in env.speakers:
        trial.watch[(aid, sp.id)] = "accepted before the disk filled"
        trial.on_time.add((aid, sp.id))
    sleep_until(end_at + 0.5)


def trial_db_outage(env: Env, trial: Trial, rng: random.Random) -> None:
    assert env.db_proxy is not None
    got = announce_one(env, trial, env.lead_s + 2)
    if got is None:
        return
    _aid, b = got
    fire_at, _start, end_at = _times(env, b)
    t = fault_time(rng, fire_at, end_at)
    sleep_until(t)
    env.db_proxy.cut()
    time.sleep(10)
    env.db_proxy.restore()
    trial.notes.append(f"database cut for 10 s at {t - fire_at:+.2f} s from dispatch")
    sleep_until(end_at + 0.5)


TRIALS: dict[str, Callable[[Env, Trial, random.Random], None]] = {
    "daemon_kill": trial_daemon_kill,
    "group_kill": trial_group_kill,
    "broker_kill": trial_broker_kill,
    "speaker_cut_before": trial_speaker_cut_before,
    "speaker_cut_after": trial_speaker_cut_after,
    "speaker_reboot": trial_speaker_reboot,
    "speech_hang": trial_speech_hang,
    "disk_full": trial_disk_full,
    "db_outage": trial_db_outage,
}


# ---------------------------------------------------------------- judging


def settle(env: Env, trials: list[Trial], timeout: float) -> bool:
    """Until every accepted airing's validity has passed and its deliveries are final (a `playing` one is
    closed by the daemon PLAYING_GRACE_S after the expiry), or `timeout`."""
    ids = [a for t in trials for a in t.announcements]
    if not ids:
        return True
    deadline = time.time() + timeout
    while time.time() < deadline:
        with env.db.session() as s:
            last_expiry = s.scalar(select(func.max(Broadcast.expires_at)).where(Broadcast.announcement_id.in_(ids)))
            open_ = s.scalar(
                select(func.count()).select_from(Delivery).join(Broadcast, Delivery.broadcast_id == Broadcast.id)
                .where(Broadcast.announcement_id.in_(ids), Delivery.status.not_in(list(FINAL_DELIVERY)))
            )  # fmt: skip
            planned = s.scalar(
                select(func.count())
                .select_from(Broadcast)
                .where(
                    Broadcast.announcement_id.in_(ids),
                    Broadcast.status.in_([BroadcastStatus.PLANNED, BroadcastStatus.DISPATCHED]),
                )
            )
        expired = last_expiry is None or time.time() > last_expiry.timestamp() + 2
        if expired and not open_ and not planned:
            return True
        time.sleep(1.0)
    say(f"settle: gave up after {timeout:.0f} s with deliveries still open or broadcasts still planned")
    return False


def judge(env: Env, trials: list[Trial]) -> dict[str, dict[str, Any]]:
    speakers_in: dict[str, list[str]] = defaultdict(list)
    for sp in env.speakers:
        speakers_in[sp.village].append(sp.id)
    ids = [a for t in trials for a in t.announcements]
    scenario_of = {a: t.scenario for t in trials for a in t.announcements}
    with env.db.session() as s:
        bcasts = list(s.scalars(select(Broadcast).where(Broadcast.announcement_id.in_(ids)))) if ids else []
        bids = [b.id for b in bcasts]
        deliveries = {
            (d.broadcast_id, d.device_id): d
            for d in (s.scalars(select(Delivery).where(Delivery.broadcast_id.in_(bids))) if bids else [])
        }
        cmd_of: dict[str, tuple[int, str]] = {}
        for cid, device_id, bid in s.execute(
            select(Command.id, Command.device_id, Delivery.broadcast_id).join(
                Delivery, Command.delivery_id == Delivery.id
            )
        ):
            cmd_of[cid] = (bid, device_id)
        s.expunge_all()
    plays: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    unknown = 0
    for sp in env.speakers:
        events = sp.events()
        ended = {e["cmd"] for e in events if e["ev"] == "end"}
        cut = {e["cmd"] for e in events if e["ev"] == "cut"}
        for e in events:
            if e["ev"] != "start":
                continue
            key = cmd_of.get(e["cmd"])
            if key is None:
                unknown += 1  # a play of a command the database never issued
                continue
            plays[key].append({**e, "whole": e["cmd"] in ended and e["cmd"] not in cut})
    out: dict[str, dict[str, Any]] = {}
    for t in trials:
        r = out.setdefault(t.scenario, Counter())
        r["trials"] += 1
        r["announcements"] += len(t.announcements)
        r["refused"] += len(t.refused)
    details: dict[str, list[str]] = defaultdict(list)
    unreachable = {k for t in trials for k in t.unreachable}
    watched = {k: v for t in trials for k, v in t.watch.items()}
    on_time = {k for t in trials for k in t.on_time}
    for b in bcasts:
        assert b.announcement_id is not None
        sc = scenario_of[b.announcement_id]
        r = out[sc]
        r["airings"] += 1
        start, expires = b.start_at.timestamp(), b.expires_at.timestamp()
        for device in speakers_in.get(b.zone_id, []):
            r["deliveries"] += 1
            p = plays.get((b.id, device), [])
            d = deliveries.get((b.id, device))
            state = d.status.value if d is not None else f"none (broadcast {b.status.value})"
            reason = (d.reason if d is not None else b.reason) or ""
            where = f"{sc}: announcement {b.announcement_id} broadcast {b.id} {device}"
            if len(p) > 1:
                r["duplicated"] += 1
                details[sc].append(f"{where}: played {len(p)} times")
            for play in p:
                if play["at"] > expires:
                    r["stale"] += 1
                    details[sc].append(f"{where}: started {play['at'] - expires:.1f} s after its expiry")
            if p:
                r["played"] += 1
                lateness = p[0]["at"] - start
                if (b.announcement_id, device) in on_time and lateness > ON_TIME_S:
                    r["late"] += 1
                    details[sc].append(f"{where} ({watched[(b.announcement_id, device)]}): {lateness:.2f} s late")
                elif (b.announcement_id, device) in watched and lateness > ON_TIME_S:
                    what = watched[(b.announcement_id, device)]
                    details[sc].append(f"{where} ({what}): {lateness:.1f} s late, as its fault made it (not counted)")
                if p[0]["whole"] and (d is None or d.status.value != "done"):
                    r["misrecorded"] += 1
                    details[sc].append(f"{where}: heard whole, recorded {state} {reason}".rstrip())
                continue
            reported = (d is not None and d.status.value in REPORTED and bool(reason)) or (
                d is None and b.status.value in ("missed", "cancelled", "done") and bool(b.reason)
            )
            if d is not None and d.status.value == "done":
                r["misrecorded"] += 1
                details[sc].append(f"{where}: recorded done, never played")
                reported = False
            if not reported:
                r["lost"] += 1
                details[sc].append(f"{where}: not played, recorded {state} {reason}".rstrip())
            elif (b.announcement_id, device) not in unreachable:
                r["unheard"] += 1
                details[sc].append(f"{where}: not played, reported {state}: {reason}")
    if unknown:
        out.setdefault("unattributed", Counter())["duplicated"] += unknown
    result: dict[str, dict[str, Any]] = {}
    for sc, r in out.items():
        keys = ("trials", "announcements", "refused", "airings", "deliveries", "played", "lost", "duplicated",
                "stale", "misrecorded", "unheard", "late")  # fmt: skip
        result[sc] = {k: int(r.get(k, 0)) for k in keys}
        result[sc]["details"] = details.get(sc, [])[:20]
        result[sc]["notes"] = [f"#{t.number}: {n}" for t in trials if t.scenario == sc for n in t.notes][:40]
    return result


# ---------------------------------------------------------------- running


def tmpfs_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root for a tmpfs of its own (mount -t tmpfs); not simulated otherwise"
    with tempfile.TemporaryDirectory() as probe:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], capture_output=True)
        if ok.returncode != 0:
            return f"cannot mount a tmpfs: {ok.stderr.decode(errors='replace').strip()[:100]}"
        subprocess.run(["umount", probe], check=False)
    return None


@contextlib.contextmanager
def environment(root: Path, **kwargs: Any) -> Iterator[Env]:
    env = Env(root, **kwargs)
    try:
        env.setup()
        yield env
    finally:
        env.close()


def run_env(root: Path, plan: list[tuple[str, int]], rng: random.Random, **kwargs: Any) -> dict[str, Any]:
    trials: list[Trial] = []
    with environment(root, **kwargs) as env:
        for scenario, n in plan:
            for k in range(1, n + 1):
                trial = Trial(scenario, k)
                trials.append(trial)
                t0 = time.monotonic()
                try:
                    TRIALS[scenario](env, trial, rng)
                except Exception as exc:  # a harness failure is reported, not hidden
                    trial.notes.append(f"harness error: {type(exc).__name__}: {exc}")
                    say(f"  {scenario} #{k}: harness error {exc!r}")
                    if env.proc is None or env.proc.poll() is not None:
                        restart_daemon(env, trial)
                say(f"{scenario} #{k}: {'; '.join(trial.notes) or 'done'} ({time.monotonic() - t0:.1f} s)")
        env.hang_flag.unlink(missing_ok=True)
        say("waiting for every airing's validity to pass and its deliveries to close")
        if not settle(env, trials, timeout=env.validity_s + PLAYING_GRACE_S + 30) and env.proc is not None:
            os.kill(env.proc.pid, signal.SIGUSR1)  # every thread's stack into daemon.log
            time.sleep(1.0)
            say(f"the daemon's threads are dumped at the end of {env.root / 'daemon.log'}")
        env.stop()  # agents stopped cleanly first: their play logs are complete
        return judge(env, trials)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=None, help="trials per scenario (default: 20 for the two kill "
                   "scenarios, 5 for the others)")  # fmt: skip
    p.add_argument("--scenarios", default=",".join(ALL_SCENARIOS), help="comma-separated (default: all)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="one trial of daemon_kill and of speaker_reboot (the suite's)")
    p.add_argument("--keep", action="store_true", help="keep the working folder (logs) and print its path")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped bench still cleans up its daemon
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    if args.quick:
        plan = list(QUICK.items())
    else:
        wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        bad = [s for s in wanted if s not in TRIALS]
        if bad:
            p.error(f"unknown scenarios {bad}; known: {', '.join(ALL_SCENARIOS)}")
        plan = [(s, args.trials or (20 if s in KILL_SCENARIOS else 5)) for s in wanted]
    skipped: dict[str, str] = {}
    if any(s == "disk_full" for s, _ in plan) and (why := tmpfs_problem()):
        skipped["disk_full"] = why
    if any(s == "db_outage" for s, _ in plan) and (why := postgres_problem(POSTGRES_URL)):
        skipped["db_outage"] = why
    plan = [(s, n) for s, n in plan if s not in skipped]
    for s, why in skipped.items():
        say(f"{s}: skipped: {why}")
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="loa-faults-"))
    quick = {"lead_s": 4.0, "validity_s": 10.0} if args.quick else {}
    per: dict[str, dict[str, Any]] = {}
    try:
        sqlite_plan = [(s, n) for s, n in plan if s != "db_outage"]
        if sqlite_plan:
            per |= run_env(tmp / "sqlite", sqlite_plan, rng, tmpfs_audio="disk_full" in dict(sqlite_plan), **quick)
        if any(s == "db_outage" for s, _ in plan):
            per |= run_env(tmp / "postgresql", [p_ for p_ in plan if p_[0] == "db_outage"], rng, postgres=True,
                           **quick)  # fmt: skip
    finally:
        if args.keep:
            say(f"working folder kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    totals = Counter[str]()
    for r in per.values():
        totals.update({k: v for k, v in r.items() if isinstance(v, int)})
    print_table(per)
    result = {
        "trials": totals["trials"],
        "airings": totals["airings"],
        "deliveries": totals["deliveries"],
        "lost": totals["lost"],
        "duplicated": totals["duplicated"],
        "stale": totals["stale"],
        "misrecorded": totals["misrecorded"],
        "unheard": totals["unheard"],
        "late": totals["late"],
        "refused": totals["refused"],
        "scenarios": per,
        "skipped": skipped,
        "seed": seed,
        "duration_s": round(time.monotonic() - t0, 1),
        "goal": "lost = duplicated = stale = 0",
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["lost"] == result["duplicated"] == result["stale"] == 0 else 1


def print_table(per: dict[str, dict[str, Any]]) -> None:
    cols = ("trials", "airings", "deliveries", "played", "lost", "duplicated", "stale", "misrecorded", "unheard",
            "late", "refused")  # fmt: skip
    print(f"{'scenario':<20}" + "".join(f"{c:>12}" for c in cols))
    for sc, r in per.items():
        print(f"{sc:<20}" + "".join(f"{r.get(c, 0):>12}" for c in cols))
    for r in per.values():
        for line in r.get("details", []):
            print(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
