"""From a claimed placement to signed commands in the outbox, and from the outbox onto the wire.

The outbox (the `commands` table) is the truth: a command is committed before it is published, so a
crash or a broker that drops messages costs a re-send, never a command.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster import protocol
from broadcaster.db import (
    Broadcast,
    BroadcastStatus,
    BulkStatement,
    Command,
    Database,
    Delivery,
    DeliveryStatus,
    Device,
    DeviceKind,
)
from broadcaster.dispatch.bodies import AudioUrl, CommandBodies, LiveUrl, command_type
from broadcaster.dispatch.claim import Target, claim_placement, targets
from broadcaster.dispatch.link import DeviceLink
from schedules.clock import Clock

log = logging.getLogger(__name__)

ISSUE_CHUNK = 5000  # commands committed and published together when finishing an interrupted dispatch
FIRST_CHUNK = 250  # a dispatch's first commit and publish; each later chunk is twice the one before
CLAIMS_REMEMBERED = 10_000  # a day's placements many times over

_DELIVERIES = cast(Table, Delivery.__table__)
_COMMANDS = cast(Table, Command.__table__)
_INSERT_DELIVERIES = BulkStatement(insert(_DELIVERIES))
_INSERT_COMMANDS = BulkStatement(insert(_COMMANDS))

# A command to issue: its broadcast's bodies, the delivery, the device, its kind and whether it shows diacritics
_Row = tuple[CommandBodies, int, str, DeviceKind, bool]


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


@dataclass
class Outgoing:
    device_id: str
    command_id: str
    payload: bytes
    expires_at: datetime


class Outbox:
    """Claims placements, stores and signs their commands chunk by chunk, and publishes them."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        signer: protocol.Signer,
        link: DeviceLink,
        audio_url: AudioUrl,
        live_url: LiveUrl | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.signer = signer
        self.link = link
        self.audio_url = audio_url
        self.live_url = live_url
        self.first_chunk = FIRST_CHUNK
        self._claim_lock = threading.Lock()
        self._claimed_here: dict[int, None] = {}  # broadcasts this process claimed lately (_remember_claims)
        # Several daemons (broadcaster.runtime.leader): asked in the claim's transaction whether this one
        # still leads; None for a daemon alone.
        self.fence: Callable[[Session], bool] | None = None

    def bodies(self, b: Broadcast) -> CommandBodies:
        return CommandBodies(b, self.signer, self.audio_url, self.live_url)

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
                if self.fence is not None and not self.fence(session):
                    log.warning("broadcast %s not dispatched here: this daemon no longer leads", broadcast_id)
                    return 0
                claimed = claim_placement(session, broadcast_id, now)
                to = targets(session, claimed, now, self.bodies)
                ids = sorted({bodies.broadcast_id for bodies, _, _, _ in to})
                if to:
                    chunks, outgoing, issued = self._first_chunk(session, to, ids, now)
            self._remember_claims([b.id for b in claimed])
        if not to:
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
        self, session: Session, to: list[Target], ids: list[int], now: datetime
    ) -> tuple[list[list[_Row]], list[Outgoing], list[tuple[int, int]]]:
        """Every delivery, and the first few commands, in the claim's own transaction: a crash before
        its commit leaves the broadcasts planned, to be dispatched whole after a restart, and one after
        it leaves deliveries without commands, which start-up and reconcile finish."""
        conn = session.connection()
        _INSERT_DELIVERIES.executemany(
            conn,
            [
                {"broadcast_id": bodies.broadcast_id, "device_id": device_id, "status": DeliveryStatus.QUEUED,
                 "reason": "", "start_error_ms": None, "updated_at": now}
                for bodies, device_id, _, _ in to
            ],
        )  # fmt: skip
        delivery_of = {  # `ids`: the broadcasts of `to`
            (bid, device_id): did
            for did, bid, device_id in conn.execute(
                select(_DELIVERIES.c.id, _DELIVERIES.c.broadcast_id, _DELIVERIES.c.device_id).where(
                    _DELIVERIES.c.broadcast_id.in_(ids)
                )
            )
        }
        rows = [
            (bodies, delivery_of[bodies.broadcast_id, device_id], device_id, kind, dia)
            for bodies, device_id, kind, dia in to
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
                    bodies = self.bodies(b)
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
            command_id, payload = stamp(device_id)
            commands.append(
                {
                    "id": command_id,
                    "device_id": device_id,
                    "delivery_id": delivery_id,
                    "type": command_type(kind),
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
        """Publish committed commands (and tell the ack writer about them first, see events._RowCache)."""
        self.link.writer.remember_commands(
            [(o.command_id, o.device_id, d, bid) for o, (d, bid) in zip(outgoing, issued, strict=True)]
        )
        self.publish(outgoing)

    def publish(self, outgoing: list[Outgoing]) -> None:
        """Put committed commands on the wire, each with an MQTT expiry of what is left of its validity."""
        now = self.clock.now()
        for o in outgoing:
            remaining = (o.expires_at - now).total_seconds()
            if remaining <= 0:
                continue
            self.link.publish(o.device_id, o.command_id, o.payload, remaining)
