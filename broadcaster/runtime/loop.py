"""The daemon's heartbeat: every `reconcile_s` the database is re-read, and now and then the chores run.

The chores (expanding programmes a day and a half ahead, evicting old audio) share the reconcile thread,
so they never race the reconcile that reads what they write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

CHORES_EVERY_S = 300.0  # programmes are expanded 36 h ahead, so a few minutes' delay costs nothing


class ReconcileLoop:
    def __init__(
        self,
        reconcile: Callable[[], None],
        interval_s: float,
        chores: Sequence[Callable[[], object]] = (),
        chores_every_s: float = CHORES_EVERY_S,
    ) -> None:
        self.reconcile = reconcile
        self.interval_s = interval_s
        self.chores = list(chores)
        self.chores_every_s = chores_every_s
        self._last_chores: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def fresh(self) -> ReconcileLoop:
        """The same loop, not yet started: a stopped one cannot start again (its thread may still be
        finishing a reconcile)."""
        return ReconcileLoop(self.reconcile, self.interval_s, self.chores, self.chores_every_s)

    def start(self) -> None:
        self.run_chores()
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_chores()
                self.reconcile()
            except Exception:
                log.exception("reconcile failed; will retry")

    def run_chores(self) -> None:
        """Each chore when it is due; one that fails is logged and tried again next time."""
        if self._last_chores is not None and time.monotonic() - self._last_chores < self.chores_every_s:
            return
        self._last_chores = time.monotonic()
        for chore in self.chores:
            try:
                chore()
            except Exception:
                log.exception("periodic chore %s failed; will retry", getattr(chore, "__name__", chore))
