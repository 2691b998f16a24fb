"""The poller of the CAP sources served at a URL (`[alerts.sources.NAME] kind = "cap-url"`).

A thread of its own, not a chore of the reconcile loop: a source that hangs costs up to
`[alerts] fetch_timeout_s`, and the reconcile loop dispatches emergencies. Each source is fetched every
`poll_every_s`; a document that did not change since the last fetch is not read again (so a document
refused once is not refused, and audited, every minute), and after something was aired the dispatcher is
woken at once. The outcome of each fetch is in the source's status (`GET /api/v1/alerts/sources`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable

from broadcaster.errors import LoaError
from broadcaster.ingest.cap import fetch, receive_cap
from broadcaster.services import Services
from broadcaster.services.alerts import note_source

log = logging.getLogger(__name__)


class AlertPoller:
    def __init__(self, svc: Services, on_change: Callable[[], None] = lambda: None) -> None:
        self.svc = svc
        self.on_change = on_change
        cfg = svc.config.alerts
        self.sources = {name: s for name, s in cfg.sources.items() if s.kind == "cap-url"}
        self._due = dict.fromkeys(self.sources, 0.0)
        self._last: dict[str, str] = {}  # the digest of each source's last document read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.sources:
            return
        self._thread = threading.Thread(target=self._run, name="alert-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.svc.config.alerts.fetch_timeout_s + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for name in [n for n, due in self._due.items() if due <= now]:
                self._due[name] = now + self.sources[name].poll_every_s
                try:
                    self.poll(name)
                except Exception:
                    log.exception("polling the alert source %s failed; will retry", name)
            self._stop.wait(max(0.05, min(self._due.values()) - time.monotonic()))

    def poll(self, name: str) -> str:
        """Fetch one source and act on what it serves: `failing`, `unchanged`, `rejected` or the status
        of the alert it held (`aired`, `drafted`, ...)."""
        cfg = self.svc.config.alerts
        try:
            data = fetch(self.sources[name].url, timeout_s=cfg.fetch_timeout_s, max_bytes=cfg.max_kb * 1024)
        except LoaError as exc:
            note_source(self.svc, name, "failing", exc)
            self._last.pop(name, None)
            return "failing"
        digest = hashlib.sha256(data).hexdigest()
        if self._last.get(name) == digest:
            return "unchanged"
        self._last[name] = digest
        try:
            result = receive_cap(self.svc, name, data, posted_by=f"cap:{name}", polled=True)
        except LoaError:
            return "rejected"  # the reason is in the source's status and the audit log
        if not result.get("replay"):
            self.on_change()
        return str(result.get("status", "unchanged"))
