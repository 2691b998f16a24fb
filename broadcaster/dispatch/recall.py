"""Recalled broadcasts on the devices: a signed `stop` for every play a device may still hold.

A person recalls an announcement in the database only (broadcaster.services.recall turns its broadcasts
CANCELLED), so the CLI can do it while the daemon is down. This part, run at the start of every
reconcile, finds what that leaves on its way to the devices and stops it:

- every play or show of a cancelled broadcast whose delivery has not ended gets a `stop` naming it,
  committed to the outbox and then published like any command, so a device that is offline gets it
  from its broker session or from the re-send when it comes back, before or after the play (the device
  takes a stopped id for good, docs/protocol.md "Timing and priorities");
- a delivery of a cancelled broadcast that never got a command (a dispatch cut off by a crash) is
  closed as `recalled`: no device holds anything to stop.

The outbox never re-sends a play of a cancelled broadcast (broadcaster.dispatch.resend), and claims
and issues only for PLANNED and DISPATCHED rows, so nothing new goes out for it either.

A stop's id is derived from the id of the play it stops (`stop_id`), which is what makes this safe to
run every second, from two daemons, or after a crash between commit and publish: the outbox's primary
key holds at most one stop per play, and "is this play stopped yet?" is a lookup without a column.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcaster import protocol
from broadcaster.db import FINAL_DELIVERY, Broadcast, BroadcastStatus, Command, Database, Delivery, DeliveryStatus
from broadcaster.dispatch.outbox import Outbox, Outgoing
from broadcaster.messages import coded_reason
from schedules.clock import Clock

log = logging.getLogger(__name__)

# Namespace of the stops' ids (uuid5 of the play's id): fixed, so every daemon derives the same one.
STOP_NAMESPACE = uuid.UUID("5b0d3c1e-7a43-4e5f-9c2b-3f6a1d8e0b71")
STOP_PRIORITY = "emergency"  # nothing ranks above a recall
_IN_CHUNK = 500  # ids per IN list, a size every database accepts

_COMMANDS = cast(Table, Command.__table__)


def stop_id(play_id: str) -> str:
    """The id of the stop that recalls `play_id`: one per play, whoever computes it."""
    return str(uuid.uuid5(STOP_NAMESPACE, play_id))


class Recall:
    """Stops for the plays of cancelled broadcasts, through the outbox."""

    def __init__(self, db: Database, clock: Clock, signer: protocol.Signer, outbox: Outbox) -> None:
        self.db = db
        self.clock = clock
        self.signer = signer
        self.outbox = outbox

    def stop_revoked(self, stale_s: float) -> int:
        """Sign, store and publish a stop for every revoked play that has none yet; close deliveries of
        cancelled broadcasts left without a command for `stale_s` (longer than a dispatch takes to issue
        them). Returns how many stops were issued."""
        now = self.clock.now()
        try:
            with self.db.session() as session:
                self._close_uncommanded(session, now, stale_s)
                revoked = self._revoked_plays(session, now)
                wanted = {stop_id(cid): (cid, device_id, expires_at) for cid, device_id, expires_at in revoked}
                issued: set[str] = set()
                ids = sorted(wanted)
                for i in range(0, len(ids), _IN_CHUNK):
                    issued.update(session.scalars(select(Command.id).where(Command.id.in_(ids[i : i + _IN_CHUNK]))))
                rows, outgoing = self._sign(now, [(sid, *wanted[sid]) for sid in ids if sid not in issued])
                if rows:
                    session.execute(insert(_COMMANDS), rows)
        except IntegrityError:
            log.info("stops for recalled broadcasts are being issued elsewhere")
            return 0
        if outgoing:
            self.outbox.publish(outgoing)
            log.warning("recall: %d devices told to stop", len(outgoing))
        return len(outgoing)

    @staticmethod
    def _revoked_plays(session: Session, now: datetime) -> list[tuple[str, str, datetime]]:
        """(command id, device, expiry) of the plays and shows a device may still start or be playing."""
        return [
            (cid, device_id, expires_at)
            for cid, device_id, expires_at in session.execute(
                select(Command.id, Command.device_id, Command.expires_at)
                .join(Delivery, Command.delivery_id == Delivery.id)
                .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
                .where(
                    Broadcast.status == BroadcastStatus.CANCELLED,
                    Broadcast.expires_at > now,
                    Delivery.status.not_in(list(FINAL_DELIVERY)),
                    Command.expires_at > now,
                )
                .order_by(Command.created_at, Command.id)
            )
        ]

    def _sign(
        self, now: datetime, wanted: list[tuple[str, str, str, datetime]]
    ) -> tuple[list[dict[str, Any]], list[Outgoing]]:
        """Outbox rows and wire messages of stops, for (stop id, play id, device, play's expiry)."""
        rows: list[dict[str, Any]] = []
        outgoing: list[Outgoing] = []
        for sid, play_id, device_id, expires_at in wanted:
            # Valid as long as the play it stops: a device offline until then must still get it, and
            # keeps the play's id as taken until a day after that.
            command = protocol.make_command(
                self.signer,
                "stop",
                {"cmd": play_id},
                to=device_id,
                issued_at=now,
                start_at=now,
                expires_at=expires_at,
                priority=STOP_PRIORITY,
                command_id=sid,
            )
            payload = protocol.encode(command)
            rows.append(
                {
                    "id": sid,
                    "device_id": device_id,
                    "delivery_id": None,
                    "type": "stop",
                    "payload": payload.decode("utf-8"),
                    "created_at": now,
                    "expires_at": expires_at,
                    "send_count": 1,
                    "sent_at": None,
                    "acked_at": None,
                }
            )
            outgoing.append(Outgoing(device_id, sid, payload, expires_at))
        return rows, outgoing

    @staticmethod
    def _close_uncommanded(session: Session, now: datetime, stale_s: float) -> None:
        """Deliveries of cancelled broadcasts that no command was ever stored for end `failed`/`recalled`."""
        ids = list(
            session.scalars(
                select(Delivery.id)
                .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
                .where(
                    Broadcast.status == BroadcastStatus.CANCELLED,
                    Delivery.status.not_in(list(FINAL_DELIVERY)),
                    Delivery.updated_at <= now - timedelta(seconds=stale_s),
                    ~select(Command.id).where(Command.delivery_id == Delivery.id).exists(),
                )
            )
        )
        for i in range(0, len(ids), _IN_CHUNK):
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids[i : i + _IN_CHUNK]), Delivery.status.not_in(list(FINAL_DELIVERY)))
                .values(status=DeliveryStatus.FAILED, reason=coded_reason("recalled"), updated_at=now)
                .execution_options(synchronize_session=False)
            )
