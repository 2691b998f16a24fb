"""What devices report, into the database: one batched writer for acks, status and telemetry.

Acks, status and telemetry from thousands of speakers arrive on paho's network thread (`DeviceLink`);
writing each one in its own transaction would make the database the bottleneck of a commune-wide
bulletin. So the network thread only parses and queues, and `EventWriter` commits whatever has queued
up, in one transaction per batch.

A batch is only as good as its worst event: one value the database refuses fails the transaction, and
the retries meant for a database that is briefly away would be spent on it while every other device's
acks waited and were then dropped. So nothing enters the queue unchecked (`put`, through
broadcaster.dispatch.reports): a bad report is dropped and counted alone, never its batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Float, String, Table, Update, bindparam, case, func, literal_column, select, update
from sqlalchemy.orm import Session

from broadcaster.db import (
    DELIVERY_RANK,
    FINAL_DELIVERY,
    Broadcast,
    BroadcastStatus,
    BulkStatement,
    Command,
    Database,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceStatusEvent,
)
from broadcaster.dispatch.reports import Ack, BadReport, Status, Tele, check_report
from broadcaster.messages import coded_reason
from schedules.clock import Clock

log = logging.getLogger(__name__)

# Pauses before writing a failed batch again: about a minute in all, so a database away for a while (a
# PostgreSQL restart, a failover, a 10-s outage in bench/faults.py) costs no ack. A final ack dropped here
# is lost unless its device reconnects before the command's expiry has passed by a minute (it then says it
# again): a command acknowledged once is not re-sent, so its `done` is never asked for, and the speaker's
# play would be recorded `expired: no_ack`. After the last pause the batch is
# dropped and logged; a command with no ack at all is still re-sent by the outbox.
WRITE_RETRY_S = (0.5, 2.0, 5.0, 10.0, 20.0, 30.0)

ACK_TO_DELIVERY = {
    "received": DeliveryStatus.RECEIVED,
    "downloaded": DeliveryStatus.DOWNLOADED,
    "playing": DeliveryStatus.PLAYING,
    "done": DeliveryStatus.DONE,
    "failed": DeliveryStatus.FAILED,
    "expired": DeliveryStatus.EXPIRED,
    "rejected": DeliveryStatus.FAILED,
}


@dataclass
class Metrics:
    """Counters of what the daemon refused from devices; logged once per kind, then only counted."""

    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Hooks for the daemon's Prometheus metrics (broadcaster/runtime/metrics.py), None when nobody scrapes:
    # each ack as it is heard (states, start errors), and each reconnection to the broker.
    on_ack: Callable[[Ack], None] | None = None
    on_reconnect: Callable[[], None] | None = None

    def bump(self, name: str, detail: str = "", *, exc_info: bool = False) -> None:
        with self._lock:
            first = self.counts[name] == 0
            self.counts[name] += 1
        if first:
            log.warning(
                "dropped device message (%s) %s; further ones are only counted", name, detail, exc_info=exc_info
            )

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


# The daemon's own guess, written when a command expired with no final ack heard (reconcile). It is the
# one final record a device's word can replace: a `done` lost with a killed broker is said again by the
# device after it reconnects (docs/protocol.md, "Final outcomes, said again"), and what the speaker did
# is the truth the reports must count.
NO_ACK = coded_reason("no_ack")


def guessed(status: DeliveryStatus | None, reason: str | None) -> bool:
    """The delivery was closed by the daemon's guess (`expired: no_ack`), not by its device."""
    return status is DeliveryStatus.EXPIRED and reason == NO_ACK


def advances(current: DeliveryStatus, state: DeliveryStatus, *, guess: bool = False) -> bool:
    """A delivery only moves forward, and never out of a final state: acks arrive out of order. The one
    exception: a device's own final outcome replaces the daemon's guess (`guess`: the delivery is
    `expired: no_ack`); never the reverse, as the daemon guesses only for deliveries still open."""
    if current in FINAL_DELIVERY:
        return guess and state in FINAL_DELIVERY
    return state in FINAL_DELIVERY or DELIVERY_RANK[state] > DELIVERY_RANK[current]


