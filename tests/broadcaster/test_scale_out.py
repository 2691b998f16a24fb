"""Three daemons on one PostgreSQL schema and one Mosquitto (docs/deployment.md): one of them leads, the
leader is killed (SIGKILL) in the middle of a short "day" of announcements, another takes the lead, and
every airing plays exactly once on every speaker, by what the speakers played.

What this shows beyond the unit tests (tests/broadcaster/runtime/test_leader.py): the schema is migrated
by `loa db upgrade` alone; items are posted to followers and rendered by them into the shared audio
folder, fired by the leader, and fetched by the speakers through a reverse proxy that hands each download
to any daemon's audio listener; acks reach whichever daemon the shared subscription hands them to; the
followers' API answers throughout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Broadcast, BroadcastStatus, Command, Database, Delivery, DeliveryStatus, Device
from tests.broadcaster.harness import ROOT, DaemonProcess, played, village_fleet, wait_for, write_config

pytestmark = pytest.mark.slow

SPEAKERS = ("thon-1-loa", "thon-2-loa")
ITEMS = 6
FIRST_S, EVERY_S = 8.0, 3.5  # the "day": an item every EVERY_S seconds from FIRST_S on
KILL_AFTER = 2  # the leader dies once this many items are dispatched


class AudioProxy:
    """The reverse proxy in front of the daemons' audio listeners, as small as it gets: each GET goes to the
    next daemon in turn, or to the one after it when that one does not answer (a proxy's health check)."""

    def __init__(self) -> None:
        self.upstreams: list[str] = []
        self.served: list[tuple[str, str]] = []  # (path, the daemon that served it)
        self._turn = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                for _ in range(len(proxy.upstreams)):
                    proxy._turn += 1
                    upstream = proxy.upstreams[proxy._turn % len(proxy.upstreams)]
                    try:
                        r = httpx.get(upstream + self.path, timeout=10)
                    except httpx.HTTPError:
                        continue
                    self.send_response(r.status_code)
                    self.send_header("Content-Type", r.headers.get("content-type", "application/octet-stream"))
                    self.send_header("Content-Length", str(len(r.content)))
                    self.end_headers()
                    self.wfile.write(r.content)
                    if r.status_code == 200:
                        proxy.served.append((self.path, upstream))
                    return
                self.send_error(502)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def _cluster_config(tmp: Path, name: str, database_url: str, broker_url: str, audio_url: str) -> Path:
    data = tmp / name
    path = write_config(tmp / f"{name}.toml", data, database_url, broker_url, lead_s=2, reconcile_s=0.2)
    lines = (
        path.read_text(encoding="utf-8")
        .replace("[general]\n", f'[general]\naudio_dir = "{tmp / "shared-audio"}"\n')
        .replace("audio_port = 0\n", f'audio_port = 0\naudio_url = "{audio_url}"\n')
    )
    path.write_text(lines + f'[cluster]\nenabled = true\ninstance = "{name}"\n', encoding="utf-8")
    return path


def _leaders(logs: dict[str, Path]) -> set[str]:
    """The daemons that have said they lead (each says it when it takes the lead)."""
    return {n for n, p in logs.items() if p.exists() and f"instance {n} leads" in p.read_text(errors="replace")}


def _dispatched(db: Database) -> int:
    with db.session() as s:
        return (
            s.scalar(
                select(func.count(func.distinct(Broadcast.announcement_id))).where(
                    Broadcast.status != BroadcastStatus.PLANNED
                )
            )
            or 0
        )


def _online(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Device).where(Device.online.is_(True))) or 0


