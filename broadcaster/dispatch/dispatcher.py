"""The dispatch wing's one entry point: its parts built together, started in the right order.

- `claim` takes a placement once (a conditional UPDATE) and works out who hears it;
- `bodies` says what each kind of device is told;
- `outbox` signs, stores and publishes the commands chunk by chunk;
- `resend` puts unacknowledged commands on the wire again;
- `recall` stops on the devices what a person recalled;
- `reconcile` re-reads the database and sets the timer;
- `link` is the MQTT connection, `events` writes what devices report.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from broadcaster import protocol
from broadcaster.config import DispatchConfig
from broadcaster.db import Database
from broadcaster.dispatch.bodies import AudioUrl, LiveUrl
from broadcaster.dispatch.link import DeviceLink
from broadcaster.dispatch.outbox import Outbox
from broadcaster.dispatch.recall import Recall
from broadcaster.dispatch.reconcile import Reconciler, WakeTimer
from broadcaster.dispatch.resend import Resender
from schedules.clock import Clock

log = logging.getLogger(__name__)


class Dispatcher:
    """Planned broadcasts to signed commands on the wire, exactly once, whatever restarts between."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: DispatchConfig,
        signer: protocol.Signer,
        link: DeviceLink,
        timer: WakeTimer,
        audio_url: AudioUrl,
        live_url: LiveUrl | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.timer = timer
        self.outbox = Outbox(db, clock, signer, link, audio_url, live_url)
        self.resender = Resender(db, clock, link, self.outbox)
        self.recall = Recall(db, clock, signer, self.outbox)
        self.reconciler = Reconciler(db, clock, settings, timer, self.outbox, self.resender, self.recall)

    # ------------------------------------------------------------ the parts' entry points

    def dispatch(self, broadcast_id: int) -> int:
        return self.outbox.dispatch(broadcast_id)

    def issue_commands(self, broadcast_id: int) -> int:
        return self.outbox.issue_commands(broadcast_id)

    def reconcile(self) -> None:
        self.reconciler.reconcile()

    def resend_pending(self, *, only_unsent: bool, device_ids: list[str] | None = None) -> int:
        return self.resender.resend_pending(only_unsent=only_unsent, device_ids=device_ids)

    def on_devices_online(self, device_ids: list[str]) -> None:
        self.resender.on_devices_online(device_ids)

    @property
    def first_chunk(self) -> int:
        return self.outbox.first_chunk

    @first_chunk.setter
    def first_chunk(self, size: int) -> None:
        self.outbox.first_chunk = size

    def lead_for(self, priority: str) -> timedelta:
        return self.reconciler.lead_for(priority)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the timer and catch up with what a previous run left: interrupted dispatches, commands
        never confirmed, broadcasts now due."""
        self.timer.start()
        # A dispatch cut short by a crash (deliveries stored, some commands not): nothing in this
        # fresh process can still be issuing them, so finish them now rather than after ISSUE_STALE_S.
        with self.db.session() as session:
            interrupted = self.reconciler.interrupted_dispatches(session, self.clock.now(), stale_s=0.0)
        for bid in interrupted:
            self.issue_commands(bid)
        self.resend_pending(only_unsent=False)
        self.reconcile()

    def stop(self) -> None:
        self.timer.shutdown()

    def poke(self) -> None:
        """Called after a change in this process (a new announcement, a recall), so it need not wait for
        the next reconcile: a recall's stops go out at once."""
        threading.Thread(target=self.reconcile, name="reconcile-poke", daemon=True).start()