def apply_delivery_update(delivery: Delivery, state: DeliveryStatus, at: datetime, reason: str = "") -> bool:
    """Move a delivery forward (see `advances`). True if it moved."""
    if not advances(delivery.status, state):
        return False
    delivery.status = state
    delivery.updated_at = at
    if reason:
        delivery.reason = reason[:300]
    return True


@dataclass(slots=True)
class _Row:
    """What the writer needs of one command and its delivery: about 330 bytes with its cache entry and id,
    so the cache's 50,000 hold about 16 MB (bench/load.py fills it in its first ten bulletins)."""

    device_id: str
    sent_at: datetime | None
    acked_at: datetime | None
    delivery_id: int | None
    status: DeliveryStatus | None
    broadcast_id: int | None
    guess: bool = False  # closed by the daemon's guess, `expired: no_ack` (see `advances`)


_COMMANDS, _DELIVERIES = cast(Table, Command.__table__), cast(Table, Delivery.__table__)
# The writer's statements, built once: building them per batch cost more than running them.
_ROWS_OF = (
    select(_COMMANDS.c.id, _COMMANDS.c.device_id, _COMMANDS.c.sent_at, _COMMANDS.c.acked_at, _DELIVERIES.c.id,
           _DELIVERIES.c.status, _DELIVERIES.c.broadcast_id, _DELIVERIES.c.reason)
    .outerjoin(_DELIVERIES, _COMMANDS.c.delivery_id == _DELIVERIES.c.id)
    .where(_COMMANDS.c.id.in_(bindparam("ids", expanding=True)))
)  # fmt: skip
# The guards below (a time is set once; a delivery moves only up in rank and never out of a final
# state) repeat `advances` in SQL, so a stale _RowCache entry can cost a no-op UPDATE, never a wrong one.
_SET_COMMAND_TIMES: dict[tuple[str, ...], BulkStatement] = {
    columns: BulkStatement(update(_COMMANDS).where(_COMMANDS.c.id == bindparam("c_id")).values(
        {c: func.coalesce(_COMMANDS.c[c], bindparam(f"c_{c}", type_=_COMMANDS.c[c].type)) for c in columns}
    ))
    for columns in (("sent_at",), ("acked_at",), ("sent_at", "acked_at"))
}
_FINAL_RANK = 1000  # above every target rank: nothing leaves a final state
_TO_FINAL_RANK = _FINAL_RANK - 1  # a final state can be reached from any other
_GUESS_RANK = _TO_FINAL_RANK - 1  # ... and from the daemon's guess, which nothing else leaves
# Constants written into the SQL, not bound: bound, they were re-processed for every row of an
# executemany. The column stores enum names (Enum(native_enum=False)).
_RANK_OF_STATUS = case(
    *[
        (_DELIVERIES.c.status == literal_column(f"'{s.name}'"), literal_column(str(DELIVERY_RANK[s])))
        for s in DeliveryStatus
        if s not in FINAL_DELIVERY
    ],
    (
        (_DELIVERIES.c.status == literal_column(f"'{DeliveryStatus.EXPIRED.name}'"))
        & (_DELIVERIES.c.reason == literal_column(f"'{NO_ACK}'")),
        literal_column(str(_GUESS_RANK)),
    ),
    else_=literal_column(str(_FINAL_RANK)),
)


def _move_delivery(reason: bool, error: bool, played: bool = False) -> Update:
    """The delivery UPDATE, with the reason and start error only when the batch has them: most acks
    carry neither, and every bound parameter is processed once per row of an executemany."""
    c = _DELIVERIES.c
    values: dict[str, Any] = {
        "status": bindparam("d_status", type_=c.status.type),
        "updated_at": bindparam("d_at", type_=c.updated_at.type),
    }
    if reason:
        values["reason"] = func.coalesce(bindparam("d_reason", type_=String), _DELIVERIES.c.reason)
    if error:
        values["start_error_ms"] = func.coalesce(bindparam("d_error", type_=Float), _DELIVERIES.c.start_error_ms)
    if played:  # the seconds a final ack says were heard (docs/protocol.md, `played_s`)
        values["played_s"] = func.coalesce(bindparam("d_played", type_=Float), _DELIVERIES.c.played_s)
    return (
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id == bindparam("d_id"), bindparam("d_rank") > _RANK_OF_STATUS)
        .values(values)
    )


