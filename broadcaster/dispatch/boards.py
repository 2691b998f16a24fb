"""Texts on LED boards that belong to no broadcast: the commune's slogans, shown between broadcasts.

Each is a `led.show` like a broadcast's title (docs/protocol.md), signed, committed to the outbox and
then published, so a board checks it like any command; it has no delivery row (nobody reports on a
slogan) and the lowest priority, `background`. Such rows would pile up (a board every half minute is
some three thousand a day), so the ones that expired more than `KEEP` ago are deleted as new ones
are written: nothing reads them any more, and a late ack for one is merely counted as unknown.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, insert

from broadcaster import protocol
from broadcaster.db import Command, Database
from broadcaster.dispatch.outbox import Outbox, Outgoing
from schedules.clock import Clock

log = logging.getLogger(__name__)

KEEP = timedelta(hours=1)  # long enough to see what a board was told, in the database, when asked
PRIORITY = "background"  # below anything a person sends: a broadcast's title always replaces it
SCROLL_SPEED = 2  # as a broadcast's title (dispatch/bodies.py)

_COMMANDS = cast(Table, Command.__table__)


@dataclass(frozen=True)
class BoardText:
    device_id: str
    text: str
    diacritics: bool  # the board's font has Vietnamese marks


class BoardTexts:
    """Signs, stores and publishes texts for LED boards outside any broadcast."""

    def __init__(self, db: Database, clock: Clock, signer: protocol.Signer, outbox: Outbox) -> None:
        self.db = db
        self.clock = clock
        self.signer = signer
        self.outbox = outbox

    def show(self, texts: Sequence[BoardText], duration_s: float, valid_s: float) -> int:
        """Each board shows its text from now for `duration_s`; a board that gets the command more than
        `valid_s` late never shows it (it would be out of turn). Returns how many commands went out."""
        if not texts:
            return 0
        now = self.clock.now()
        expires = now + timedelta(seconds=valid_s)
        rows: list[dict[str, Any]] = []
        outgoing: list[Outgoing] = []
        for t in texts:
            body = {
                "text": t.text if t.diacritics else protocol.strip_diacritics(t.text),
                "duration_s": duration_s,
                "scroll_speed": SCROLL_SPEED,
                "diacritics": t.diacritics,
            }
            cid = str(uuid.uuid4())
            command = protocol.make_command(
                self.signer, "led.show", body, to=t.device_id, issued_at=now, start_at=now, expires_at=expires,
                priority=PRIORITY, command_id=cid,
            )  # fmt: skip
            payload = protocol.encode(command)
            rows.append(
                {"id": cid, "device_id": t.device_id, "delivery_id": None, "type": "led.show",
                 "payload": payload.decode("utf-8"), "created_at": now, "expires_at": expires, "send_count": 1,
                 "sent_at": None, "acked_at": None}
            )  # fmt: skip
            outgoing.append(Outgoing(t.device_id, cid, payload, expires))
        with self.db.session() as session:
            session.execute(
                delete(Command)
                .where(Command.delivery_id.is_(None), Command.type == "led.show", Command.expires_at < now - KEEP)
                .execution_options(synchronize_session=False)
            )
            session.execute(insert(_COMMANDS), rows)
        self.outbox.publish(outgoing)
        return len(outgoing)
