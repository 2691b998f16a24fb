"""A simulated commune at scale: thousands of speakers and LED boards in a few processes.

`loa agent` runs one device per process with a network thread and a thread per command, which is what
a field device does but cannot reach thousands on one machine. Here each worker process drives a slice
of the fleet from ONE selector loop: every device still has its own paho client (its own MQTT session,
persistent, with its retained status and last will), but no client has a thread; the loop selects on
their sockets and calls `loop_read`/`loop_write`/`loop_misc` itself.

Precise start is the point of the exercise, so the loop owns one timer heap with one entry per distinct
instant: devices that share a `start_at` all start in one pass, then their `playing` acks go out. The
loop stops taking new work a few milliseconds before an instant, spins through the last ones (sleeps are
only millisecond-precise), and holds the garbage collector off while it fires.

Every device runs the device core of the reference agents (broadcaster.device.core): the same checks
(signature, expiry, ids seen before, re-acked and never replayed), the same acks received -> downloaded
-> playing (with start_error_ms) -> done, the same priorities. Only the driving differs: the audio is
fetched once per process per sha256, checked, and shared by the process's speakers; sound goes nowhere
(a play takes as long as the audio).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import heapq
import json
import logging
import math
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from broadcaster import protocol
from broadcaster.device.core import (
    Ack,
    Action,
    Blank,
    DeviceCore,
    DeviceKind,
    Fetch,
    Play,
    Refused,
    Resend,
    Restatus,
    SeenCommands,
    Show,
    Wake,
)
from broadcaster.device.fetch import LAST_TRY_S, HashMismatch, download_error, fetch_audio, retry_pause
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client, set_will

log = logging.getLogger(__name__)

GUARD_S = 0.004  # no new network work this close to a start: a busy loop would start late
SPIN_S = 0.0025  # the last stretch before a start is spun, not slept (epoll sleeps in whole ms)
ACK_HOLD_S = 0.02  # acks wait this long after a start instant (see Worker._fire_due)
MAX_SLEEP_S = 0.25  # housekeeping, stop requests and signals are noticed at least this often
CONNECTS_IN_FLIGHT = 64  # CONNECTs awaiting CONNACK per process; more overflows the broker's backlog
HOUSEKEEPING_PER_STEP = 200  # clients whose keepalive is checked per loop step
SEEN_KEEP_S = 86400  # a command id is remembered until a day after it expires (as in the agents)
SAVE_EVERY_S = 10.0
RECONNECT_MIN_S, RECONNECT_MAX_S = 1.0, 30.0
TIME_ROUND_SPREAD_S, TIME_REQUEST_SPREAD_S = 5.0, 0.5  # see Worker._ask_time


# ---------------------------------------------------------------- the fleet and its provisioning


@dataclass(frozen=True)
class SimDevice:
    """What the database knows of a device, and all a worker process needs to be it."""

    id: str
    kind: str  # "speaker" | "led"
    diacritics: bool = True
    # How far this device's clock is ahead of the machine's (seconds): a speaker whose clock is off, which
    # must still start with the others, by the offset it measures (docs/protocol.md, *Clock offset*).
    clock_skew_s: float = 0.0


def village_id(n: int) -> str:
    return f"thon-{n}"


def speaker_id(village: int, k: int) -> str:
    return f"{village_id(village)}-loa-{k}"


def led_id(village: int, k: int) -> str:
    return f"{village_id(village)}-led-{k}"


def fleet_devices(villages: int, speakers_per_village: int, leds_per_village: int = 0) -> list[SimDevice]:
    """Ids `thon-N-loa-K` and `thon-N-led-K`, N and K from 1, the naming of the simulated commune."""
    out: list[SimDevice] = []
    for n in range(1, villages + 1):
        out += [SimDevice(speaker_id(n, k), "speaker") for k in range(1, speakers_per_village + 1)]
        out += [SimDevice(led_id(n, k), "led") for k in range(1, leds_per_village + 1)]
    return out


# ---------------------------------------------------------------- what a worker is given and returns


@dataclass(frozen=True)
class FleetSettings:
    broker_url: str
    public_keys: dict[str, str]  # key id -> base64 Ed25519 public key
    state_dir: str
    topic_prefix: str = protocol.DEFAULT_PREFIX
    keepalive: int = 30


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    settings: FleetSettings
    devices: tuple[SimDevice, ...]


@dataclass(frozen=True)
class PlayRecord:
    device_id: str
    command_id: str
    start_error_ms: float  # as the device reports it, by its own estimate of the daemon's clock
    started_at: float = 0.0  # when it really started, on the machine's clock (epoch seconds)


@dataclass
class FleetReport:
    """What the fleet did, for tests, the bench and the simulator's exit line."""

    devices: int = 0
    connected: int = 0
    commands: int = 0
    replays: int = 0
    downloads: int = 0
    reconnects: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    plays: list[PlayRecord] = field(default_factory=list)

    def merge(self, other: FleetReport) -> None:
        for name in ("devices", "connected", "commands", "replays", "downloads", "reconnects"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.refused = dict(Counter(self.refused) + Counter(other.refused))
        self.plays += other.plays

    def plays_of(self, device_id: str, command_id: str | None = None) -> int:
        return sum(
            1 for p in self.plays if p.device_id == device_id and (command_id is None or p.command_id == command_id)
        )

    def start_errors_ms(self) -> list[float]:
        return [p.start_error_ms for p in self.plays]


# ---------------------------------------------------------------- one timer per distinct instant


class Timers:
    """A heap of instants, each with every action due then: a start shared by 2,500 devices is one wake-up."""

    def __init__(self) -> None:
        self._heap: list[float] = []
        self._due: dict[float, list[Callable[[], None]]] = {}

    def at(self, when: float, action: Callable[[], None]) -> None:
        actions = self._due.get(when)
        if actions is None:
            self._due[when] = actions = []
            heapq.heappush(self._heap, when)
        actions.append(action)

    def next_at(self) -> float | None:
        return self._heap[0] if self._heap else None

    def pop_due(self, now: float) -> list[Callable[[], None]]:
        out: list[Callable[[], None]] = []
        while self._heap and self._heap[0] <= now:
            out += self._due.pop(heapq.heappop(self._heap))
        return out


# ---------------------------------------------------------------- audio, fetched once per process


class AudioCache:
    """Downloads on a helper thread so the loop never blocks; all speakers waiting on a sha hear at once."""

    def __init__(self, cache_dir: Path, tag: str, wake: Callable[[], None]) -> None:
        self.cache_dir = cache_dir
        self.tag = tag
        self._wake = wake
        self._ready: dict[str, Path] = {}
        self._waiting: dict[str, list[Callable[[str | None], None]]] = {}
        self._results: deque[tuple[str, str | None]] = deque()
        self._until: dict[str, float] = {}  # per sha256: the latest expiry of the commands waiting for it
        self.cancel = threading.Event()  # set when the fleet stops: no download outlives it
        self.downloads = 0

    def want(self, audio: dict[str, Any], then: Callable[[str | None], None], until: float = 0.0) -> None:
        """`then(None)` once the file is here and verified, `then(reason)` if it cannot be had by `until`
        (the command's expiry: retried until then, as the reference agent does)."""
        sha = audio["sha256"]
        if sha in self._ready:
            then(None)
            return
        waiters = self._waiting.setdefault(sha, [])
        waiters.append(then)
        self._until[sha] = max(self._until.get(sha, 0.0), until)  # read by the download as it retries
        if len(waiters) == 1:
            self.downloads += 1
            threading.Thread(target=self._fetch, args=(dict(audio),), name="fetch", daemon=True).start()

    def _fetch(self, audio: dict[str, Any]) -> None:
        error: str | None = None
        sha = audio["sha256"]
        attempt = 0
        while True:
            try:
                self._ready[sha] = fetch_audio(audio, self.cache_dir, self.tag)
                break
            except HashMismatch as exc:
                error = download_error(exc)[:200]
                break
            except Exception as exc:
                left = self._until.get(sha, 0.0) - LAST_TRY_S - time.time()
                if self.cancel.is_set() or left <= 0:
                    error = download_error(exc)[:200]
                    break
                self.cancel.wait(min(retry_pause(attempt), left))
                attempt += 1
        self._results.append((audio["sha256"], error))
        self._wake()

    def deliver(self) -> None:
        """On the loop: hand finished downloads to their waiters (a failure is retried next command)."""
        while self._results:
            sha, error = self._results.popleft()
            for then in self._waiting.pop(sha, []):
                then(error)


# ---------------------------------------------------------------- command ids, kept across restarts


class SeenStore:
    """Each device's memory of command ids (the core's SeenCommands), one JSON file per worker, merged
    on start: {device id: {command id: {"expires_at", "ack"}}}."""

    def __init__(self, state_dir: Path, index: int, device_ids: Iterable[str]) -> None:
        self.path = state_dir / f"seen-w{index}.json"
        self.state_dir = state_dir
        self.memories: dict[str, SeenCommands] = {d: SeenCommands() for d in device_ids}
        for path in sorted(state_dir.glob("seen*.json"), key=lambda p: p.stat().st_mtime):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                for device_id, cmds in json.loads(path.read_text(encoding="utf-8")).items():
                    memory = self.memories.get(device_id)
                    if memory is not None and isinstance(cmds, dict):
                        memory.restore(cmds)
        now = time.time()
        for memory in self.memories.values():
            memory.prune(now)
            memory.dirty = False

    @property
    def dirty(self) -> bool:
        return any(m.dirty for m in self.memories.values())

    def save(self) -> None:
        now = time.time()
        out = {}
        for device_id, memory in self.memories.items():
            memory.prune(now)
            if memory.items:
                out[device_id] = memory.export()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out), encoding="utf-8")
        os.replace(tmp, self.path)
        for memory in self.memories.values():
            memory.dirty = False