_BOTH = (False, True)
_MOVE_DELIVERY = {(r, e, p): BulkStatement(_move_delivery(r, e, p)) for r in _BOTH for e in _BOTH for p in _BOTH}


class _RowCache:
    """Rows the writer has written or the dispatcher has just created, so that a command's later sends
    and acks (five or so each) need no SELECT. Only committed rows go in, so an entry may lag the
    database (another daemon instance, the dispatcher expiring deliveries) but never lead it, and the
    guarded UPDATEs make a lagging entry harmless. Cleared whenever a write fails."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._rows: dict[str, _Row] = {}
        self._lock = threading.Lock()

    def get_many(self, ids: set[str]) -> dict[str, _Row]:
        with self._lock:
            return {cid: row for cid in ids if (row := self._rows.get(cid)) is not None}

    def put_many(self, rows: dict[str, _Row]) -> None:
        with self._lock:
            self._rows.update(rows)
            if len(self._rows) > self.limit:  # oldest first: dicts keep insertion order
                for cid in list(self._rows)[: len(self._rows) - self.limit // 2]:
                    del self._rows[cid]

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """IN lists of a size every database accepts."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def finish_broadcast_if_complete(session: Session, broadcast_id: int) -> None:
    # Called for every batch of final acks: ask whether one delivery is still open, not for them all.
    open_one = session.scalar(
        select(Delivery.id)
        .where(Delivery.broadcast_id == broadcast_id, Delivery.status.not_in(list(FINAL_DELIVERY)))
        .limit(1)
    )
    if open_one is not None:
        return
    if session.scalar(select(Delivery.id).where(Delivery.broadcast_id == broadcast_id).limit(1)) is not None:
        b = session.get(Broadcast, broadcast_id)
        if b is not None and b.status is BroadcastStatus.DISPATCHED:
            b.status = BroadcastStatus.DONE


