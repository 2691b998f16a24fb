"""The managed Mosquitto lives and dies with the process that started it, and keeps its port (#15).

A broker that outlived a killed daemon kept the provisioned speakers while the next daemon's broker
listened on another port: every item dispatched after the restart was never heard.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from broadcaster.broker import managed
from broadcaster.broker.managed import PID_FILE, BrokerSettings, ManagedBroker, _proc_stat
from broadcaster.errors import LoaError
from tests.broadcaster.harness import ROOT, wait_for


def _running(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


STARTER = """
import sys, threading, time
from pathlib import Path
from broadcaster.broker.managed import BrokerSettings, ManagedBroker
broker = ManagedBroker(Path(sys.argv[1]), BrokerSettings(port=0))
# started from a thread that ends at once: the kernel's parent-death signal follows the thread that
# forked, so the broker must not be forked by it
starter = threading.Thread(target=broker.start)
starter.start()
starter.join()
print(broker.pid, flush=True)
time.sleep(60)
"""


def test_the_broker_ends_when_its_daemon_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "broker")], stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    assert proc.stdout is not None
    try:
        pid = int(proc.stdout.readline())
        assert _running(pid)
        threading.Event().wait(0.5)  # the starting thread is long gone: the broker is not
        assert _running(pid)
    finally:
        proc.kill()  # as the out-of-memory killer would
        proc.wait()
    wait_for(lambda: not _running(pid), 5, "the broker to end with the process that started it")
    assert (tmp_path / "broker" / "mosquitto.db").exists()  # it was asked to end (SIGTERM): its queue is saved


def test_a_broker_left_behind_is_ended_and_its_port_taken_back(tmp_path: Path) -> None:
    """Were one left anyway (a daemon stopped and never continued, say), the next start in the folder
    ends it by its pid file and listens where the devices were told to."""
    state = tmp_path / "broker"
    first = ManagedBroker(state, BrokerSettings(port=0))
    first.start()
    first.stop_restarting()  # forgotten, as by a daemon that is gone: nobody restarts or stops it
    orphan, port = first.pid, first.port
    assert orphan is not None
    second = ManagedBroker(state, BrokerSettings(port=0))
    second.start()
    try:
        assert second.port == port and second.pid != orphan
        assert not _running(orphan)
    finally:
        second.stop()


def test_a_broker_in_another_folder_is_never_taken_for_ours(tmp_path: Path) -> None:
    """The pid file names a live mosquitto with our very command line (`-c mosquitto.conf`), but it runs
    in another folder: someone else's, not ended."""
    other = ManagedBroker(tmp_path / "other", BrokerSettings(port=0))
    other.start()
    try:
        assert other.pid is not None
        stat = _proc_stat(other.pid)
        assert stat is not None
        ours = tmp_path / "ours"
        ours.mkdir()
        (ours / PID_FILE).write_text(f"{other.pid} {stat[1]}\n")
        assert ManagedBroker(ours, BrokerSettings(port=0)).end_orphan() is None
        assert _running(other.pid)
    finally:
        other.stop()


def test_the_devices_port_held_by_another_program_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moving to a free port would leave every provisioned device dialling the other program."""
    monkeypatch.setattr(managed, "PORT_WAIT_S", 0.3)
    state = tmp_path / "broker"
    first = ManagedBroker(state, BrokerSettings(port=0))
    first.start()
    port = first.port
    first.stop()
    with socket.create_server(("127.0.0.1", port)):
        with pytest.raises(LoaError) as refused:
            ManagedBroker(state, BrokerSettings(port=0)).start()
        assert refused.value.key == "broker_port_taken"
        assert f"127.0.0.1:{port}" in refused.value.message("en")
    again = ManagedBroker(state, BrokerSettings(port=0))  # freed: taken back
    again.start()
    try:
        assert again.port == port
    finally:
        again.stop()
    assert not any(_running(p) for p in (first.pid, again.pid) if p)


def test_a_process_that_cannot_signal_is_never_signalled(tmp_path: Path) -> None:
    """A stale pid file that names this very test (a reused pid) changes nothing."""
    state = tmp_path / "broker"
    state.mkdir()
    stat = _proc_stat(os.getpid())
    assert stat is not None
    (state / PID_FILE).write_text(f"{os.getpid()} {stat[1]}\n")  # alive, right start time, not mosquitto
    assert ManagedBroker(state, BrokerSettings(port=0)).end_orphan() is None
