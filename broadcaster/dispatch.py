"""From planned broadcasts to signed commands in the outbox, and from the outbox onto the wire.

APScheduler only wakes us up: jobs carry a broadcast id and nothing else. Every decision is made by
re-reading the database, so a restart, a second wake-up or a CLI that wrote directly to the database
all end the same way. A broadcast moves PLANNED -> DISPATCHED through a conditional UPDATE, which is
what makes "airs exactly once" hold even when two paths race to dispatch it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster import protocol
from broadcaster.config import DispatchConfig
from broadcaster.db import (
    FINAL_DELIVERY,
    Announcement,
    Broadcast,
    BroadcastStatus,
    BulkStatement,
    Command,
    Database,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
    Zone,
)
from broadcaster.devices import DeviceLink, EventWriter, Metrics, apply_delivery_update, finish_broadcast_if_complete
from broadcaster.mqtt import BrokerAddress
from broadcaster.service import villages_of
from schedules import Firing, classify_firing
from schedules.clock import Clock
from schedules.timer import Timer

log = logging.getLogger(__name__)

LATE_TOLERANCE_S = 1.0  # dispatched later than this past start_at counts as late
LATE_PREP_S = 3.0  # a late airing starts this long after dispatch, so devices can fetch the audio
RESEND_AFTER_S = 15.0  # an unacknowledged command to an online device goes out again after this
TIMER_HORIZON_S = 900.0  # broadcasts further ahead wait for a later reconcile, not in the timer
ISSUE_CHUNK = 5000  # commands committed and published together when finishing an interrupted dispatch
FIRST_CHUNK = 250  # a dispatch's first commit and publish; each later chunk is twice the one before
CLAIMS_REMEMBERED = 10_000  # a day's placements many times over
ISSUE_STALE_S = 10.0  # deliveries left without a command this long were interrupted, not in progress
CHORES_EVERY_S = 300.0  # programmes are expanded 36 h ahead, so a few minutes' delay costs nothing


_DELIVERIES = cast(Table, Delivery.__table__)
_COMMANDS = cast(Table, Command.__table__)
_INSERT_DELIVERIES = BulkStatement(insert(_DELIVERIES))
_INSERT_COMMANDS = BulkStatement(insert(_COMMANDS))


def growing_chunks(rows: list[Any], first: int = FIRST_CHUNK, largest: int = ISSUE_CHUNK) -> list[list[Any]]:
    """Small first, so the first commands are on the wire at once; then larger, because every chunk
    costs a commit."""
    chunks: list[list[Any]] = []
    size, i = first, 0
    while i < len(rows) or not chunks:
        chunks.append(rows[i : i + size])
        i += size
        size = min(size * 2, largest)
    return chunks


def _command_type(kind: DeviceKind) -> protocol.CommandType:
    return "play" if kind is DeviceKind.SPEAKER else "led.show"


class _Bodies:
    """Command bodies of one broadcast, built once per kind of device (they differ by nothing else),
    and a stamp per body that signs its commands without serializing each one again."""

    def __init__(self, dispatcher: Dispatcher, b: Broadcast) -> None:
        self._dispatcher, self._b = dispatcher, b
        self.broadcast_id, self.expires_at = b.id, b.expires_at
        self._cache: dict[tuple[DeviceKind, bool], dict[str, object] | None] = {}
        self._stamps: dict[tuple[DeviceKind, bool], protocol.CommandStamp | None] = {}

    def get(self, kind: DeviceKind, diacritics: bool) -> dict[str, object] | None:
        key = (kind, bool(diacritics))
        if key not in self._cache:
            self._cache[key] = self._dispatcher._body(kind, key[1], self._b.announcement, self._b)
        return self._cache[key]

    def stamp(self, kind: DeviceKind, diacritics: bool, now: datetime) -> protocol.CommandStamp | None:
        key = (kind, bool(diacritics))
        if key not in self._stamps:
            body, b = self.get(kind, diacritics), self._b
            self._stamps[key] = None if body is None else protocol.CommandStamp(
                self._dispatcher.signer, _command_type(kind), dict(body), issued_at=now, start_at=b.start_at,
                expires_at=b.expires_at, priority=b.priority,
            )  # fmt: skip
        return self._stamps[key]


# A command to issue: its broadcast's bodies, the delivery, the device, its kind and whether it shows diacritics
_Row = tuple["_Bodies", int, str, DeviceKind, bool]


@dataclass
class Outgoing:
    device_id: str
    command_id: str
    payload: bytes
    expires_at: datetime


class Dispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: DispatchConfig,
        signer: protocol.Signer,
        link: DeviceLink,
        timer: Timer,
        audio_url: Callable[[str, str], str],
        chores: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.signer = signer
        self.link = link
        self.timer = timer
        self.audio_url = audio_url
        # Slow periodic work on the same thread (expanding programmes, evicting old audio), so that it
        # never races the reconcile that reads what it writes.
        self.chores = list(chores)
        self._last_chores = 0.0
        self.first_chunk = FIRST_CHUNK
        self._lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._claimed_here: dict[int, None] = {}  # broadcasts this process claimed lately (_remember_claims)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.timer.start()
        # A dispatch cut short by a crash (deliveries stored, some commands not): nothing in this
        # fresh process can still be issuing them, so finish them now rather than after ISSUE_STALE_S.
        with self.db.session() as session:
            interrupted = self._finish_interrupted_dispatches(session, self.clock.now(), stale_s=0.0)
        for bid in interrupted:
            self.issue_commands(bid)
        self.resend_pending(only_unsent=False)
        self._chores()
        self.reconcile()
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.timer.shutdown()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.reconcile_s):
            try:
                self._chores()
                self.reconcile()
            except Exception:
                log.exception("reconcile failed; will retry")

    def _chores(self) -> None:
        if time.monotonic() - self._last_chores < CHORES_EVERY_S and self._last_chores:
            return
        self._last_chores = time.monotonic()
        for chore in self.chores:
            try:
                chore()
            except Exception:
                log.exception("periodic chore %s failed; will retry", getattr(chore, "__name__", chore))

    def poke(self) -> None:
        """Called after a new announcement in this process, so it need not wait for the next reconcile."""
        threading.Thread(target=self.reconcile, name="reconcile-poke", daemon=True).start()

    # ------------------------------------------------------------ planning -> outbox

    def lead_for(self, priority: str) -> timedelta:
        s = self.settings.emergency_lead_s if priority == "emergency" else self.settings.lead_s
        return timedelta(seconds=s)

    def reconcile(self) -> None:
        with self._lock:
            now = self.clock.now()
            horizon = now + timedelta(seconds=self.settings.lead_s + TIMER_HORIZON_S)
            due: list[int] = []
            with self.db.session() as session:
                rows = session.execute(
                    select(Broadcast.id, Broadcast.start_at, Broadcast.expires_at, Broadcast.priority)
                    .where(Broadcast.status == BroadcastStatus.PLANNED, Broadcast.start_at <= horizon)
                    .order_by(Broadcast.start_at)
                ).all()
                for bid, start_at, expires_at, priority in rows:
                    if now >= expires_at:
                        self._mark_missed(session, bid, "Quá thời hạn phát khi hệ thống chưa gửi được lệnh")
                        continue
                    fire_at = start_at - self.lead_for(priority)
                    if fire_at <= now:
                        due.append(bid)
                    else:
                        self.timer.schedule(f"dispatch:{bid}", fire_at, self._on_timer)
                self._expire_deliveries(session, now)
                unfinished = self._finish_interrupted_dispatches(session, now)
        for bid in due:
            self.dispatch(bid)
        for bid in unfinished:
            self.issue_commands(bid)
        self.resend_pending(only_unsent=True)

    def _on_timer(self, job_id: str) -> None:
        try:
            self.dispatch(int(job_id.split(":", 1)[1]))
        except Exception:
            log.exception("dispatch of %s failed; reconcile will retry", job_id)

    def _mark_missed(self, session: Session, broadcast_id: int, reason: str) -> None:
        session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == BroadcastStatus.PLANNED)
            .values(status=BroadcastStatus.MISSED, reason=reason)
        )
        log.warning("broadcast %s missed: %s", broadcast_id, reason)

    def _expire_deliveries(self, session: Session, now: datetime) -> None:
        rows = session.execute(
            select(Delivery, Command)
            .join(Command, Command.delivery_id == Delivery.id)
            .where(Command.expires_at <= now, Delivery.status.not_in(list(FINAL_DELIVERY)))
        ).all()
        touched = set()
        for delivery, _cmd in rows:
            # A device that started playing but never reported the end: keep it "playing" until the
            # broadcast itself is long over, then call it expired with that reason.
            reason = "Thiết bị không xác nhận trước khi lệnh hết hạn"
            if apply_delivery_update(delivery, DeliveryStatus.EXPIRED, now, reason):
                touched.add(delivery.broadcast_id)
        for bid in touched:
            finish_broadcast_if_complete(session, bid)

    def dispatch(self, broadcast_id: int) -> int:
        """Turn one planned broadcast, with the rest of its placement (the other villages' rows of the
        same airing and start), into commands, once. Returns how many commands were queued.

        A commune-wide bulletin is one row per village, and the timer fires all of them at the same
        instant: the first call takes them all, so the villages' commands go out as one stream rather
        than as fifty dispatches fighting over the database, and the later calls find nothing to do.
        """
        if broadcast_id in self._claimed_here:
            return 0  # taken with its placement by another village's call
        # One claim at a time in this process: the other villages' calls of a placement wait here, then
        # find their rows taken without asking the database.
        with self._claim_lock:
            if broadcast_id in self._claimed_here:
                return 0
            with self.db.session() as session:
                now = self.clock.now()
                claimed = self._claim_placement(session, broadcast_id, now)
                targets = self._targets(session, claimed, now)
                ids = sorted({bodies.broadcast_id for bodies, _, _, _ in targets})
                if targets:
                    chunks, outgoing, issued = self._first_chunk(session, targets, ids, now)
            self._remember_claims([b.id for b in claimed])
        if not targets:
            return 0
        self._send(outgoing, issued)
        sent = len(outgoing)
        # The rest a chunk at a time, each committed and then published: the first villages' speakers are
        # fetching the audio while the later commands are still being signed and stored.
        for chunk in chunks[1:]:
            try:
                with self.db.session() as session:
                    live = set(
                        session.scalars(
                            select(Broadcast.id).where(
                                Broadcast.id.in_(ids), Broadcast.status == BroadcastStatus.DISPATCHED
                            )
                        )
                    )
                    chunk = [row for row in chunk if row[0].broadcast_id in live]  # not cancelled meanwhile
                    commands, outgoing, issued = self._sign(now, chunk)
                    _INSERT_COMMANDS.executemany(session.connection(), commands)
            except IntegrityError:
                log.info("commands for broadcasts %s are being issued elsewhere", ids)
                break
            self._send(outgoing, issued)
            sent += len(outgoing)
        log.info("broadcasts %s dispatched to %d devices", ids, sent)
        return sent

    def _first_chunk(
        self, session: Session, targets: list[tuple[_Bodies, str, DeviceKind, bool]], ids: list[int], now: datetime
    ) -> tuple[list[list[_Row]], list[Outgoing], list[tuple[int, int]]]:
        """Every delivery, and the first few commands, in the claim's own transaction: a crash before
        its commit leaves the broadcasts planned, to be dispatched whole after a restart, and one after
        it leaves deliveries without commands, which start() and reconcile finish."""
        conn = session.connection()
        _INSERT_DELIVERIES.executemany(
            conn,
            [
                {"broadcast_id": bodies.broadcast_id, "device_id": device_id, "status": DeliveryStatus.QUEUED,
                 "reason": "", "start_error_ms": None, "updated_at": now}
                for bodies, device_id, _, _ in targets
            ],
        )  # fmt: skip
        delivery_of = {  # `ids`: the broadcasts of `targets`
            (bid, device_id): did
            for did, bid, device_id in conn.execute(
                select(_DELIVERIES.c.id, _DELIVERIES.c.broadcast_id, _DELIVERIES.c.device_id).where(
                    _DELIVERIES.c.broadcast_id.in_(ids)
                )
            )
        }
        rows = [
            (bodies, delivery_of[bodies.broadcast_id, device_id], device_id, kind, dia)
            for bodies, device_id, kind, dia in targets
        ]
        for bodies, _, _, kind, dia in rows:  # every stamp while the broadcasts are attached
            bodies.stamp(kind, dia, now)
        chunks = growing_chunks(rows, self.first_chunk)
        commands, outgoing, issued = self._sign(now, chunks[0])
        _INSERT_COMMANDS.executemany(conn, commands)
        return chunks, outgoing, issued

    def _remember_claims(self, ids: list[int]) -> None:
        self._claimed_here.update(dict.fromkeys(ids))
        while len(self._claimed_here) > CLAIMS_REMEMBERED:  # oldest first: dicts keep insertion order
            del self._claimed_here[next(iter(self._claimed_here))]

    def _claim_placement(self, session: Session, broadcast_id: int, now: datetime) -> list[Broadcast]:
        """The planned rows of this broadcast's placement that this call moved to DISPATCHED (a
        conditional UPDATE each: two racing callers never both own a row)."""
        b = session.get(Broadcast, broadcast_id)
        if b is None or b.status is not BroadcastStatus.PLANNED:
            return []
        ids = [broadcast_id]
        if b.airing_id:
            ids += session.scalars(
                select(Broadcast.id)
                .where(
                    Broadcast.airing_id == b.airing_id,
                    Broadcast.start_at == b.start_at,
                    Broadcast.status == BroadcastStatus.PLANNED,
                    Broadcast.id != broadcast_id,
                )
                .order_by(Broadcast.id)
            ).all()
        claimed: list[int] = []
        for bid in ids:
            result = session.execute(
                update(Broadcast)
                .where(Broadcast.id == bid, Broadcast.status == BroadcastStatus.PLANNED)
                .values(status=BroadcastStatus.DISPATCHED, dispatched_at=now)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], result).rowcount == 1:
                claimed.append(bid)
        if not claimed:
            return []
        return list(
            session.scalars(  # the rows as the UPDATEs left them
                select(Broadcast).where(Broadcast.id.in_(claimed)).order_by(Broadcast.id)
                .execution_options(populate_existing=True)
            )
        )  # fmt: skip

    def _targets(
        self, session: Session, claimed: list[Broadcast], now: datetime
    ) -> list[tuple[_Bodies, str, DeviceKind, bool]]:
        """The devices the claimed broadcasts go to, with their command bodies. A broadcast too late to
        air, or with nobody to hear it, gets none and says why."""
        live = [b for b in claimed if self._still_on_time(b, now)]
        if not live:
            return []
        zones = {z.id: z for z in session.scalars(select(Zone).where(Zone.id.in_({b.zone_id for b in live})))}
        villages = {b.id: villages_of(session, zones[b.zone_id]) for b in live}
        devices: dict[str, list[tuple[str, DeviceKind, bool]]] = {}
        wanted = sorted({v for vs in villages.values() for v in vs})
        if wanted:
            # Columns, not ORM objects: a commune-wide bulletin has thousands of targets.
            for village, device_id, kind, dia in session.connection().execute(
                select(Device.village_id, Device.id, Device.kind, Device.diacritics)
                .where(Device.village_id.in_(wanted))
                .order_by(Device.id)
            ):
                devices.setdefault(village, []).append((device_id, kind, dia))
        targets: list[tuple[_Bodies, str, DeviceKind, bool]] = []
        for b in live:
            bodies = _Bodies(self, b)
            mine = [
                (bodies, device_id, kind, dia)
                for village in villages[b.id]
                for device_id, kind, dia in devices.get(village, [])
                if bodies.get(kind, dia) is not None
            ]
            if not mine:
                b.status = BroadcastStatus.DONE
                b.reason = "Không có thiết bị nào trong khu vực"
            targets += mine
        return targets

    def _still_on_time(self, b: Broadcast, now: datetime) -> bool:
        """False, and the broadcast marked missed, when it can no longer air whole; a late one is moved
        to start shortly, and says so."""
        verdict = classify_firing(
            b.start_at,
            b.expires_at,
            now,
            duration=timedelta(milliseconds=b.duration_ms),
            tolerance=timedelta(seconds=LATE_TOLERANCE_S),
        )
        if verdict is Firing.MISSED:
            b.status = BroadcastStatus.MISSED
            b.reason = "Quá thời hạn phát: không còn kịp phát trọn trước khi hết hiệu lực"
            return False
        if verdict is Firing.LATE:
            late_by = int((now + timedelta(seconds=LATE_PREP_S) - b.start_at).total_seconds())
            b.start_at = now + timedelta(seconds=LATE_PREP_S)  # the start devices are given
            b.late = True
            b.reason = f"Phát trễ {late_by} giây"
        return True

    def issue_commands(self, broadcast_id: int) -> int:
        """Signed commands for the broadcast's deliveries that have none yet, a chunk at a time.

        `dispatch` stores every delivery with its first chunk of commands, then the rest chunk by chunk;
        this finishes the deliveries a dispatch cut off between chunks left without a command (a crash,
        a database error). A delivery gets at most one command (a unique constraint), so a race between
        two callers ends with one command each, never two.
        """
        total = 0
        while True:
            now = self.clock.now()
            outgoing: list[Outgoing] = []
            issued: list[tuple[int, int]] = []
            try:
                with self.db.session() as session:
                    b = session.get(Broadcast, broadcast_id)
                    if b is None or b.status is not BroadcastStatus.DISPATCHED or now >= b.expires_at:
                        return total
                    rows = session.connection().execute(  # Core rows: thousands of them
                        select(Delivery.id, Device.id, Device.kind, Device.diacritics)
                        .join(Device, Delivery.device_id == Device.id)
                        .outerjoin(Command, Command.delivery_id == Delivery.id)
                        .where(Delivery.broadcast_id == broadcast_id, Command.id.is_(None))
                        .order_by(Delivery.id)
                        .limit(ISSUE_CHUNK)
                    ).all()
                    bodies = _Bodies(self, b)
                    commands, outgoing, issued = self._sign(now, [(bodies, *row) for row in rows])
                    _INSERT_COMMANDS.executemany(session.connection(), commands)
            except IntegrityError:
                log.info("commands for broadcast %s are being issued elsewhere", broadcast_id)
                return total
            self._send(outgoing, issued)
            total += len(outgoing)
            if len(rows) < ISSUE_CHUNK:
                return total

    def _sign(
        self, now: datetime, rows: Sequence[_Row]
    ) -> tuple[list[dict[str, Any]], list[Outgoing], list[tuple[int, int]]]:
        """Outbox rows, wire messages and their (delivery, broadcast) ids for (bodies, delivery, device,
        kind, diacritics) rows."""
        commands: list[dict[str, Any]] = []
        outgoing: list[Outgoing] = []
        issued: list[tuple[int, int]] = []
        for bodies, delivery_id, device_id, kind, diacritics in rows:
            stamp = bodies.stamp(kind, diacritics, now)
            if stamp is None:
                continue
            command_id, payload = stamp()
            commands.append(
                {
                    "id": command_id,
                    "device_id": device_id,
                    "delivery_id": delivery_id,
                    "type": _command_type(kind),
                    "payload": payload.decode("utf-8"),
                    "created_at": now,
                    "expires_at": bodies.expires_at,
                    "send_count": 1,
                    "sent_at": None,
                    "acked_at": None,
                }
            )
            outgoing.append(Outgoing(device_id, command_id, payload, bodies.expires_at))
            issued.append((delivery_id, bodies.broadcast_id))
        return commands, outgoing, issued

    def _send(self, outgoing: list[Outgoing], issued: list[tuple[int, int]]) -> None:
        """Publish committed commands (and tell the ack writer about them first, see _RowCache)."""
        self.link.writer.remember_commands(
            [(o.command_id, o.device_id, d, bid) for o, (d, bid) in zip(outgoing, issued, strict=True)]
        )
        self._publish(outgoing)

    def _finish_interrupted_dispatches(
        self, session: Session, now: datetime, stale_s: float = ISSUE_STALE_S
    ) -> list[int]:
        """Broadcasts whose deliveries were stored but not all of their commands (a crash mid-dispatch)."""
        return list(
            session.scalars(
                select(Delivery.broadcast_id)
                .distinct()
                .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
                .outerjoin(Command, Command.delivery_id == Delivery.id)
                .where(
                    Command.id.is_(None),
                    Broadcast.status == BroadcastStatus.DISPATCHED,
                    Broadcast.expires_at > now,
                    Delivery.updated_at <= now - timedelta(seconds=stale_s),
                )
            )
        )

    def _body(
        self, kind: DeviceKind, diacritics: bool, item: Announcement | None, b: Broadcast
    ) -> dict[str, object] | None:
        """What a device of this kind is told to do for the broadcast; None: nothing to do."""
        if kind is DeviceKind.SPEAKER and b.programme and b.programme.stream_url and b.kind == "relay":
            return {"title": b.title, "stream": {"url": b.programme.stream_url, "duration_s": b.duration_ms / 1000}}
        if kind is DeviceKind.SPEAKER:
            if item is None or item.audio_sha256 is None:
                return None
            return {
                "title": item.title,
                "audio": {
                    "url": self.audio_url(item.audio_sha256, item.audio_ext),
                    "sha256": item.audio_sha256,
                    "size": item.audio_size,
                    "duration_ms": item.audio_duration_ms,
                    "format": item.audio_ext,
                },
            }
        text = b.title if diacritics else protocol.strip_diacritics(b.title)
        return {
            "text": text,
            "duration_s": max(5, round(b.duration_ms / 1000)),
            "scroll_speed": 2,
            "diacritics": diacritics,
        }

    # ------------------------------------------------------------ outbox -> wire

    def _publish(self, outgoing: list[Outgoing]) -> None:
        now = self.clock.now()
        for o in outgoing:
            remaining = (o.expires_at - now).total_seconds()
            if remaining <= 0:
                continue
            self.link.publish(o.device_id, o.command_id, o.payload, remaining)

    def resend_pending(self, *, only_unsent: bool, device_ids: list[str] | None = None) -> int:
        """Publish outbox commands that are not yet acknowledged and not expired.

        only_unsent: just those the broker has not confirmed for RESEND_AFTER_S (a crash between commit and
        publish, a broker down), plus those an online device has not acknowledged for as long (the broker
        may have dropped them).
        Devices ignore a command id they have already seen, so sending twice never plays twice.
        """
        if only_unsent and self.link.writer.lagging:
            return 0  # the acks are probably in the writer's queue; re-sending now only adds load
        now = self.clock.now()
        with self.db.session() as session:
            q = select(Command).where(Command.acked_at.is_(None), Command.expires_at > now)
            if device_ids is not None:
                q = q.where(Command.device_id.in_(device_ids))
            if only_unsent:
                stale = now - timedelta(seconds=RESEND_AFTER_S)
                online = select(Device.id).where(Device.online.is_(True))
                q = q.where(
                    (Command.sent_at.is_(None) & (Command.created_at < stale))
                    | ((Command.sent_at < stale) & Command.device_id.in_(online))
                )
            commands = list(session.scalars(q.order_by(Command.created_at)))
            for c in commands:
                c.send_count += 1
                if c.sent_at is not None:
                    c.sent_at = now  # restart the resend clock
            outgoing = [Outgoing(c.device_id, c.id, c.payload.encode("utf-8"), c.expires_at) for c in commands]
        self._publish(outgoing)
        return len(outgoing)

    def on_devices_online(self, device_ids: list[str]) -> None:
        n = self.resend_pending(only_unsent=False, device_ids=device_ids)
        if n:
            log.info("%d devices are back: re-sent %d pending commands", len(device_ids), n)


@dataclass
class DevicePath:
    """The daemon's way to the devices and back, built in one place: the writer records what the link
    hears, the dispatcher sends through the link, and a device coming online makes it re-send."""

    writer: EventWriter
    link: DeviceLink
    dispatcher: Dispatcher
    metrics: Metrics

    @classmethod
    def build(
        cls,
        db: Database,
        clock: Clock,
        settings: DispatchConfig,
        signer: protocol.Signer,
        address: BrokerAddress,
        audio_url: Callable[[str, str], str],
        *,
        topics: protocol.Topics | None = None,
        client_id: str = "loa-daemon",
        chores: Sequence[Callable[[], object]] = (),
        writer: EventWriter | None = None,
    ) -> DevicePath:
        metrics = writer.metrics if writer is not None else Metrics()
        writer = writer or EventWriter(db, clock, metrics)
        link = DeviceLink(address, topics or protocol.Topics(), writer, metrics, client_id=client_id)
        dispatcher = Dispatcher(db, clock, settings, signer, link, Timer(clock), audio_url, chores=chores)
        writer.on_devices_online = dispatcher.on_devices_online
        return cls(writer, link, dispatcher, metrics)

    def start(self, *, dispatch: bool = True) -> None:
        """`dispatch=False` leaves the dispatcher's own loop off, for callers that drive it by hand."""
        self.writer.start()
        self.link.start()
        if dispatch:
            self.dispatcher.start()

    def stop(self) -> None:
        for part in (self.dispatcher, self.link, self.writer):
            try:
                part.stop()
            except Exception:
                log.exception("while stopping %s", type(part).__name__)
