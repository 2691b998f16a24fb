"""Re-sending what the outbox holds and no device has acknowledged.

The broker may drop a queued message (a slow client, a restart from an old snapshot); the outbox does
not. Devices ignore a command id they have already acted on and answer with their last ack, so sending
twice never plays twice. A play of a recalled (cancelled) broadcast is revoked: it is never sent again,
only its stop is (broadcaster.dispatch.recall).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import or_, select

from broadcaster.db import Broadcast, BroadcastStatus, Command, Database, Delivery, Device
from broadcaster.dispatch.link import DeviceLink
from broadcaster.dispatch.outbox import Outbox, Outgoing
from schedules.clock import Clock

log = logging.getLogger(__name__)

RESEND_AFTER_S = 15.0  # an unacknowledged command to an online device goes out again after this
# ... and after this, for CATCH_UP_S after the daemon's link to the broker (re)connects. A broker that was
# SIGKILLed comes back from its last snapshot (or none): the sessions of devices it held since are gone, so
# what the daemon published to them just before (or at its own restart, before they were back) went to
# nobody. They reconnect within their back-off (at most 30 s), and never looked offline to the database
# (the broker died before their last will), so only a prompt re-send finds them (bench/faults.py).
CATCH_UP_RESEND_S = 3.0
CATCH_UP_S = 60.0


class Resender:
    def __init__(self, db: Database, clock: Clock, link: DeviceLink, outbox: Outbox) -> None:
        self.db = db
        self.clock = clock
        self.link = link
        self.outbox = outbox
        self._catch_up_until = 0.0
        self._link_was_up = False

    def _resend_after(self) -> float:
        """RESEND_AFTER_S, or CATCH_UP_RESEND_S for a while after the link to the broker came (back) up."""
        up = self.link.connected.is_set()
        if up and not self._link_was_up:
            self._catch_up_until = time.monotonic() + CATCH_UP_S
        self._link_was_up = up
        return CATCH_UP_RESEND_S if time.monotonic() < self._catch_up_until else RESEND_AFTER_S

    def resend_pending(self, *, only_unsent: bool, device_ids: list[str] | None = None) -> int:
        """Publish outbox commands that are not yet acknowledged and not expired.

        only_unsent: just those the broker has not confirmed for RESEND_AFTER_S (a crash between commit and
        publish, a broker down), plus those an online device has not acknowledged for as long (the broker
        may have dropped them).
        """
        if only_unsent and self.link.writer.lagging:
            return 0  # the acks are probably in the writer's queue; re-sending now only adds load
        now = self.clock.now()
        with self.db.session() as session:
            q = (
                select(Command)
                .outerjoin(Delivery, Command.delivery_id == Delivery.id)
                .outerjoin(Broadcast, Delivery.broadcast_id == Broadcast.id)
                .where(
                    Command.acked_at.is_(None),
                    Command.expires_at > now,
                    # a stop has no delivery; a play of a recalled broadcast is revoked
                    or_(Broadcast.id.is_(None), Broadcast.status != BroadcastStatus.CANCELLED),
                )
            )
            if device_ids is not None:
                q = q.where(Command.device_id.in_(device_ids))
            if only_unsent:
                stale = now - timedelta(seconds=self._resend_after())
                online = select(Device.id).where(Device.online.is_(True))
                q = q.where(
                    (Command.sent_at.is_(None) & (Command.created_at < stale))
                    | ((Command.sent_at < stale) & Command.device_id.in_(online))
                )
            # Not those still waiting in paho's own queue: re-publishing them every reconcile while a busy
            # link drained the first copies grew that queue without end (bench/load.py: 40,000 messages and
            # 268,558 sends for 63,200 deliveries).
            waiting = self.link.unconfirmed()
            commands = [c for c in session.scalars(q.order_by(Command.created_at)) if c.id not in waiting]
            for c in commands:
                c.send_count += 1
                if c.sent_at is not None:
                    c.sent_at = now  # restart the resend clock
            outgoing = [Outgoing(c.device_id, c.id, c.payload.encode("utf-8"), c.expires_at) for c in commands]
        self.outbox.publish(outgoing)
        return len(outgoing)

    def on_devices_online(self, device_ids: list[str]) -> None:
        n = self.resend_pending(only_unsent=False, device_ids=device_ids)
        if n:
            log.info("%d devices are back: re-sent %d pending commands", len(device_ids), n)
