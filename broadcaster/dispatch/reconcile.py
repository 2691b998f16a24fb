"""Re-reading the database for work: what is due is dispatched, what is coming is put on the timer.

The timer only wakes us up: its jobs carry a broadcast id and nothing else. Every decision is made by
re-reading the database, so a restart, a second wake-up or a CLI that wrote directly to the database
all end the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from broadcaster.config import DispatchConfig
from broadcaster.db import FINAL_DELIVERY, Broadcast, BroadcastStatus, Command, Database, Delivery, DeliveryStatus
from broadcaster.dispatch.events import apply_delivery_update, finish_broadcast_if_complete
from broadcaster.dispatch.outbox import Outbox
from broadcaster.dispatch.recall import Recall
from broadcaster.dispatch.resend import Resender
from broadcaster.messages import coded_reason
from schedules.clock import Clock

log = logging.getLogger(__name__)

TIMER_HORIZON_S = 900.0  # broadcasts further ahead wait for a later reconcile, not in the timer
ISSUE_STALE_S = 10.0  # deliveries left without a command this long were interrupted, not in progress
# A play on air when its command expires is given this long to report its end. A relay's command expires
# at the end of its window, which is exactly when the relay ends and acks `done` with the seconds it
# relayed: closing it as `no_ack` at that instant threw that record away.
PLAYING_GRACE_S = 60.0


class WakeTimer(Protocol):
    """What reconcile needs of a timer (broadcaster.runtime.timer.Timer is the daemon's)."""

    def schedule(self, job_id: str, run_at: datetime, callback: Callable[[str], None]) -> None: ...

    def start(self) -> None: ...

    def shutdown(self) -> None: ...


class Reconciler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: DispatchConfig,
        timer: WakeTimer,
        outbox: Outbox,
        resender: Resender,
        recall: Recall,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.timer = timer
        self.outbox = outbox
        self.resender = resender
        self.recall = recall
        self._lock = threading.Lock()

    def lead_for(self, priority: str) -> timedelta:
        s = self.settings.emergency_lead_s if priority == "emergency" else self.settings.lead_s
        return timedelta(seconds=s)

    def reconcile(self) -> None:
        with self._lock:
            # First: a recall (written by the API or the CLI) is the most urgent work there is. A
            # failure here must not hold up the airings that are due, so it is logged and retried.
            try:
                self.recall.stop_revoked(ISSUE_STALE_S)
            except Exception:
                log.exception("stopping recalled broadcasts failed; the next reconcile retries")
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
                        self._mark_missed(session, bid, coded_reason("expired_before_dispatch"))
                        continue
                    fire_at = start_at - self.lead_for(priority)
                    if fire_at <= now:
                        due.append(bid)
                    else:
                        self.timer.schedule(f"dispatch:{bid}", fire_at, self._on_timer)
                self._expire_deliveries(session, now)
                unfinished = self.interrupted_dispatches(session, now)
        for bid in due:
            self.outbox.dispatch(bid)
        for bid in unfinished:
            self.outbox.issue_commands(bid)
        self.resender.resend_pending(only_unsent=True)

    def _on_timer(self, job_id: str) -> None:
        try:
            self.outbox.dispatch(int(job_id.split(":", 1)[1]))
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
            select(Delivery, Broadcast.status)
            .join(Command, Command.delivery_id == Delivery.id)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .where(Command.expires_at <= now, Delivery.status.not_in(list(FINAL_DELIVERY)))
            .where(
                or_(
                    Delivery.status != DeliveryStatus.PLAYING,
                    Command.expires_at <= now - timedelta(seconds=PLAYING_GRACE_S),
                )
            )
        ).all()
        touched = set()
        for delivery, status in rows:
            # A device that started playing but never reported the end: keep it "playing" until the
            # broadcast itself is long over, then call it expired with that reason. One that never
            # confirmed the stop of a recalled broadcast was recalled, whatever it did.
            if status is BroadcastStatus.CANCELLED:
                state, reason = DeliveryStatus.FAILED, coded_reason("recalled")
            else:
                state, reason = DeliveryStatus.EXPIRED, coded_reason("no_ack")
            if apply_delivery_update(delivery, state, now, reason):
                touched.add(delivery.broadcast_id)
        for bid in touched:
            finish_broadcast_if_complete(session, bid)

    def interrupted_dispatches(self, session: Session, now: datetime, stale_s: float = ISSUE_STALE_S) -> list[int]:
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
