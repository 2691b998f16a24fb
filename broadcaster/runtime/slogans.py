"""The LED boards' slogans in turn, while the daemon runs: every `[led] slogan_every_s` each board that
is free shows its next slogan (broadcaster/services/slogans.py decides which, and which boards are busy
with a broadcast; broadcaster/dispatch/boards.py signs and sends).

It runs on a thread of its own rather than with the reconcile loop's chores, which come every few
minutes: a slogan's turn is a matter of seconds. It writes only outbox rows of its own kind, so it does
not race the reconcile. Where each board is in the rotation is kept in memory: after a restart the
boards start again from the first slogan.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from broadcaster import protocol
from broadcaster.dispatch.boards import BoardText, BoardTexts
from broadcaster.dispatch.outbox import Outbox
from broadcaster.services import Services
from broadcaster.services.slogans import Key, rotation_turn

log = logging.getLogger(__name__)

VALID_S = 10.0  # a slogan that reaches its board later than this is skipped: the next one comes soon
OVERLAP_S = 1.0  # each slogan stays a little past its turn, so the board does not blank between two


class SloganRotation:
    def __init__(self, svc: Services, boards: BoardTexts, every_s: float) -> None:
        self.svc = svc
        self.boards = boards
        self.every_s = every_s
        self.last_shown: dict[str, Key] = {}  # board -> the (position, id) of the slogan it showed last
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def build(cls, svc: Services, signer: protocol.Signer, outbox: Outbox) -> SloganRotation:
        boards = BoardTexts(svc.db, svc.clock, signer, outbox)
        return cls(svc, boards, svc.config.led.slogan_every_s)

    def turn(self) -> int:
        """One turn: each free board's next slogan, sent. Returns how many boards were sent one."""
        valid_s = min(VALID_S, self.every_s)
        shows = rotation_turn(self.svc, self.last_shown, timedelta(seconds=valid_s))
        sent = self.boards.show(
            [BoardText(s.device_id, s.text, s.diacritics) for s in shows], self.every_s + OVERLAP_S, valid_s
        )
        for s in shows:
            self.last_shown[s.device_id] = s.key
        return sent

    def start(self) -> None:
        if self.every_s <= 0:
            return  # [led] slogan_every_s = 0: off
        self._thread = threading.Thread(target=self._run, name="slogans", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            try:
                self.turn()
            except Exception:
                log.exception("the slogans' turn failed; the next turn tries again")
            if self._stop.wait(self.every_s):
                return
