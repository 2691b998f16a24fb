"""The daemon's processes and files (docs/security.md, "Processes and files"): however it is stopped, it
leaves no broker of its own behind, or finds it again; and what it writes is for its user alone."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from broadcaster.db import Database
from broadcaster.runtime.datadir import keep_private
from tests.broadcaster.harness import DaemonProcess, wait_for, write_config


def brokers_of(state_dir: Path) -> list[int]:
    """The mosquitto processes running in this broker state folder (the managed broker runs inside it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = (entry / "cwd").resolve(strict=True)
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if cwd == state_dir.resolve() and argv0.endswith(b"mosquitto") and state != "Z":
            found.append(int(entry.name))
    return sorted(found)


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    yield data
    for pid in brokers_of(data / "broker"):  # only what a failing test left of its own
        os.kill(pid, signal.SIGKILL)


def managed_config(tmp_path: Path, data: Path) -> Path:
    """A daemon that starts and watches its own Mosquitto, on free ports."""
    return write_config(tmp_path / "loa.toml", data, f"sqlite:///{data / 'loa.sqlite3'}", "")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_daemons_process_group_leaves_no_broker_behind(
    tmp_path: Path, data: Path, sig: signal.Signals
) -> None:
    """Mosquitto gets the signal too and exits first; the watcher used to start it again while the daemon
    was stopping, and that one outlived the daemon (the next start then moved to another port)."""
    daemon = DaemonProcess(managed_config(tmp_path, data), data, tmp_path / "daemon.log").start(own_group=True)
    assert daemon.proc is not None
    assert len(brokers_of(data / "broker")) == 1
    os.killpg(daemon.proc.pid, sig)  # as systemd, a terminal's Ctrl-C or `kill -TERM -PGID` send it
    assert daemon.proc.wait(timeout=30) == 0
    assert brokers_of(data / "broker") == []  # the daemon is gone: nothing can start one any more
    assert (tmp_path / "daemon.log").read_text().count("managed broker listening") == 1  # never restarted


def test_a_reused_pid_is_never_taken_for_the_orphan(tmp_path: Path, data: Path) -> None:
    """The pid file names a process by pid and start time: a stale file never makes the daemon signal
    someone else's process."""
    from broadcaster.broker.managed import PID_FILE, BrokerSettings, ManagedBroker

    state = data / "broker"
    state.mkdir(parents=True)
    (state / PID_FILE).write_text(f"{os.getpid()} 1\n")  # this very test process, with a wrong start time
    assert ManagedBroker(state, BrokerSettings(port=0)).end_orphan() is None


def _modes(root: Path) -> dict[str, int]:
    found = {str(root): stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_what_the_daemon_writes_is_for_its_user_alone(tmp_path: Path, data: Path) -> None:
    """The database (with every device's password hash), the audio, the signing key, the broker's state
    and the simulated villages' device configs (with their passwords): no bit for group or others."""
    config = managed_config(tmp_path, data)
    config.write_text(config.read_text().replace("villages = 0", 'villages = 1\nsink = "null"'))
    daemon = DaemonProcess(config, data, tmp_path / "daemon.log").start()
    db = Database(f"sqlite:///{data / 'loa.sqlite3'}")
    try:
        from sqlalchemy import func, select

        from broadcaster.db import Device

        def online() -> bool:
            with db.session() as s:
                return s.scalar(select(func.count()).select_from(Device).where(Device.online.is_(True))) == 2

        wait_for(online, 30, "the simulated village's devices online (their state written)")
    finally:
        daemon.stop()
        db.dispose()
    modes = _modes(data)
    for expected in ("loa.sqlite3", "keys/daemon-ed25519.pem", "broker/passwd", "broker/mosquitto.db", "audio"):
        assert expected in modes, sorted(modes)
    assert any(name.startswith("sim/") and name.endswith(".json") for name in modes)
    loose = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert loose == {}


def test_folders_from_before_are_closed_and_an_old_database_file_too(tmp_path: Path) -> None:
    data = tmp_path / "old"
    (data / "keys").mkdir(parents=True, mode=0o755)
    data.chmod(0o755)
    (data / "keys").chmod(0o755)
    old_db = data / "loa.sqlite3"
    old_db.touch(mode=0o644)
    old_db.chmod(0o644)
    umask = os.umask(0o022)
    try:
        keep_private(data)
        assert os.umask(0o022) == 0o077  # what the daemon writes from now on
    finally:
        os.umask(umask)
    assert stat.S_IMODE(data.stat().st_mode) & 0o007 == 0
    assert stat.S_IMODE((data / "keys").stat().st_mode) & 0o007 == 0
    Database(f"sqlite:///{old_db}").dispose()  # whoever opens it first (the daemon, or `loa`)
    assert stat.S_IMODE(old_db.stat().st_mode) == 0o600
    fresh = tmp_path / "fresh" / "loa.sqlite3"
    umask = os.umask(0o022)  # as `loa` runs, in an ordinary shell
    db = Database(f"sqlite:///{fresh}")
    try:
        db.upgrade()
        with db.engine.connect():  # while a connection is open, SQLite keeps its -wal and -shm files
            journal = {p.name: stat.S_IMODE(p.stat().st_mode) for p in fresh.parent.iterdir()}
    finally:
        db.dispose()
        os.umask(umask)
    assert journal == {"loa.sqlite3": 0o600, "loa.sqlite3-wal": 0o600, "loa.sqlite3-shm": 0o600}
    assert stat.S_IMODE(fresh.parent.stat().st_mode) == 0o700
