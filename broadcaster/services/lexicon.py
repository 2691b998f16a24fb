"""The commune's lexicon: how its own abbreviations, hamlets and people are read, edited while loa runs.

The table is merged over the configured `[speech] lexicon` (the table wins), and the audio pipeline is
handed `lexicon_source`, which reads both afresh for every render: an officer who hears a name misread
adds its reading and hears the item again, right away, without a restart (the cache key of a render is
its spoken text, so the new reading is a new render, and the old audio is not reused).

Entries are unique by their written form case-folded ("UBND" and "Ubnd" are one entry), though the
reading is matched as written, like the built-in table's. Officers and admins edit it; every change is
in the audit log with the person and the entry before and after.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from audio.normalize import read_aloud
from broadcaster.config import Config
from broadcaster.db import Database, LexiconEntry, audit
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal, require
from broadcaster.services.inputs import MAX_TEXT_CHARS, check_text, fits_sql_int
from schedules.clock import to_local

log = logging.getLogger(__name__)

MAX_WRITTEN_CHARS = 60  # an abbreviation or a name of a few words
MAX_SPOKEN_CHARS = 200  # a few words read out; the column holds 300


def _written_key(written: str) -> str:
    return unicodedata.normalize("NFC", written).casefold()


def _check_written(value: str | None) -> str:
    text = unicodedata.normalize("NFC", (value or "").strip())
    if not text:
        raise LoaError("lexicon_empty.written", {})
    if len(text) > MAX_WRITTEN_CHARS:
        raise LoaError("lexicon_too_long.written", {"max": MAX_WRITTEN_CHARS})
    check_text(text, "written", MAX_WRITTEN_CHARS)
    if any(c in "\r\n\t" or unicodedata.category(c).startswith("C") for c in text):
        raise LoaError("lexicon_bad_chars", {})
    if not any(c.isalnum() for c in text):
        raise LoaError("lexicon_no_word", {})
    return " ".join(text.split())


def _check_spoken(value: str | None) -> str:
    text = unicodedata.normalize("NFC", (value or "").strip())
    if not text:
        raise LoaError("lexicon_empty.spoken", {})
    if len(text) > MAX_SPOKEN_CHARS:
        raise LoaError("lexicon_too_long.spoken", {"max": MAX_SPOKEN_CHARS})
    check_text(text, "spoken", MAX_SPOKEN_CHARS)
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise LoaError("lexicon_bad_chars", {})
    if any(c.isdigit() for c in text):
        # A reading is words: digits would be read again by the number rules, differently in context.
        raise LoaError("lexicon_digits", {})
    if not any(c.isalpha() for c in text):
        raise LoaError("lexicon_no_word", {})
    return " ".join(text.split())


def entry_view(entry: LexiconEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "written": entry.written,
        "spoken": entry.spoken,
        "created_by": entry.created_by,
        "updated_by": entry.updated_by,
        "updated_at": entry.updated_at.isoformat(),
        "updated_at_local": to_local(entry.updated_at).strftime("%H:%M %d/%m/%Y"),
    }


def _entry(session: Session, entry_id: int) -> LexiconEntry:
    found = session.get(LexiconEntry, entry_id) if fits_sql_int(entry_id) else None
    if found is None:
        raise LoaError("not_found.lexicon", {"id": entry_id}, status=404)
    return found


def _unique(session: Session, written: str, but: int | None = None) -> None:
    q = select(LexiconEntry).where(LexiconEntry.written_key == _written_key(written))
    if but is not None:
        q = q.where(LexiconEntry.id != but)
    other = session.scalars(q).first()
    if other is not None:
        raise LoaError("lexicon_exists", {"written": other.written, "id": other.id}, status=409)


def list_entries(svc: Services) -> list[dict[str, Any]]:
    """The commune's readings, in the order of their written forms."""
    with svc.db.session() as session:
        rows = session.scalars(select(LexiconEntry).order_by(LexiconEntry.written_key, LexiconEntry.id))
        return [entry_view(e) for e in rows]