class EventWriter:
    """Drains device events into the database in batches, on its own thread."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        metrics: Metrics,
        on_devices_online: Callable[[list[str]], None] | None = None,
        max_batch: int = 2000,
        linger_s: float = 0.05,
    ) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.on_devices_online = on_devices_online
        self.max_batch = max_batch
        # After the first event, wait this long for more before writing: a bulletin's acks arrive
        # thousands a second, and each transaction costs about as much as a hundred acks in it.
        self.linger_s = linger_s
        self._queue: queue.SimpleQueue[tuple[str, str, Any, datetime] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        # Events queued and events written (or given up on), under one plain lock: a threading.Event
        # cleared on every put cost more than the rest of put.
        self._counts = threading.Condition(threading.Lock())
        self._queued = self._done = 0
        self.batches = 0
        self.rows = _RowCache()
        self._learned: dict[str, _Row] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def remember_commands(self, rows: list[tuple[str, str, int, int]]) -> None:
        """Commands just committed by the dispatcher, (command id, device, delivery, broadcast), so the
        first acks of a bulletin need no SELECT."""
        self.rows.put_many({cid: _Row(dev, None, None, did, DeliveryStatus.QUEUED, bid) for cid, dev, did, bid in rows})

    def put(self, kind: str, device_id: str, data: Any) -> None:
        """Queue one event: ("sent", device, command id), or a device's report ("ack", "status", "tele") as
        parsed JSON or as an already checked record. A report that fails its checks is counted and
        dropped here, so it never reaches a batch."""
        if kind != "sent" and not isinstance(data, Ack | Status | Tele):
            try:
                data = check_report(kind, data)
            except BadReport as bad:
                self.metrics.bump(bad.code, f"{bad.detail} from {device_id!r}")
                return
        if kind == "ack" and self.metrics.on_ack is not None:
            self.metrics.on_ack(data)
        with self._counts:
            self._queued += 1
        self._queue.put((kind, device_id, data, self.clock.now()))

    @property
    def running(self) -> bool:
        """The writer's thread is alive: without it nothing devices report reaches the database."""
        return self._thread.is_alive()

    @property
    def backlog(self) -> int:
        """Events heard and not yet written (the metrics' queue depth)."""
        return self._queued - self._done

    @property
    def lagging(self) -> bool:
        """Events are waiting to be written: what the database says about sends and acks is behind."""
        return self._done < self._queued

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is committed (tests, shutdown)."""
        with self._counts:
            target = self._queued
            return self._counts.wait_for(lambda: self._done >= target, timeout)

    def _run(self) -> None:
        linger = True
        while True:
            item = self._queue.get()
            if item is None:
                return
            if linger:
                # Sleep, then take what came meanwhile. Waiting in get() instead would wake this thread
                # (and hand it the GIL) once per event: a bulletin brings thousands a second.
                time.sleep(self.linger_s)
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            linger = len(batch) < self.max_batch  # a full batch: more are waiting, write them at once
            online = self._write_with_retries(batch)
            self.batches += 1
            if online and self.on_devices_online:
                try:
                    self.on_devices_online(online)
                except Exception:  # the re-send is repeated by the next reconcile; the writer must go on
                    log.exception("could not re-send to %d devices that came online", len(online))
            with self._counts:
                self._done += len(batch)
                self._counts.notify_all()
            if stop:
                return

    def _write_with_retries(self, batch: list[tuple[str, str, Any, datetime]]) -> list[str]:
        """A database that is briefly away (locked past its timeout, a PostgreSQL restart) costs a retry,
        not the acks: the guarded UPDATEs make writing a batch twice harmless."""
        for attempt in range(len(WRITE_RETRY_S) + 1):
            try:
                online = self._write(batch)
                self.rows.put_many(self._learned)
                return online
            except Exception:
                self.rows.clear()  # its rows may have been advanced past what was committed
                if attempt == len(WRITE_RETRY_S):
                    log.exception("could not write %d device events; dropped", len(batch))
                    return []
                log.warning("could not write %d device events; retrying", len(batch), exc_info=True)
                time.sleep(WRITE_RETRY_S[attempt])
            finally:
                self._learned = {}
        return []

    def _write(self, batch: list[tuple[str, str, Any, datetime]]) -> list[str]:
        came_online: list[str] = []
        with self.db.session() as session, session.no_autoflush:
            touched = self._write_deliveries(session, [e for e in batch if e[0] in ("sent", "ack")])
            devices = {dev for kind, dev, _, _ in batch if kind in ("status", "tele")}
            for chunk in _chunks(sorted(devices)):  # into the identity map: one query, not one per event
                session.scalars(select(Device).where(Device.id.in_(chunk))).all()
            for kind, device_id, data, at in batch:
                if kind == "status":
                    if self._status(session, device_id, data, at):
                        came_online.append(device_id)
                elif kind == "tele":
                    self._tele(session, device_id, data, at)
            session.flush()
            for bid in touched:
                finish_broadcast_if_complete(session, bid)
        return came_online

    def _write_deliveries(self, session: Session, events: list[tuple[str, str, Any, datetime]]) -> set[int]:
        """Sends and acks, the bulk of the traffic: the rows they touch are read with a few IN queries,
        decided in Python by the same rule as everywhere (`advances`), and written with one executemany
        UPDATE per table. A bulletin to 5,000 speakers brings 20,000 acks; one ORM round trip each
        made the database the slowest part of the path."""
        ids = {d if k == "sent" else d.cmd for k, _, d, _ in events}
        rows = self.rows.get_many(ids)
        conn = session.connection()  # Core: no ORM rows, and statements built once (_ROWS_OF)
        for chunk in _chunks(sorted(ids - rows.keys())):
            for cid, dev, sent, acked, did, status, bid, why in conn.execute(_ROWS_OF, {"ids": chunk}):
                rows[cid] = _Row(dev, sent, acked, did, status, bid, guessed(status, why))
        sent_at: dict[str, datetime] = {}
        acked_at: dict[str, datetime] = {}
        moved: dict[int, dict[str, Any]] = {}
        touched: set[int] = set()
        for kind, device_id, data, at in events:
            if kind == "sent":
                cid, state, reason, err, played = data, DeliveryStatus.SENT, "", None, None
            else:
                ack: Ack = data
                cid, state, reason, err = ack.cmd, ACK_TO_DELIVERY[ack.state], ack.reason, ack.start_error_ms
                played = ack.played_s
                if ack.state == "rejected":
                    reason = f"rejected: {reason}"
            row = rows.get(cid)
            if row is None or (kind == "ack" and row.device_id != device_id):
                if kind == "ack":
                    self.metrics.bump("ack_for_unknown_command", f"{cid!r} from {device_id!r}")
                continue
            if kind == "sent" and row.sent_at is None:
                row.sent_at = sent_at[cid] = at
            if kind == "ack" and row.acked_at is None:
                row.acked_at = acked_at[cid] = at
            if row.delivery_id is None or row.status is None or not advances(row.status, state, guess=row.guess):
                continue
            row.status, row.guess = state, False
            change = moved.setdefault(
                row.delivery_id, {"d_id": row.delivery_id, "d_reason": None, "d_error": None, "d_played": None}
            )
            rank = _TO_FINAL_RANK if state in FINAL_DELIVERY else DELIVERY_RANK[state]
            change.update(d_status=state, d_at=at, d_rank=rank)
            if reason or state in FINAL_DELIVERY:  # a final ack's own reason, or none: never a guess's `no_ack`
                change["d_reason"] = reason[:300]
            if err is not None:
                change["d_error"] = err
            if played is not None:
                change["d_played"] = played
            if state in FINAL_DELIVERY and row.broadcast_id is not None:
                touched.add(row.broadcast_id)
        # One UPDATE per command, whichever of its times this batch learned (often both).
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for cid in sent_at.keys() | acked_at.keys():
            times = {c: t[cid] for c, t in (("sent_at", sent_at), ("acked_at", acked_at)) if cid in t}
            by_columns.setdefault(tuple(times), []).append({"c_id": cid, **{f"c_{c}": t for c, t in times.items()}})
        for columns, params in by_columns.items():
            _SET_COMMAND_TIMES[columns].executemany(conn, params)
        by_fields: dict[tuple[bool, bool, bool], list[dict[str, Any]]] = {}
        for change in moved.values():
            key = (change["d_reason"] is not None, change["d_error"] is not None, change["d_played"] is not None)
            by_fields.setdefault(key, []).append(change)
        for key, changes in by_fields.items():
            _MOVE_DELIVERY[key].executemany(conn, changes)
        self._learned = rows  # into the cache once committed (_run)
        return touched

    def _status(self, session: Session, device_id: str, status: Status, at: datetime) -> bool:
        device = session.get(Device, device_id)
        if device is None:
            self.metrics.bump("unknown_device", repr(device_id))
            return False
        was = device.online
        if status.online != was:  # the history the reports read (disconnections, devices online)
            session.add(DeviceStatusEvent(device_id=device_id, at=at, online=status.online))
        device.online = status.online
        device.last_seen = at
        if status.firmware is not None:
            device.firmware = status.firmware
        if status.clock_offset_ms is not None:  # what the device last measured (docs/protocol.md, *Clock offset*)
            device.clock_offset_ms = status.clock_offset_ms
            device.clock_delay_ms = status.clock_delay_ms
            device.clock_checked_at = at
        _readings(device, status)
        return status.online and not was

    def _tele(self, session: Session, device_id: str, tele: Tele, at: datetime) -> None:
        device = session.get(Device, device_id)
        if device is None:
            self.metrics.bump("unknown_device", repr(device_id))
            return
        device.last_seen = at
        _readings(device, tele)


def _readings(device: Device, report: Status | Tele) -> None:
    if report.volume is not None:
        device.volume = report.volume
    if report.signal is not None:
        device.signal = report.signal
