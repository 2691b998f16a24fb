"""The parts only the leading daemon runs, started and stopped together.

A daemon alone runs them from its start to its end. In a cluster (broadcaster.runtime.leader) they run
on whichever daemon holds the lead, start when it gets it and stop at once when it loses it, and may
start again later on the same daemon: so each start builds its parts afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from broadcaster import protocol
from broadcaster.runtime.alerts import AlertPoller
from broadcaster.runtime.feeds import FeedPoller
from broadcaster.runtime.path import DevicePath
from broadcaster.runtime.slogans import SloganRotation
from broadcaster.services import Services

log = logging.getLogger(__name__)


class LeaderDuties:
    """Planning and firing (the dispatcher's timer and its reconcile loop with the chores: programmes,
    audio eviction, feedback purge), the LED slogans, and the alert and feed pollers."""

    def __init__(self, svc: Services, signer: protocol.Signer, path: DevicePath, on_change: Callable[[], None]) -> None:
        self.svc = svc
        self.signer = signer
        self.path = path
        self.on_change = on_change
        self.slogans: SloganRotation | None = None
        self.alerts: AlertPoller | None = None
        self.feeds: FeedPoller | None = None

    def start(self) -> None:
        self.path.lead()
        self.slogans = SloganRotation.build(self.svc, self.signer, self.path.dispatcher.outbox)
        self.slogans.start()  # the LED boards' slogans in turn, between broadcasts ([led] slogan_every_s)
        self.alerts = AlertPoller(self.svc, on_change=self.on_change)
        self.alerts.start()  # the CAP sources served at a URL ([alerts.sources], kind cap-url)
        self.feeds = FeedPoller(self.svc)
        self.feeds.start()  # the news feeds: new articles become drafts awaiting approval

    def stop(self) -> None:
        """Everything at once; the API and the recording of device reports go on."""
        for part in (self.feeds, self.alerts, self.slogans):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("while stopping %s", type(part).__name__)
        self.feeds = self.alerts = self.slogans = None
        self.path.follow()