def add_entry(svc: Services, written: str, spoken: str, *, actor: str, by: Principal | None = None) -> dict[str, Any]:
    """A new reading (409 `lexicon_exists` if the written form has one, whatever its case)."""
    require(by, "compose")
    written, spoken = _check_written(written), _check_spoken(spoken)
    now = svc.clock.now()
    with svc.db.session() as session:
        _unique(session, written)
        entry = LexiconEntry(
            written=written, written_key=_written_key(written), spoken=spoken,
            created_at=now, created_by=actor, updated_at=now, updated_by=actor,
        )  # fmt: skip
        session.add(entry)
        session.flush()
        audit(session, now, actor, "lexicon.add", entry=entry.id, written=written, spoken=spoken)
        return entry_view(entry)


def edit_entry(
    svc: Services,
    entry_id: int,
    *,
    written: str | None = None,
    spoken: str | None = None,
    actor: str,
    by: Principal | None = None,
) -> dict[str, Any]:
    """Change a reading's written form, its spoken form, or both; the log keeps what it was."""
    require(by, "compose")
    new_written = None if written is None else _check_written(written)
    new_spoken = None if spoken is None else _check_spoken(spoken)
    now = svc.clock.now()
    with svc.db.session() as session:
        entry = _entry(session, entry_id)
        before = {"written": entry.written, "spoken": entry.spoken}
        if new_written is not None:
            _unique(session, new_written, but=entry.id)
            entry.written, entry.written_key = new_written, _written_key(new_written)
        if new_spoken is not None:
            entry.spoken = new_spoken
        entry.updated_at, entry.updated_by = now, actor
        audit(session, now, actor, "lexicon.edit", entry=entry.id, before=before,
              after={"written": entry.written, "spoken": entry.spoken})  # fmt: skip
        return entry_view(entry)


def delete_entry(svc: Services, entry_id: int, *, actor: str, by: Principal | None = None) -> dict[str, Any]:
    """Remove a reading; the built-in or configured one for the same word, if any, applies again."""
    require(by, "compose")
    now = svc.clock.now()
    with svc.db.session() as session:
        entry = _entry(session, entry_id)
        gone = entry_view(entry)
        session.delete(entry)
        audit(session, now, actor, "lexicon.delete", entry=entry_id, written=gone["written"], spoken=gone["spoken"])
        return gone


def _merged(db: Database, configured: Mapping[str, str]) -> dict[str, str]:
    with db.session() as session:
        rows = session.execute(select(LexiconEntry.written, LexiconEntry.spoken)).all()
    return {**configured, **dict(rows)}


def current_lexicon(svc: Services) -> dict[str, str]:
    """The readings a render made now uses: the configured table with the commune's entries over it."""
    return _merged(svc.db, svc.config.speech.lexicon)


def lexicon_source(db: Database, config: Config) -> Callable[[], Mapping[str, str]]:
    """What the audio pipeline asks before every render. A database that cannot be read then (a lock
    held too long) costs the commune's own readings for that render, never the render: airing beats
    reading a name perfectly."""
    configured = dict(config.speech.lexicon)

    def read() -> Mapping[str, str]:
        try:
            return _merged(db, configured)
        except SQLAlchemyError:
            log.warning("the lexicon could not be read; this render uses the configured one", exc_info=True)
            return configured

    return read


def reading(svc: Services, text: str) -> dict[str, Any]:
    """How a text will be read, as the compose page shows it beside what is typed: the reading, and each
    written piece that was read otherwise (an abbreviation, a number, a name from the lexicon) with
    where it is in the text and in the reading, so the page can highlight the two together."""
    if not isinstance(text, str) or not text.strip():
        raise LoaError("empty_text", {})
    check_text(text, "text", MAX_TEXT_CHARS)
    read = read_aloud(text, current_lexicon(svc))
    return {
        "text": text,
        "spoken": read.spoken,
        "expansions": [
            {
                "written": e.written,
                "spoken": e.spoken,
                "start": e.start,
                "end": e.end,
                "spoken_start": e.spoken_start,
                "spoken_end": e.spoken_end,
                "source": e.source,
            }
            for e in read.expansions
        ],
    }
