"""A Mosquitto the daemon starts, configures and keeps alive when no broker URL is given.

Mosquitto (not an embedded Python broker) because it speaks MQTT 5, enforces ACLs on delivery and
was 4–7× faster than amqtt here. Its persistence is kept, but the database outbox stays the truth:
after a SIGKILL Mosquitto restores an old snapshot, and it silently drops QoS 1 messages past
max_queued_messages.

The broker is the part of loa that faces every device, so it runs with as little as it needs: started
by root, it drops to the `mosquitto` user, and owns only its own state folder (docs/security.md,
"Processes and files"). It runs inside that folder and its config names its files relative to it, so
it needs no way through the folders above (a data folder under /root, or pytest's 0700 temp folders).
The broker lives and dies with its daemon (#15). The kernel ends it when the daemon dies however it dies
(SIGKILL, the out-of-memory killer): it is started with a parent-death signal (PR_SET_PDEATHSIG, SIGTERM,
so it saves its queue first). Were one left anyway (a daemon stopped with SIGSTOP and never continued, a
kernel without prctl), its pid file lets the next start find it and end it. The port is kept too: the
first port it listened on is written in its state folder, and every later start takes that one again,
since every provisioned device was told it; if another program holds it, the daemon refuses to start
rather than move the devices' broker somewhere they will never look.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broadcaster.errors import LoaError

log = logging.getLogger(__name__)

CONFIG_FILE = "mosquitto.conf"
PID_FILE = "mosquitto.pid"  # "<pid> <start time in clock ticks>", written by the daemon, not by mosquitto
# {"port": the port it listened on, "configured": the port the config asked for then}: devices hold the first.
PORT_FILE = "port.json"
PORT_WAIT_S = 5.0  # how long a start waits for its own port, held by a broker that is still exiting
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
BROKER_USER = "mosquitto"  # made by Debian's mosquitto package; the broker runs as it when loa is root
# Config keys naming a file mosquitto reads after dropping root (at start, and again on SIGHUP).
_READ_AS_USER = ("password_file", "acl_file", "psk_file", "cafile", "certfile", "keyfile", "crlfile", "dhparamfile")


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(host: str, preferred: int, fallback: int = 0) -> int:
    """The preferred port when free, else the one used last time (devices were told that one),
    else one the kernel hands out; 0 always means 'any'."""
    for port in (preferred, fallback):
        if port and port_is_free(host, port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    binary: str = "mosquitto"
    # Raised far above Mosquitto's default of 1000 so a bulletin to a big commune is not dropped
    # for a speaker that was briefly offline; the outbox re-sends anyway.
    max_queued_messages: int = 100_000
    max_queued_bytes: int = 0
    # Lines appended after the main listener, so listener options (use_username_as_clientid) apply to it;
    # broadcaster.broker.access.broker_files returns the ones that turn on passwords and ACLs.
    extra_lines: list[str] = field(default_factory=list)
    # The port of the previous run, tried when `port` is taken: provisioned devices know that one.
    fallback_port: int = 0
    # The user mosquitto runs as when started by root; None: `mosquitto` for a managed broker, and for
    # config files written for someone else's Mosquitto (managed=False), the user who wrote them.
    user: str | None = None
    # False when only the files are written, for a Mosquitto started by someone else (`loa broker config`):
    # paths are then absolute, since that broker does not run inside the state folder.
    managed: bool = True


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc/PID/stat, readable for anyone's process; None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # the command name before it may hold spaces and ')'
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _alive(pid: int, started: str) -> bool:
    """That very process (a pid may be reused; its start time is not) is still running, not a zombie."""
    stat = _proc_stat(pid)
    return stat is not None and stat[1] == started and stat[0] not in ("Z", "X")


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the kernel send `sig` to the child when its parent dies, or None where
    prctl is not to be had (not Linux). Everything it calls is looked up here, before the fork: in the
    child of a threaded daemon it must not import, log or take a lock another thread may have held. The
    kernel watches the *thread* that forked, so `ManagedBroker` forks from its watcher thread, which lives
    as long as the broker should. It runs after Popen's change of user (CPython applies `user=` before
    `preexec_fn`): a change of user clears the setting, which is why root hands mosquitto its user itself
    instead of letting mosquitto drop to it. If the daemon died before the call, the child ends itself."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent, getppid, exit_now, signum = os.getpid(), os.getppid, os._exit, int(sig)

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if getppid() != parent:
            exit_now(1)

    return hook


class ManagedBroker:
    """Owns one mosquitto process: writes its config, starts it, restarts it if it dies."""

    def __init__(self, state_dir: Path, settings: BrokerSettings) -> None:
        self.state_dir = state_dir
        self.settings = settings
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        # Held while a process is started or the broker is being stopped: a respawn that raced the
        # daemon's shutdown used to start a mosquitto nobody stopped, and the next start moved port.
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"mqtt://{self.settings.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def run_as(self) -> str | None:
        """Whom mosquitto runs as, when that is not whoever starts it: only root changes user. A managed
        broker drops to `mosquitto` (its files are handed to it, see `_hand_over`); config files for
        someone else's Mosquitto keep the writer's user unless told otherwise (`--owner`)."""
        if self.settings.user:
            return self.settings.user
        if os.geteuid() != 0:
            return None  # mosquitto only changes user when started by root: it stays the daemon's
        if not self.settings.managed:
            return "root"
        try:
            pwd.getpwnam(BROKER_USER)
        except KeyError:
            raise RuntimeError(
                f"loa runs as root, and the broker must not: there is no user '{BROKER_USER}' to run it as "
                f"(sudo adduser --system --group {BROKER_USER}), or run loa as an ordinary user"
            ) from None
        return BROKER_USER

    def user_line(self) -> list[str]:
        user = self.run_as()
        return [f"user {user}"] if user else []

    def _local(self, line: str) -> str:
        """A managed broker runs inside its state folder: a path in it is written relative to it."""
        if not self.settings.managed:
            return line
        key, _, value = line.partition(" ")
        root = f"{self.state_dir.resolve()}/"
        return f"{key} {value[len(root):]}" if value.startswith(root) else line

    def config_text(self) -> str:
        """The whole mosquitto.conf; before `start` the listener is on the configured port."""
        s = self.settings
        port = self.port or s.port
        lines = [
            "# Generated by loa; edits are overwritten at start-up.",
            "per_listener_settings false",
            *self.user_line(),
            f"listener {port} {s.host}",
            "persistence true",
            f"persistence_location {'./' if s.managed else f'{self.state_dir}/'}",
            "autosave_interval 30",
            f"max_queued_messages {s.max_queued_messages}",
            f"max_queued_bytes {s.max_queued_bytes}",
            "max_inflight_messages 100",
            "persistent_client_expiration 2d",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "connection_messages false",
        ]
        if not any(line.startswith(("password_file", "allow_anonymous")) for line in s.extra_lines):
            lines.append("allow_anonymous true")
        return "\n".join([*lines, *(self._local(line) for line in s.extra_lines)]) + "\n"

    def binary(self) -> str:
        """mosquitto lives in /usr/sbin on Debian, which is not on an ordinary user's PATH."""
        found = shutil.which(self.settings.binary) or shutil.which(
            self.settings.binary, path="/usr/sbin:/usr/local/sbin"
        )
        if found is None:
            raise RuntimeError(
                f"mosquitto not found ({self.settings.binary}); install it: sudo apt-get install -y mosquitto"
            )
        return found

    def start(self, timeout: float = 10.0) -> None:
        self.binary()
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)  # passwords, ACL and queued commands: folders made before 0700 too
        self.end_orphan()
        self.port = self.choose_port()
        self._stopping.clear()
        # Every mosquitto is forked by the watcher thread, the first one too: the parent-death signal
        # follows the thread that forked (see die_with_parent), and this one lives as long as the broker.
        started = threading.Event()
        failed: list[BaseException] = []
        self._watcher = threading.Thread(
            target=self._run, args=(timeout, started, failed), name="broker-watch", daemon=True
        )
        self._watcher.start()
        started.wait()
        if failed:
            self._watcher.join()
            raise failed[0]
        self._save_port()

    def _run(self, timeout: float, started: threading.Event, failed: list[BaseException]) -> None:
        try:
            self._spawn(timeout)
        except BaseException as exc:
            failed.append(exc)
            return
        finally:
            started.set()
        self._watch()

    def saved_port(self) -> tuple[int, int] | None:
        """(port, configured port) of the last start in this state folder, if it wrote them."""
        try:
            info = json.loads((self.state_dir / PORT_FILE).read_text(encoding="utf-8"))
            port, configured = int(info["port"]), int(info["configured"])
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return (port, configured) if 0 < port < 65536 else None

    def _save_port(self) -> None:
        tmp = self.state_dir / f"{PORT_FILE}.tmp"
        tmp.write_text(json.dumps({"port": self.port, "configured": self.settings.port}), encoding="utf-8")
        tmp.replace(self.state_dir / PORT_FILE)

    def choose_port(self) -> int:
        """The port devices were given, or, the first time, the configured one (any free one if that is
        taken: no device has been told a port yet). Devices were given the one this state folder last
        listened on (or, from before that was written, the previous run's in runtime.json): that one is
        taken again, waiting a little for a broker that is still exiting, and if another program holds
        it the start fails with the port's name rather than move every device's broker away. A changed
        `broker.port` in the config is the operator's choice: it is taken, or the start fails the same."""
        s = self.settings
        saved = self.saved_port()
        if saved is not None and s.port in (0, saved[1]):
            wanted, fixed = saved[0], True  # the devices' port (0 in the config: any port, so theirs)
        elif saved is not None:
            wanted, fixed = s.port, True  # the config names another port since: the operator's choice
        elif s.fallback_port:
            wanted, fixed = s.fallback_port, True  # from before port.json: runtime.json says where devices dial
        else:
            wanted, fixed = s.port, False  # a first start: nobody was told a port yet
        if not fixed:
            port = pick_port(s.host, wanted)
            if wanted and port != wanted:
                log.warning("port %s is taken; the managed broker uses %s", wanted, port)
            return port
        deadline = time.monotonic() + PORT_WAIT_S
        while not port_is_free(s.host, wanted):
            if time.monotonic() > deadline:
                raise LoaError("broker_port_taken", {"host": s.host, "port": wanted, "state_dir": str(self.state_dir)})
            time.sleep(0.1)
        return wanted

    def end_orphan(self, timeout: float = 5.0) -> int | None:
        """End the mosquitto a killed daemon left running on this state folder, if any; its pid, if so.
        Only a process that is exactly the one recorded (pid and start time) and still runs our command
        line is signalled, so a reused pid or someone else's broker is never touched."""
        try:
            pid_text, started = (self.state_dir / PID_FILE).read_text(encoding="ascii").split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if not _alive(pid, started) or self._command_line(pid) != self._command() or not self._runs_here(pid):
            return None
        log.warning("ending the broker (pid %s) a previous daemon left running on %s", pid, self.state_dir)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            os.kill(pid, sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid, started):
                time.sleep(0.05)
            if not _alive(pid, started):
                break
        (self.state_dir / PID_FILE).unlink(missing_ok=True)
        return pid

    def _runs_here(self, pid: int) -> bool:
        """A managed broker's command line names its config relative to the state folder it runs in: that
        folder must be this one. (Unreadable, for someone else's process: not ours to end.)"""
        if not self.settings.managed:
            return True
        try:
            return Path(f"/proc/{pid}/cwd").resolve(strict=True) == self.state_dir.resolve()
        except OSError:
            return False

    @staticmethod
    def _command_line(pid: int) -> list[str]:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return []
        return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]

    def _command(self) -> list[str]:
        conf = CONFIG_FILE if self.settings.managed else str(self.state_dir / CONFIG_FILE)
        return [self.binary(), "-c", conf]

    def write_config(self) -> Path:
        conf = self.state_dir / CONFIG_FILE
        conf.parent.mkdir(parents=True, exist_ok=True)
        tmp = conf.with_suffix(".tmp")
        tmp.write_text(self.config_text(), encoding="utf-8")
        tmp.replace(conf)
        return conf

    def _hand_over(self) -> None:
        """Started by root, mosquitto reads its config as root and everything else as `run_as`: its
        password, ACL and TLS files (at start and on SIGHUP), and the state folder where it saves its
        persistence, must be that user's. The daemon writes them as root, so they are handed over after
        every write. Only what lies inside the state folder: a file elsewhere it could not reach anyway."""
        user = self.run_as()
        if os.geteuid() != 0 or user in (None, "root"):
            return
        entry = pwd.getpwnam(user)
        root = self.state_dir.resolve()
        paths = {root, root / CONFIG_FILE, root / "mosquitto.db"}
        for line in self.config_text().splitlines():
            key, _, value = line.partition(" ")
            if key in _READ_AS_USER and not os.path.isabs(value):
                path = (root / value).resolve()
                if path.is_relative_to(root):
                    paths |= {path, *(p for p in path.parents if p.is_relative_to(root))}
        for path in sorted(paths):
            if path.exists():
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def reload(self) -> bool:
        """Make the running broker re-read its password and ACL files (SIGHUP), e.g. after a device was
        added or revoked; connected clients stay connected. Asynchronous: mosquitto applies it on its next
        loop, within milliseconds. Listener lines are not reloaded by mosquitto: changing those needs a
        restart. False when no broker is running."""
        with self._lock:  # not while a restart writes the same files
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return False
            self.write_config()
            self._hand_over()
            proc.send_signal(signal.SIGHUP)
        return True

    def _spawn(self, timeout: float) -> None:
        with self._lock:
            if self._stopping.is_set():
                return  # shutting down: a broker started now would outlive the daemon
            self.write_config()
            self._hand_over()
            log_fd = os.open(self.state_dir / "mosquitto.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                proc = subprocess.Popen(
                    self._command(),
                    stdout=log_fd,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.state_dir,  # entered before the user changes; see the module's docstring
                    umask=0o077,
                    preexec_fn=die_with_parent(),
                    **self._as_user(),
                )
            finally:
                os.close(log_fd)
            self._proc = proc
            stat = _proc_stat(proc.pid)
            if stat is not None:
                write_pid = os.open(self.state_dir / PID_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(write_pid, "w", encoding="ascii") as fh:
                    fh.write(f"{proc.pid} {stat[1]}\n")
        if not wait_for_port(self.settings.host, self.port, timeout):
            proc.kill()
            raise RuntimeError(f"mosquitto did not start; see {self.state_dir / 'mosquitto.log'}")
        log.info("managed broker listening on %s (pid %s)", self.url, proc.pid)

    def _as_user(self) -> dict[str, Any]:
        """Started by root, mosquitto would drop to its user itself, and that change of user would clear
        its parent-death signal (die_with_parent): so it is started as that user, by Popen, and reads its
        config as that user (handed over in `_hand_over`). Nothing when it runs as whoever starts it."""
        user = self.run_as()
        if os.geteuid() != 0 or user in (None, "root"):
            return {}
        entry = pwd.getpwnam(user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": os.getgrouplist(user, entry.pw_gid)}

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            # A pause before restarting, and a chance for the daemon to say it is stopping: a signal to
            # its process group reaches mosquitto first.
            if self._stopping.wait(min(5.0, 0.5 * (self.restarts + 1))):
                return
            self.restarts += 1
            log.error("mosquitto exited with %s; restarting", code)
            try:
                self._spawn(10.0)
            except Exception:
                log.exception("could not restart mosquitto")

    def stop_restarting(self) -> None:
        """The daemon is shutting down: a mosquitto that exits from now on stays down. A signal to the
        daemon's process group reaches mosquitto too, before the daemon gets to `stop`."""
        self._stopping.set()

    def kill(self) -> None:
        """Simulate a crash (tests): the watcher brings it back."""
        if self._proc:
            self._proc.kill()

    def stop(self) -> None:
        with self._lock:  # no process is being started now, and none will be
            self._stopping.set()
            proc = self._proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._watcher:
            self._watcher.join(timeout=5)
        if proc is not None:
            (self.state_dir / PID_FILE).unlink(missing_ok=True)