def merge_seen_files(state_dir: Path) -> None:
    """Fold the workers' files into seen.json, so a restart with another --processes finds every id."""
    merged: dict[str, dict[str, Any]] = {}
    parts = sorted(state_dir.glob("seen*.json"), key=lambda p: p.stat().st_mtime)
    for path in parts:
        with contextlib.suppress(OSError, ValueError):
            for device_id, cmds in json.loads(path.read_text(encoding="utf-8")).items():
                merged.setdefault(device_id, {}).update(cmds)
    if not parts:
        return
    tmp = state_dir / "seen.json.tmp"
    tmp.write_text(json.dumps(merged), encoding="utf-8")
    os.replace(tmp, state_dir / "seen.json")
    for path in parts:
        if path.name != "seen.json":
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------- simulated devices


class Node:
    """One simulated device: its MQTT client and its device core (broadcaster.device.core), the same
    core the reference agents run. The loop (`Worker`) owns the I/O and carries out the core's actions;
    sound goes nowhere (a play takes as long as the audio), and a board's text is only remembered."""

    def __init__(self, worker: Worker, spec: SimDevice) -> None:
        self.id = spec.id
        self.spec = spec
        kind: DeviceKind = "led" if spec.kind == "led" else "speaker"
        memory = worker.seen.memories[spec.id]
        self.core = DeviceCore(spec.id, kind, worker.keys, diacritics=spec.diacritics, seen=memory)
        self.client = new_client(spec.id)
        self.fd = -1
        self.events = 0
        self.connecting = False  # CONNECT sent, no CONNACK yet
        self.connected = False
        self.subscribed = False
        self.backoff = RECONNECT_MIN_S
        self.shown = ""  # what an LED board shows now
        self.skew = spec.clock_skew_s
        self.session = 0  # counts connections: a time request scheduled for an earlier one is dropped

    def now(self) -> float:
        """This device's own clock (the machine's, shifted by its skew): what its core is told."""
        return time.time() + self.skew

    def status(self) -> dict[str, Any]:
        return self.core.status(True, self.now(), **({"sink": "null"} if self.core.kind == "speaker" else {}))


