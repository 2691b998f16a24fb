"""The commune's lexicon (how its abbreviations and names are read) and the reading of a text as the
compose page shows it beside what is typed (broadcaster/services/lexicon.py).

Everyone signed in reads; officers and admins change the lexicon, each change in the audit log.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from broadcaster.api.auth import Composer
from broadcaster.api.deps import Svc
from broadcaster.api.schemas import LexiconEdit, LexiconIn, LexiconOut, ReadingIn, ReadingOut, refusals
from broadcaster.services.lexicon import add_entry, delete_entry, edit_entry, list_entries, reading

router = APIRouter(tags=["lexicon"])


@router.get("/lexicon", response_model=list[LexiconOut])
def lexicon(svc: Svc) -> list[dict[str, Any]]:
    """The commune's readings, by written form (the configured `[speech] lexicon` is under them)."""
    return list_entries(svc)


@router.post("/lexicon", status_code=201, response_model=LexiconOut, responses=refusals(400, 409, 422))
def add_reading(body: LexiconIn, svc: Svc, who: Composer) -> dict[str, Any]:
    """A new reading, heard in the next render (409 `lexicon_exists` if the word has one, in any case)."""
    return add_entry(svc, body.written, body.spoken, actor=who.username, by=who)


@router.patch("/lexicon/{entry_id}", response_model=LexiconOut, responses=refusals(400, 404, 409, 422))
def change_reading(entry_id: int, body: LexiconEdit, svc: Svc, who: Composer) -> dict[str, Any]:
    return edit_entry(svc, entry_id, written=body.written, spoken=body.spoken, actor=who.username, by=who)


@router.delete("/lexicon/{entry_id}", response_model=LexiconOut, responses=refusals(404, 422))
def remove_reading(entry_id: int, svc: Svc, who: Composer) -> dict[str, Any]:
    """Remove a reading; the one it overrode (built-in or configured), if any, applies again."""
    return delete_entry(svc, entry_id, actor=who.username, by=who)


@router.post("/readings", response_model=ReadingOut, responses=refusals(400, 422))
def read_text(body: ReadingIn, svc: Svc) -> dict[str, Any]:
    """How a text will be read, with each written piece that is read otherwise (abbreviations, numbers,
    names) and where it is in the text and in the reading. Stores nothing."""
    return reading(svc, body.text)