def test_three_daemons_one_leader_killed_mid_day_every_airing_once(
    tmp_path: Path, broker: ManagedBroker, postgres_url: str
) -> None:
    # The one explicit migration step, before any daemon starts.
    env = {**os.environ, "LOA_DATABASE_URL": postgres_url, "LOA_GENERAL_DATA_DIR": str(tmp_path / "cli")}
    upgraded = subprocess.run(
        [sys.executable, "-m", "broadcaster.cli", "db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert upgraded.returncode == 0, upgraded.stderr

    agents, _signer = village_fleet(tmp_path, postgres_url, broker.url)  # key made in tmp/data/keys
    names = ("data", "d1", "d2")
    for name in names[1:]:  # every daemon of a cluster signs with the one key devices trust
        (tmp_path / name / "keys").mkdir(parents=True)
        shutil.copy(tmp_path / "data" / "keys" / "daemon-ed25519.pem", tmp_path / name / "keys")
    proxy = AudioProxy()  # what the speakers are given as `[http] audio_url`
    logs = {n: tmp_path / f"{n}.log" for n in names}
    daemons = {
        n: DaemonProcess(_cluster_config(tmp_path, n, postgres_url, broker.url, proxy.url), tmp_path / n, logs[n])
        for n in names
    }
    db = Database(postgres_url)
    try:
        t0 = time.monotonic()
        starting = [threading.Thread(target=d.start) for d in daemons.values()]  # together, as after a power cut
        for t in starting:
            t.start()
        for t in starting:
            t.join()
        assert all(d.api_url for d in daemons.values()), "a daemon did not start"
        proxy.upstreams = [d.audio_url for d in daemons.values()]
        leaders = wait_for(lambda: _leaders(logs), 10, "a daemon to lead")
        assert len(leaders) == 1, leaders  # one leads, the others follow
        (leader,) = leaders
        followers = [n for n in names if n != leader]
        wait_for(lambda: _online(db) == 4, 20, "four devices online")
        print(f"\nthree daemons up ({leader} leads) and four devices online in {time.monotonic() - t0:.1f} s")

        # The day: items posted to the followers (rendered there, into the shared folder).
        day0 = datetime.now(UTC)
        items = []
        for i in range(ITEMS):
            at = day0 + timedelta(seconds=FIRST_S + i * EVERY_S)
            follower = daemons[followers[i % 2]]
            r = follower.post(
                "/api/v1/announcements",
                {"text": f"Thông báo số {i + 1}.", "zones": ["all"], "at": at.isoformat(), "title": f"Tin {i + 1}"},
            )
            assert r.status_code == 201, r.text
            items.append(r.json())
        assert [it["state"] for it in items] == ["scheduled"] * ITEMS, [it["state"] for it in items]

        wait_for(lambda: _dispatched(db) >= KILL_AFTER, 30, "the first items dispatched")
        killed_at = time.monotonic()
        os.kill(daemons[leader].proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
        daemons[leader].proc.wait(5)  # type: ignore[union-attr]
        new = wait_for(lambda: _leaders({n: logs[n] for n in followers}), 30, "a new leader")
        failover_s = time.monotonic() - killed_at
        print(f"\nfailover: {new} leads {failover_s:.1f} s after the leader was killed")
        assert failover_s < 30 and len(new) == 1

        for name in followers:  # the follower's and the new leader's API answers
            assert httpx.get(daemons[name].api_url + "/api/v1/health", timeout=10).status_code == 200

        last = day0 + timedelta(seconds=FIRST_S + (ITEMS - 1) * EVERY_S + 5)
        wait_for(lambda: datetime.now(UTC) > last, 60, "the end of the day")

        shas = {it["audio"]["sha256"]: it["id"] for it in items}
        for speaker in SPEAKERS:

            def heard(speaker: str = speaker) -> Counter[int]:
                files = [p["file"] for p in played(tmp_path / "fleet" / speaker)]
                return Counter(shas.get(f.split("-")[-1].split(".")[0], -1) for f in files)

            plays = wait_for(lambda: len(heard()) == ITEMS and heard(), 15, f"every item on {speaker}")
            assert plays == Counter({it["id"]: 1 for it in items}), (speaker, plays)  # each once, nothing else

        # Every file was rendered by a follower and served through the proxy by any daemon: some by one
        # that did not render them, from the shared folder.
        rendered_by = {it["audio"]["sha256"]: followers[i % 2] for i, it in enumerate(items)}
        by_name = {d.audio_url: n for n, d in daemons.items()}
        downloads = [(path.split("/")[-1].split(".")[0], by_name[up]) for path, up in proxy.served]
        assert {sha for sha, _ in downloads} == set(rendered_by)
        assert any(rendered_by[sha] != server for sha, server in downloads), downloads

        with db.session() as s:
            # One command per delivery, one delivery per (airing, device): dispatched once, whoever led.
            per_delivery = s.execute(select(Command.delivery_id, func.count()).group_by(Command.delivery_id)).all()
            assert per_delivery and all(n == 1 for _, n in per_delivery)

        def recorded() -> bool:  # the acks reached the database through the daemons still alive
            with db.session() as s:
                states = s.scalars(select(Delivery.status).join(Device).where(Device.id.in_(SPEAKERS))).all()
            return len(states) == ITEMS * len(SPEAKERS) and all(st is DeliveryStatus.DONE for st in states)

        wait_for(recorded, 30, "every speaker's play recorded done")
    finally:
        for d in daemons.values():
            d.stop()
        agents.stop()
        proxy.stop()
        db.dispose()