# ---------------------------------------------------------------- the loop of one worker process


class Worker:
    """Many devices, one selector, one timer heap, no thread per device."""

    def __init__(self, spec: WorkerSpec, conn: Connection | None = None) -> None:
        settings = spec.settings
        self.index = spec.index
        self.conn = conn
        self.topics = protocol.Topics(settings.topic_prefix)
        self.keys: dict[str, Ed25519PublicKey] = {
            kid: protocol.load_public_key(b64) for kid, b64 in settings.public_keys.items()
        }
        address = BrokerAddress.parse(settings.broker_url)
        self.address = address
        self.keepalive = settings.keepalive
        state_dir = Path(settings.state_dir)
        self.seen = SeenStore(state_dir, spec.index, (d.id for d in spec.devices))
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r.fileno(), selectors.EVENT_READ, "wake")
        if conn is not None:
            self.selector.register(conn.fileno(), selectors.EVENT_READ, "parent")
        self.audio = AudioCache(state_dir / "audio", f"w{spec.index}-{os.getpid()}", self._wake)
        self.timers = Timers()  # start instants: spun for, guarded, fired in one pass
        self.later = Timers()  # ends, expiries, reconnects: whenever the loop gets there
        self.nodes = [Node(self, d) for d in spec.devices]
        # Payloads heard, with the device's clock when a time answer came (t4), None for a command
        self._inbox: deque[tuple[Node, bytes, float | None]] = deque()
        # The devices due at a start instant and the instant each started, handed to their cores after
        # the pass (`_flush`): the pass itself only reads the clock, so the last of thousands of devices
        # starts microseconds after the first. The core takes the time an event happened, not the time
        # it is told, so its start error and acks are the same as if it had been called in the pass.
        self.begun: list[tuple[Node, str, float]] = []
        # Acks to publish: built and sent after the pass, so a start instant shared by thousands of
        # devices costs each a clock read in the core, not a JSON encoding
        self._outbox: list[tuple[Node, Ack | Resend]] = []
        self._to_connect: deque[Node] = deque(self.nodes)
        self._connecting = 0
        self._sweep = 0
        self._ready_sent = False
        self._stopping = False
        self._hold_until = 0.0
        self._last_save = time.monotonic()
        self.reconnects = 0
        self.plays: list[PlayRecord] = []
        self._refusals_logged: set[str] = set()
        for node in self.nodes:
            self._prepare(node)

    # ------------------------------------------------------------ the cores, driven

    def perform(self, node: Node, actions: list[Action]) -> None:
        """Carry out what a device's core asked for."""
        for action in actions:
            if isinstance(action, Ack | Resend):
                self._outbox.append((node, action))
            elif isinstance(action, Wake):
                timers = self.timers if action.start else self.later  # starts are spun for; expiries are not
                at = action.at - node.skew  # the core's instants are on the device's clock
                timers.at(at, functools.partial(self._wake_core, node, action.command_id, action.start))
            elif isinstance(action, Fetch):
                fetched = functools.partial(self._fetched, node, action.command_id)
                self.audio.want(action.audio, fetched, action.until - node.skew)
            elif isinstance(action, Play | Show):
                began = action.started_at - node.skew
                self.plays.append(PlayRecord(node.id, action.command_id, action.start_error_ms, began))
                if isinstance(action, Show):
                    node.shown = action.text
                # The end needs no precision (a `done` ack); rounded to the millisecond, ends share an entry.
                end = math.ceil((began + action.duration_s) * 1000) / 1000
                self.later.at(end, functools.partial(self._ended, node, action.command_id))
            elif isinstance(action, Blank):
                node.shown = ""
            elif isinstance(action, Restatus) and node.connected:
                node.client.publish(self.topics.status(node.id), protocol.encode(node.status()), qos=1, retain=True)
            elif isinstance(action, Refused) and action.code not in self._refusals_logged:
                self._refusals_logged.add(action.code)  # once per code; the cores count them all
                log.warning("worker %s refused a command: %s", self.index, action.code)
            # Silence and SetVolume: a simulated speaker has no sound to stop or level

    def _wake_core(self, node: Node, command_id: str, start: bool) -> None:
        if start:
            self.begun.append((node, command_id, node.now()))  # the instant it starts; see `_flush`
        else:
            self.perform(node, node.core.wake(command_id, node.now()))

    def _fetched(self, node: Node, command_id: str, error: str | None) -> None:
        self.perform(node, node.core.fetched(command_id, error, node.now()))

    def _ended(self, node: Node, command_id: str) -> None:
        self.perform(node, node.core.ended(command_id, node.now()))

    def _ask_time(self, node: Node, session: int) -> None:
        """One time request of the core's rounds, and the next one scheduled (docs/protocol.md, *Clock
        offset*). A request scheduled before a reconnect is dropped: the reconnect started its own."""
        if session != node.session or not node.connected or self._stopping:
            return
        message = node.core.time_request(node.now())
        node.client.publish(self.topics.time(node.id), protocol.encode(message), qos=0)
        self._pump(node)
        nxt = node.core.clock.next_at
        if nxt is not None:
            # Thousands of devices in one loop would otherwise ask together, round after round, and their
            # answers queue (at the daemon before t2, here before t4): the offsets are then off by the queue.
            # A new round is spread over a few seconds, its requests a little; asking late costs nothing.
            spread = TIME_ROUND_SPREAD_S if node.core.clock.round_over else TIME_REQUEST_SPREAD_S
            when = nxt - node.skew + random.uniform(0, spread)
            self.later.at(when, functools.partial(self._ask_time, node, session))

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_w.send(b"\0")

    # ------------------------------------------------------------ MQTT sessions

    def _prepare(self, node: Node) -> None:
        client = node.client
        set_will(client, self.topics.status(node.id), protocol.encode(protocol.make_status(False)))
        client.user_data_set(node)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        connect(client, self.address, persistent=True, keepalive=self.keepalive)

    def _open(self, node: Node) -> None:
        """TCP connect and CONNECT; the CONNACK arrives through the loop."""
        if node.connecting:
            return  # already on its way (a lost link can be reported twice, and queued twice)
        if node.fd >= 0:  # paho closes the old socket; its number may come back for the new one
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(node.fd)
            node.fd = -1
        try:
            node.client.reconnect()
        except OSError as exc:
            log.debug("%s: cannot connect: %s", node.id, exc)
            self._retry_later(node)
            return
        sock = node.client.socket()
        if sock is None:
            self._retry_later(node)
            return
        node.fd = sock.fileno()
        node.events = selectors.EVENT_READ
        self.selector.register(node.fd, node.events, node)
        node.connecting = True
        self._connecting += 1
        self._pump(node)

    def _retry_later(self, node: Node) -> None:
        if self._stopping:
            return
        delay = node.backoff * random.uniform(0.5, 1.5)  # a broker restart must not bring 5,000 back at once
        node.backoff = min(RECONNECT_MAX_S, node.backoff * 2)
        self.later.at(time.time() + delay, lambda: self._to_connect.append(node))

    def _on_connect(
        self,
        client: mqtt.Client,
        node: Node,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._settled(node)
        if reason.is_failure:
            log.error("%s: connection refused: %s", node.id, reason)
            return  # paho closes the socket; _on_disconnect retries
        node.connected = True
        node.backoff = RECONNECT_MIN_S
        client.publish(self.topics.status(node.id), protocol.encode(node.status()), qos=1, retain=True)
        client.subscribe([(self.topics.cmd(node.id), 1), (self.topics.clock(node.id), 0)])
        node.session += 1
        node.core.clock.start(node.now())
        self.perform(node, node.core.reconnected(node.now()))  # final outcomes the lost link may have lost
        # Spread over a few seconds: a whole fleet connecting at once must not ask the daemon all at once.
        ask = functools.partial(self._ask_time, node, node.session)
        self.later.at(time.time() + random.uniform(0.05, TIME_ROUND_SPREAD_S), ask)

    def _on_subscribe(self, _client: mqtt.Client, node: Node, _mid: int, _codes: Any, _props: Any) -> None:
        node.subscribed = True

    def _on_message(self, _client: mqtt.Client, node: Node, msg: mqtt.MQTTMessage) -> None:
        # Handled outside paho's callback, where a publish is written at once instead of queued. A time
        # answer keeps the moment it was read (t4): the wait for the loop is not the network's.
        heard = node.now() if msg.topic == self.topics.clock(node.id) else None
        self._inbox.append((node, bytes(msg.payload), heard))

    def _on_disconnect(self, _client: mqtt.Client, node: Node, *_args: Any) -> None:
        if node.fd >= 0:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(node.fd)
            node.fd = -1
        self._settled(node)
        node.connected = node.subscribed = False
        if not self._stopping:
            self.reconnects += 1
            self._retry_later(node)

    def _settled(self, node: Node) -> None:
        """The connection attempt is over (CONNACK or lost): it no longer counts against the window."""
        if node.connecting:
            node.connecting = False
            self._connecting -= 1

    def _pump(self, node: Node) -> None:
        """Write what paho queued; watch for writability only while something is left."""
        client = node.client
        if client.want_write():
            client.loop_write()
        if node.fd < 0:
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
        if want != node.events:
            node.events = want
            self.selector.modify(node.fd, want, node)

    # ------------------------------------------------------------ the loop

    def _near_start(self) -> bool:
        nxt = self.timers.next_at()
        return nxt is not None and nxt - time.time() <= GUARD_S

    def run(self) -> FleetReport:
        gc.collect()
        gc.freeze()  # thousands of long-lived clients: keep them out of every collection
        while not self._stopping:
            self.step()
        self._shutdown()
        return self.report()

    def step(self) -> None:
        self._connect_some()
        self._fire_due()
        events = self.selector.select(self._sleep_for())
        for key, mask in events:
            if self._near_start():
                break  # level-triggered: what is left is reported again after the start
            self._io(key.data, mask)
        self._fire_due()
        self._fire_later()
        self.audio.deliver()
        self._handle_inbox()
        self._flush()
        self._housekeeping()

    def _sleep_for(self) -> float:
        now = time.time()
        held = self._outbox or self.begun
        if self._inbox or (held and now >= self._hold_until):
            return 0
        wake = now + MAX_SLEEP_S
        nxt = self.timers.next_at()
        if nxt is not None:
            wake = min(wake, nxt - SPIN_S)
        coarse = self.later.next_at()
        if coarse is not None:
            wake = min(wake, coarse)
        if held:
            wake = min(wake, self._hold_until)
        return max(0.0, wake - now)

    def _io(self, target: Any, mask: int) -> None:
        if target == "wake":
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
            return
        if target == "parent":
            self._from_parent()
            return
        node: Node = target
        if mask & selectors.EVENT_READ:
            node.client.loop_read()
        if node.fd >= 0 and mask & selectors.EVENT_WRITE:
            node.client.loop_write()
        if node.fd >= 0:
            self._pump(node)

    def _fire_later(self) -> None:
        for action in self.later.pop_due(time.time()):
            action()

    def _fire_due(self) -> None:
        nxt = self.timers.next_at()
        if nxt is None or nxt - time.time() > SPIN_S:
            return
        gc.disable()
        try:
            while time.time() < nxt:
                pass
            actions = self.timers.pop_due(time.time())
            for action in actions:
                action()
            took = time.time() - nxt
        finally:
            gc.enable()
        if self.begun:
            # The other workers are starting their own devices at this very instant: a burst of
            # `playing` acks now would have the broker and the daemon compete with them for the CPU.
            self._hold_until = nxt + ACK_HOLD_S
        if len(actions) > 1:
            log.debug("%d actions due at %.3f done %.2f ms after", len(actions), nxt, took * 1000)

    def _handle_inbox(self) -> None:
        while self._inbox and not self._near_start():
            node, payload, heard = self._inbox.popleft()
            if heard is not None:
                self.perform(node, node.core.time_reply(payload, heard))
            else:
                self.perform(node, node.core.receive(payload, node.now()))

    def _flush(self) -> None:
        if time.time() < self._hold_until:
            return
        begun, self.begun = self.begun, []
        for node, command_id, at in begun:
            self.perform(node, node.core.wake(command_id, at))
        outbox, self._outbox = self._outbox, []
        for node, ack in outbox:
            message = ack.message() if isinstance(ack, Ack) else ack.message
            node.client.publish(self.topics.ack(node.id), protocol.encode(message), qos=1)
            if node.fd >= 0 and node.client.want_write():
                self._pump(node)

    def _connect_some(self) -> None:
        while self._to_connect and self._connecting < CONNECTS_IN_FLIGHT and not self._near_start():
            node = self._to_connect.popleft()
            if not self._stopping:
                self._open(node)
        if not self._ready_sent and all(n.subscribed for n in self.nodes):
            self._ready_sent = True
            self._send(("ready", len(self.nodes)))

    def _housekeeping(self) -> None:
        """Keepalive pings for a slice of the clients per step, and the seen-ids file now and then."""
        if self._near_start() or not self.nodes:
            return
        end = self._sweep + HOUSEKEEPING_PER_STEP
        for node in self.nodes[self._sweep : end]:
            if node.fd >= 0:
                node.client.loop_misc()
        self._sweep = end if end < len(self.nodes) else 0
        nxt = self.timers.next_at()
        quiet = nxt is None or nxt - time.time() > 0.5
        if self.seen.dirty and quiet and time.monotonic() - self._last_save > SAVE_EVERY_S:
            self.seen.save()
            self._last_save = time.monotonic()

    # ------------------------------------------------------------ talking to the parent

    def _send(self, message: tuple[str, Any]) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(message)

    def _from_parent(self) -> None:
        assert self.conn is not None
        try:
            what = self.conn.recv()
        except (EOFError, OSError):
            what = "stop"  # the parent is gone: a fleet never outlives its simulator
        if what == "report":
            self._send(("report", self.report()))
        elif what == "stop":
            self.stop()

    def stop(self) -> None:
        self._stopping = True
        self.audio.cancel.set()

    def report(self) -> FleetReport:
        return FleetReport(
            devices=len(self.nodes),
            connected=sum(1 for n in self.nodes if n.connected),
            commands=sum(n.core.commands for n in self.nodes),
            replays=sum(n.core.replays for n in self.nodes),
            downloads=self.audio.downloads,
            reconnects=self.reconnects,
            refused=dict(sum((n.core.refused for n in self.nodes), Counter())),
            plays=list(self.plays),
        )

    def _shutdown(self, timeout: float = 5.0) -> None:
        """Say offline (retained) for every device, wait for the broker to take it, then disconnect.

        A clean disconnect discards the last will, so the status is what tells the daemon.
        """
        self._hold_until = 0.0
        self._flush()
        offline = protocol.encode(protocol.make_status(False))
        sent: list[mqtt.MQTTMessageInfo] = []
        for node in self.nodes:
            if node.connected:
                sent.append(node.client.publish(self.topics.status(node.id), offline, qos=1, retain=True))
                self._pump(node)
        self._drain(lambda: all(_settled_publish(info) for info in sent), timeout)
        for node in self.nodes:
            if node.fd >= 0:
                node.client.disconnect()
                self._pump(node)
        self._drain(lambda: all(n.fd < 0 for n in self.nodes), 2.0)
        self.seen.save()
        self._send(("report", self.report()))

    def _drain(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            for key, mask in self.selector.select(0.05):
                if isinstance(key.data, Node):
                    self._io(key.data, mask)
                elif key.data == "wake":
                    self._io("wake", mask)


def worker_main(fd: int) -> None:
    """Entry of a worker process (`python -c`, see Fleet.start): its spec and orders come over `fd`.

    Ctrl-C reaches the whole process group; only the parent acts on it and stops the workers in order.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    spec, log_level = conn.recv()
    logging.basicConfig(level=log_level, format=f"%(asctime)s w{spec.index} %(levelname)s %(message)s")
    worker = Worker(spec, conn)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run()


# ---------------------------------------------------------------- the parent: processes


def split(devices: list[SimDevice], processes: int) -> list[tuple[SimDevice, ...]]:
    """Round-robin, so every process gets its share of each village and of each kind."""
    return [tuple(devices[i::processes]) for i in range(processes) if devices[i::processes]]


class Fleet:
    """Starts the worker processes, waits until every device is subscribed, stops them on request.

    Workers are plain `python -c` subprocesses with a socket pair, not multiprocessing's spawn, which
    re-imports the caller's main module and breaks any script without a `__main__` guard.
    """

    def __init__(
        self,
        settings: FleetSettings,
        devices: list[SimDevice],
        processes: int,
        log_level: int = logging.WARNING,
    ) -> None:
        self.settings = settings
        self.devices = devices
        self.processes = max(1, min(processes, len(devices) or 1))
        self.log_level = log_level
        self._procs: list[tuple[subprocess.Popen[bytes], Connection]] = []

    def start(self, timeout: float = 120.0) -> None:
        state_dir = Path(self.settings.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        merge_seen_files(state_dir)
        for index, part in enumerate(split(self.devices, self.processes)):
            ours, theirs = socket.socketpair()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    f"from broadcaster.simulation.fleet import worker_main; worker_main({theirs.fileno()})",
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
            theirs.close()
            conn = Connection(ours.detach())
            conn.send((WorkerSpec(index, self.settings, part), self.log_level))
            self._procs.append((proc, conn))
        deadline = time.monotonic() + timeout
        for proc, conn in self._procs:
            self._await(proc, conn, "ready", deadline)

    def _await(self, proc: subprocess.Popen[bytes], conn: Connection, kind: str, deadline: float) -> Any:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"fleet worker {proc.pid}: no {kind!r} within the time allowed")
            if conn.poll(min(left, 0.5)):
                got, value = conn.recv()
                if got == kind:
                    return value
            elif proc.poll() is not None:
                raise RuntimeError(f"fleet worker {proc.pid} exited with {proc.returncode}")

    def alive(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p, _ in self._procs)

    def report(self, timeout: float = 30.0) -> FleetReport:
        """A live snapshot from every worker (they answer between two loop steps)."""
        for _, conn in self._procs:
            conn.send("report")
        total = FleetReport()
        deadline = time.monotonic() + timeout
        for proc, conn in self._procs:
            total.merge(self._await(proc, conn, "report", deadline))
        return total

    def stop(self, timeout: float = 20.0) -> FleetReport:
        total = FleetReport()
        for _, conn in self._procs:
            with contextlib.suppress(OSError):
                conn.send("stop")
        deadline = time.monotonic() + timeout
        for proc, conn in self._procs:
            with contextlib.suppress(RuntimeError, EOFError, OSError):
                total.merge(self._await(proc, conn, "report", deadline))
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            conn.close()
        self._procs.clear()
        merge_seen_files(Path(self.settings.state_dir))
        return total


def _settled_publish(info: mqtt.MQTTMessageInfo) -> bool:
    """Taken by the broker, or lost with its link (paho then raises): nothing more to wait for. A device
    whose link dropped at shutdown is said offline by its will instead."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return True
