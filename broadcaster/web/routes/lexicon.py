"""The lexicon editor: how the commune's own abbreviations, hamlets and people are read. Every change is
the lexicon service's (checked, audited, used by the next render without a restart); a refusal is the
page again with what to fix and what was typed, and nothing stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Response
from starlette.concurrency import run_in_threadpool

from broadcaster.errors import LoaError
from broadcaster.services.lexicon import (
    MAX_SPOKEN_CHARS,
    MAX_WRITTEN_CHARS,
    add_entry,
    delete_entry,
    edit_entry,
    list_entries,
)
from broadcaster.web.page import Composer, Page
from broadcaster.web.routes import page_router

router = page_router()

EntryId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Field = Annotated[str, Form()]


def _page(
    page: Page,
    *,
    error: str = "",
    status: int = 200,
    typed: tuple[str, str] = ("", ""),
    editing: int | None = None,
) -> Response:
    """The list and the add form; after a refusal, what was typed, in the form it was typed in."""
    return page.render(
        "lexicon.html",
        status=status,
        error=error,
        entries=list_entries(page.svc),
        typed_written=typed[0],
        typed_spoken=typed[1],
        editing=editing,
        max_written=MAX_WRITTEN_CHARS,
        max_spoken=MAX_SPOKEN_CHARS,
    )


@router.get("/lexicon")
def lexicon_page(page: Composer) -> Response:
    return _page(page)


@router.post("/lexicon")
async def add(page: Composer, written: Field = "", spoken: Field = "") -> Response:
    try:
        entry = await run_in_threadpool(
            lambda: add_entry(page.svc, written, spoken, actor=page.person.username, by=page.person)
        )
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status, typed=(written, spoken))
    return page.redirect(f"/lexicon?notice=lexicon_added#entry-{entry['id']}")


@router.post("/lexicon/{entry_id}")
async def change(page: Composer, entry_id: EntryId, written: Field = "", spoken: Field = "") -> Response:
    try:
        await run_in_threadpool(
            lambda: edit_entry(
                page.svc, entry_id, written=written, spoken=spoken, actor=page.person.username, by=page.person
            )
        )
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status, typed=(written, spoken), editing=entry_id)
    return page.redirect(f"/lexicon?notice=lexicon_changed#entry-{entry_id}")


@router.post("/lexicon/{entry_id}/delete")
async def delete(page: Composer, entry_id: EntryId) -> Response:
    try:
        await run_in_threadpool(lambda: delete_entry(page.svc, entry_id, actor=page.person.username, by=page.person))
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status)
    return page.redirect("/lexicon?notice=lexicon_deleted")
