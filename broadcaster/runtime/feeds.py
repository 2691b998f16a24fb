"""The news feeds read while the daemon runs: every few seconds the feeds that are due (their interval
has passed, or a person asked for "read now" on the desk) are read by broadcaster/ingest/feeds.py.

It runs on a thread of its own rather than with the reconcile loop's chores: a feed's server may take
its whole deadline to answer, and rendering an article's speech takes seconds, and neither may delay
the reconcile that dispatches what is due. It writes only feeds, their items and drafts awaiting
approval, nothing the reconcile reads.
"""

from __future__ import annotations

import logging
import threading

from broadcaster.ingest.feeds import Limits, poll_due
from broadcaster.services import Services

log = logging.getLogger(__name__)

TURN_S = 5.0  # how soon "read now" is heard; a turn with nothing due is one query


class FeedPoller:
    def __init__(self, svc: Services, every_s: float = TURN_S, limits: Limits | None = None) -> None:
        self.svc = svc
        self.every_s = every_s
        self.limits = limits
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="feeds", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)  # a feed being read finishes within its deadline; the thread is a daemon

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                poll_due(self.svc, limits=self.limits)
            except Exception:
                log.exception("reading the news feeds failed; the next turn tries again")
