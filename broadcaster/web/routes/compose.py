"""The compose page: write (or paste, or reopen a draft), see how it will be read while typing, hear it
before anything is saved, fix a misread word in the commune's lexicon on the spot, choose villages,
time or recurrence and priority, see where the planner would put it, then save a draft or submit it.

What airs is one of three sources: a text read out (approvals.compose / edit / submit), an officer's
recording from the phone (the same, with `recording`), or a relay of a higher station's stream (a
programme, as `loa programme add --kind relay` makes it). A text that repeats by a rule is a programme
too (`add_programme(kind="notice")`); a programme waits for an approver like an announcement where
approval is required (the /approvals page decides), as the API's POST /programmes does.

The helpers this page calls while the officer works (htmx fragments, posted with the session's CSRF
header) store nothing in the database: the reading (`lexicon.reading`), the preview (a background render
into the content-addressed audio store, `api.renders.Renders`, heard through this listener because the
audio listener is the devices'), and the plan (`announce(preview=True)` / `add_programme(preview=True)`:
planned and rolled back). Adding a reading to the lexicon from here is a real change, audited.

An emergency never waits for approval: the form leads to a confirmation page that names the villages
and the repeats and asks for a reason (services/emergencies.py: the code is bound to this person and
this exact request); only then is it sent. Approvers may open this page for that alone.

htmx swaps only 2xx answers unless told otherwise; static/compose.js tells it to swap this page's 4xx
fragments too, so a refusal is said where the officer looks, with its real status.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Path as PathParam
from fastapi import Query, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from broadcaster.config import Config
from broadcaster.errors import LoaError
from broadcaster.services.airings import zone_timeline
from broadcaster.services.announcements import announce, get_announcement
from broadcaster.services.approvals import compose, edit, submit
from broadcaster.services.emergencies import check_sender, confirm, may_send, reach, refused_after_confirming
from broadcaster.services.emergencies import fingerprint as request_print
from broadcaster.services.inputs import MAX_TEXT_CHARS
from broadcaster.services.lexicon import add_entry, reading
from broadcaster.services.programmes import add_programme
from broadcaster.services.speech import RATES, VoiceChoice, choose, default_choice, offered
from broadcaster.services.zones import COMMUNE_ZONE, list_zones
from broadcaster.web.page import Page, Reader, day_start
from broadcaster.web.routes import page_router
from schedules.clock import to_local
from schedules.when import FORMS

router = page_router()

SOURCES = ("text", "recording", "relay")
TIMINGS = ("soon", "at", "repeat")
PRIORITIES = ("normal", "priority", "emergency")
AROUND = timedelta(hours=2)  # how much of the timeline the plan shows on each side of the new item
UPLOAD_CHUNK = 1 << 20


@dataclass
class ComposeForm:
    """What the officer filled in, as the form sends it: kept whole, so a refused form comes back as it
    was, and so the emergency's confirmation page can carry it to the second request unchanged."""

    source: str = "text"
    text: str = ""
    title: str = ""
    zones: list[str] = field(default_factory=list)
    timing: str = "soon"
    at_pick: str = ""  # <input type="datetime-local">: 2026-11-25T17:30, the commune's wall clock
    at_text: str = ""  # what the officer typed: "ngày mai 7h", "17:30", "10 phút nữa"
    recurrence: str = ""
    stream_url: str = ""
    duration_min: str = ""
    priority: str = "normal"
    draft: int | None = None  # the draft being edited
    voice: str = ""  # "engine|voice" from services.speech.offered; "": the commune's
    rate: str = ""  # the speaking rate, "1.0"; "": the commune's

    @classmethod
    def read(cls, form: FormData) -> ComposeForm:
        def one(name: str, default: str = "") -> str:
            value = form.get(name)
            return value if isinstance(value, str) else default

        draft = one("draft").strip()
        return cls(
            source=one("source") if one("source") in SOURCES else "text",
            text=one("text").replace("\r\n", "\n"),  # browsers send a textarea's lines as CRLF
            title=one("title").strip(),
            zones=[z for z in form.getlist("zones") if isinstance(z, str) and z.strip()],
            timing=one("timing") if one("timing") in TIMINGS else "soon",
            at_pick=one("at_pick").strip(),
            at_text=one("at_text").strip(),
            recurrence=one("recurrence").strip(),
            stream_url=one("stream_url").strip(),
            duration_min=one("duration_min").strip(),
            priority=one("priority") if one("priority") in PRIORITIES else "normal",
            draft=int(draft) if draft.isdigit() and len(draft) < 10 else None,
            voice=one("voice").strip()[:120],
            rate=one("rate").strip()[:10],
        )

    def voice_choice(self, config: Config) -> VoiceChoice:
        """How the text is read: the choice on the form, checked (services/speech.py)."""
        engine, _, voice = self.voice.partition("|")
        return choose(config, engine or None, voice or None, self.rate or None)

    def at(self) -> str | None:
        """The start as the services read it (schedules.when), or None: as soon as it may air."""
        if self.timing != "at":
            return None
        typed = self.at_text or self.at_pick
        if not typed:
            raise LoaError("compose_no_time", {"forms": ", ".join(FORMS[:6])})
        return typed

    def programme(self) -> bool:
        """A relay, or a text that repeats: stored as a programme, not an announcement."""
        return self.source == "relay" or self.timing == "repeat"

    def duration_s(self) -> float:
        text = self.duration_min.replace(",", ".")
        try:
            minutes = float(text)
        except ValueError:
            raise LoaError("compose_bad_duration", {"text": text[:20]}) from None
        if not 0 < minutes <= 24 * 60:
            raise LoaError("compose_bad_duration", {"text": text[:20]})
        return minutes * 60

    def emergency_print(self) -> str:
        """The request an emergency's confirmation code is bound to: whatever changes what airs."""
        return request_print(
            desk="compose", text=self.text, title=self.title, zones=sorted(self.zones), timing=self.timing,
            at_pick=self.at_pick, at_text=self.at_text,
        )  # fmt: skip


# ---------------------------------------------------------------- who may, and the form


def _may_compose(page: Page) -> bool:
    return page.person.may("compose")


def _priorities(page: Page) -> list[str]:
    allowed = ["normal", "priority"] if _may_compose(page) else []
    if may_send(page.svc, page.person):
        allowed.append("emergency")
    return allowed


def _allowed(page: Page) -> None:
    """Officers and admins compose; an approver (an emergency role) comes here to send an emergency."""
    if not _priorities(page):
        raise LoaError("forbidden", {"role": page.person.role.value}, status=403)


def _zones(page: Page) -> list[dict[str, Any]]:
    """The commune first, then its villages, then the groups of villages, each by name."""
    order = {"commune": 0, "village": 1}
    return sorted(list_zones(page.svc), key=lambda z: (order.get(z["kind"], 2), z["name"]))


def _form_page(page: Page, f: ComposeForm, *, error: str = "", status: int = 200) -> Response:
    return page.render(
        "compose.html",
        status=status,
        f=f,
        error=error,
        zones=_zones(page),
        priorities=_priorities(page),
        may_compose=_may_compose(page),
        forms=FORMS,
        max_text=MAX_TEXT_CHARS,
        voices=offered(page.svc.config, page.lang),
        rates=RATES,
        voice_now=_voice_now(page, f),
    )


def _voice_now(page: Page, f: ComposeForm) -> tuple[str, str]:
    """The voice and rate the form shows as chosen: what it carries, else the commune's."""
    base = default_choice(page.svc.config)
    return f.voice or f"{base.engine}|{base.voice}", f.rate or f"{base.rate:g}"


def _draft_form(page: Page, draft_id: int) -> ComposeForm:
    item = get_announcement(page.svc, draft_id, page.lang)
    if item["state"] not in ("draft", "rejected"):
        raise LoaError("bad_state.edit", {"id": draft_id, "state": item["state"]}, status=409)
    start = item["request"]["start_at"]
    pick = to_local(datetime.fromisoformat(start)).strftime("%Y-%m-%dT%H:%M") if start else ""
    return ComposeForm(
        source="recording" if item["audio"]["engine"] == "recording" else "text",
        text=item["text"],
        title=item["title"],
        zones=item["request"]["zones"] or [COMMUNE_ZONE],
        timing="at" if start else "soon",
        at_pick=pick,
        priority=item["priority"],
        draft=draft_id,
        voice=f"{item['voice']['engine']}|{item['voice']['voice']}" if item["voice"] else "",
        rate=f"{item['voice']['rate']:g}" if item["voice"] and item["voice"]["rate"] is not None else "",
    )


@router.get("/compose")
def compose_page(page: Reader, draft: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> Response:
    """An empty form (the whole commune, as soon as approved, the first priority this person may
    use), or a draft or rejected item to change and send again (`?draft=7`)."""
    _allowed(page)
    if draft is not None:
        return _form_page(page, _draft_form(page, draft))
    return _form_page(page, ComposeForm(zones=[COMMUNE_ZONE], priority=_priorities(page)[0]))


# ---------------------------------------------------------------- while the officer types


def _pieces(read: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """The reading cut at the expanded words: (spoken text, its expansion or None), for the <mark>s."""
    spoken: str = read["spoken"]
    out: list[tuple[str, dict[str, Any] | None]] = []
    at = 0
    for e in sorted(read["expansions"], key=lambda e: (e["spoken_start"], e["spoken_end"])):
        start, end = e["spoken_start"], e["spoken_end"]
        if start < at or end > len(spoken) or end <= start:
            continue  # overlapping or out of range: left as plain reading
        if start > at:
            out.append((spoken[at:start], None))
        out.append((spoken[start:end], e))
        at = end
    if at < len(spoken):
        out.append((spoken[at:], None))
    return out


def _read(page: Page, text: str) -> dict[str, Any]:
    """What the reading panel shows: the reading, cut at the expanded words, or why there is none."""
    read, error = None, ""
    if text.strip():
        try:
            read = reading(page.svc, text)
        except LoaError as exc:
            error = page.message(exc)
    return {"read": read, "pieces": _pieces(read) if read else [], "error": error}


def _reading(page: Page, text: str) -> Response:
    return page.render("_reading.html", **_read(page, text))


def _fix(
    page: Page,
    text: str,
    *,
    added: dict[str, Any] | None = None,
    fix_error: str = "",
    fix: tuple[str, str] = ("", ""),
    status: int = 200,
) -> Response:
    """The lexicon's small form again (cleared after a fix, as it was after a refusal), with the
    reading out of band, so the two change together."""
    return page.render(
        "_fix.html", status=status, added=added, fix_error=fix_error, fix_written=fix[0], fix_spoken=fix[1],
        oob=True, **_read(page, text),
    )  # fmt: skip


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.post("/compose/reading")
async def reading_fragment(page: Reader) -> Response:
    """How the text will be read (htmx, as the officer types, debounced)."""
    _allowed(page)
    form = await page.request.form()
    return await run_in_threadpool(_reading, page, _field(form, "text"))


@router.post("/compose/lexicon")
async def add_reading(page: Reader) -> Response:
    """A misread word fixed on the spot: the reading goes into the commune's lexicon (audited), the
    reading panel comes back with it, and the `lexicon-changed` event has the preview render again."""
    _allowed(page)
    form = await page.request.form()
    text, written, spoken = _field(form, "text"), _field(form, "fix_written"), _field(form, "fix_spoken")
    try:
        entry = await run_in_threadpool(
            lambda: add_entry(page.svc, written, spoken, actor=page.person.username, by=page.person)
        )
    except LoaError as exc:
        refusal = exc
        return await run_in_threadpool(
            lambda: _fix(page, text, fix_error=page.message(refusal), fix=(written, spoken), status=refusal.status)
        )
    response = await run_in_threadpool(lambda: _fix(page, text, added=entry))
    response.headers["HX-Trigger"] = "lexicon-changed"
    return response


# ---------------------------------------------------------------- hearing it before saving


def _preview_state(page: Page, job_id: str) -> Response:
    job = page.parts.renders.get(job_id, page.lang)
    return page.render("_preview.html", job=job, error="")


@router.post("/compose/preview")
async def start_preview(page: Reader) -> Response:
    """Render the text in the background (a long article takes a while) and answer the panel that
    follows its progress; nothing is saved but the audio, content-addressed (the same text airing
    later is a cache hit). An empty text is said in the panel."""
    _allowed(page)
    form = await page.request.form()
    text = _field(form, "text")
    if not text.strip():
        error = LoaError("empty_text", {})
        return page.render("_preview.html", status=error.status, job=None, error=page.message(error))
    if len(text) > MAX_TEXT_CHARS:
        error = LoaError("text_too_long", {"max": MAX_TEXT_CHARS})
        return page.render("_preview.html", status=error.status, job=None, error=page.message(error))
    try:
        voice = ComposeForm.read(form).voice_choice(page.svc.config)
    except LoaError as error:
        return page.render("_preview.html", status=error.status, job=None, error=page.message(error))
    job = page.parts.renders.start(text, voice)
    return page.render("_preview.html", job=job, error="")


@router.get("/compose/preview/{job_id}")
def preview_progress(page: Reader, job_id: Annotated[str, PathParam(max_length=40)]) -> Response:
    _allowed(page)
    return _preview_state(page, job_id)


@router.get("/compose/preview/{job_id}/audio")
def preview_audio(page: Reader, job_id: Annotated[str, PathParam(max_length=40)]) -> Response:
    """The preview's sound, for the person signed in here (the audio listener is the devices')."""
    _allowed(page)
    audio = page.parts.renders.get(job_id).get("audio") or {}
    stored = page.svc.audio.store.open(audio["sha256"]) if audio.get("sha256") else None
    if stored is None or not stored.path.exists():
        raise LoaError("not_found.audio", {}, status=404)
    return FileResponse(stored.path, media_type="audio/mpeg" if stored.path.suffix == ".mp3" else "audio/ogg")


# ---------------------------------------------------------------- where it would go


@asynccontextmanager
async def _upload(form: FormData, f: ComposeForm) -> AsyncIterator[Path | None]:
    """The recording the form carries, in a file of its own for the life of the request."""
    upload = form.get("recording")
    if f.source != "recording":
        yield None
        return
    if not isinstance(upload, UploadFile) or not upload.filename:
        if f.draft is not None:
            yield None  # a recorded draft keeps its recording
            return
        raise LoaError("compose_no_recording", {})
    with tempfile.TemporaryDirectory(prefix="loa-compose-") as tmp:
        path = Path(tmp) / f"upload{Path(upload.filename).suffix[:8]}"
        with path.open("wb") as out:
            while chunk := await upload.read(UPLOAD_CHUNK):
                out.write(chunk)
        yield path


def _programme(page: Page, f: ComposeForm, *, preview: bool) -> dict[str, Any]:
    """A relay, or a text repeated by a rule: a programme, waiting for approval or planned at once (as
    the API's)."""
    if f.priority == "emergency":
        raise LoaError("bad_priority.programme", {})
    if f.source == "recording":
        raise LoaError("compose_recording_repeat", {})
    if not f.recurrence:
        raise LoaError("compose_no_recurrence", {})
    if f.source == "relay":
        return add_programme(
            page.svc, "relay", f.title, f.zones, f.recurrence, stream_url=f.stream_url, duration_s=f.duration_s(),
            actor=page.person.username, by=page.person, preview=preview,
        )  # fmt: skip
    if not f.text.strip():
        raise LoaError("empty_text", {})
    return add_programme(
        page.svc, "notice", f.title or f.text.strip().split("\n", 1)[0][:80], f.zones, f.recurrence, text=f.text,
        priority=f.priority, actor=page.person.username, by=page.person, preview=preview,
    )  # fmt: skip


def _planned(page: Page, f: ComposeForm, recording: Path | None) -> dict[str, Any]:
    """Where the planner would put it now, stored nowhere: its placements and what it would move."""
    svc = page.svc
    if f.programme():
        if not _may_compose(page):
            raise LoaError("forbidden", {"role": page.person.role.value}, status=403)
        return _programme(page, f, preview=True)
    if f.priority == "emergency":
        check_sender(svc, page.person, f.zones, title=f.title)
    elif not _may_compose(page):
        raise LoaError("forbidden", {"role": page.person.role.value}, status=403)
    return announce(
        svc, f.text, f.zones, f.at(), title=f.title or None, priority=f.priority, actor=page.person.username,
        preview=True, recording=recording, voice=f.voice_choice(svc.config),
    )  # fmt: skip


def _around(page: Page, placements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What else is on the timeline near the new item, in the villages it goes to (the whole commune's
    timeline, kept to those villages), so a clash is seen, not guessed."""
    if not placements:
        return []
    starts = [datetime.fromisoformat(p["start_at"]) for p in placements]
    villages = {name for p in placements for name in p["village_names"]}
    first, last = min(starts), max(starts)
    day = day_start(to_local(first).date())
    rows = zone_timeline(page.svc, None, min(day, first - AROUND), last + AROUND, page.lang)
    return [
        r
        for r in rows
        if villages & set(r["zones"])
        and first - AROUND <= datetime.fromisoformat(r["start_at"]) <= last + AROUND
        and r["state"] != "cancelled"
    ]


@router.post("/compose/plan")
async def plan_fragment(page: Reader) -> Response:
    """The planner's placement of what the form asks, its explanation, what it would move, and the
    timeline around it; nothing is stored (a refusal, say quiet hours, is said with its reasons)."""
    _allowed(page)
    form = await page.request.form()
    f = ComposeForm.read(form)
    try:
        async with _upload(form, f) as recording:
            plan = await run_in_threadpool(_planned, page, f, recording)
        around = await run_in_threadpool(_around, page, plan.get("placements", []))
    except LoaError as exc:
        return page.render("_plan.html", status=exc.status, plan=None, around=[], error=page.message(exc), f=f)
    return page.render("_plan.html", plan=plan, around=around, error="", f=f)


# ---------------------------------------------------------------- saving


def _save(page: Page, f: ComposeForm, recording: Path | None, action: str) -> str:
    """Store what the form asks: a draft, a submission (waiting for approval, or planned at once where
    approval is not required), or a programme. Returns where the officer goes next."""
    svc, who = page.svc, page.person
    if not _may_compose(page):
        raise LoaError("forbidden", {"role": who.role.value}, status=403)
    if f.programme():
        if action == "draft":
            raise LoaError("compose_programme_draft", {})
        made = _programme(page, f, preview=False)
        if made["state"] == "awaiting_approval":
            return f"/approvals?notice=programme_submitted#programme-{made['id']}"
        return "/timeline?notice=programme_added"
    at, title = f.at(), f.title or None
    if f.draft is not None and recording is None:
        changes = {"text": f.text, "title": title, "zones": f.zones, "at": at, "priority": f.priority,
                   "voice": f.voice_choice(svc.config)}  # fmt: skip
        made = edit(svc, f.draft, changes, actor=who.username, by=who, lang=page.lang)
        if action == "submit":
            made = submit(svc, f.draft, actor=who.username, by=who, lang=page.lang)
    else:
        made = compose(
            svc, f.text, f.zones, at, title=title, priority=f.priority, recording=recording,
            submit=action == "submit", actor=who.username, by=who, lang=page.lang, voice=f.voice_choice(svc.config),
        )  # fmt: skip
    notice = {"draft": "drafted", "awaiting_approval": "submitted"}.get(made["state"], "planned")
    return f"/approvals/{made['id']}?notice={notice}"


@router.post("/compose")
async def save(page: Reader) -> Response:
    """Save a draft or submit (`action`), or, for an emergency, the confirmation page. A refusal is the
    form again as it was sent, with what to fix; nothing is stored."""
    _allowed(page)
    form = await page.request.form()
    f = ComposeForm.read(form)
    action = "draft" if _field(form, "action") == "draft" else "submit"
    try:
        if f.priority == "emergency":
            return await run_in_threadpool(_ask_emergency, page, f)
        async with _upload(form, f) as recording:
            target = await run_in_threadpool(_save, page, f, recording, action)
    except LoaError as exc:
        return _form_page(page, f, error=page.message(exc), status=exc.status)
    if action == "submit":
        page.parts.on_change()  # planned now, or waiting: either way the daemon looks again
    return page.redirect(target)


# ---------------------------------------------------------------- an emergency's second look


def _confirm_page(page: Page, f: ComposeForm, code: str, *, error: str = "", status: int = 200) -> Response:
    where = reach(page.svc, f.zones)
    return page.render(
        "compose_confirm.html", status=status, f=f, code=code, villages=list(where.villages), repeats=where.repeats,
        error=error, expires_s=int(page.parts.confirmations.ttl.total_seconds()),
    )  # fmt: skip


def _ask_emergency(page: Page, f: ComposeForm) -> Response:
    """The first step: the request checked as if it were sent (text, villages, time), then the page
    that names what would happen, with a code for this person and this request."""
    if f.source != "text":
        raise LoaError("compose_emergency_text", {})
    svc = page.svc
    check_sender(svc, page.person, f.zones, title=f.title)
    # refused now (an empty text, a past time, an unknown voice) rather than after confirming
    announce(svc, f.text, f.zones, f.at(), title=f.title or None, priority="emergency", actor=page.person.username,
             preview=True, voice=f.voice_choice(svc.config))  # fmt: skip
    try:
        confirm(svc, page.parts.confirmations, page.person, f.zones, f.emergency_print(), None, None, title=f.title)
    except LoaError as asked:
        if asked.code != "confirm_emergency":
            raise
        return _confirm_page(page, f, str(asked.params["confirmation"]))
    raise AssertionError("confirm() lets no emergency through without its code")  # pragma: no cover


def _send_emergency(page: Page, f: ComposeForm, code: str, reason: str) -> int:
    svc, who = page.svc, page.person
    why = confirm(svc, page.parts.confirmations, who, f.zones, f.emergency_print(), code, reason, title=f.title)
    try:
        sent = announce(
            svc, f.text, f.zones, f.at(), title=f.title or None, priority="emergency", actor=who.username,
            reason=why, approved_via="emergency", voice=f.voice_choice(svc.config),
        )  # fmt: skip
    except LoaError as exc:
        refused_after_confirming(svc, who.username, f.zones, why, exc)
        raise
    return int(sent["id"])


@router.post("/compose/emergency")
async def send_emergency(page: Reader) -> Response:
    """The second step: the same request, its code and a reason. A missing reason keeps the code (it is
    not spent); a code that expired or was used comes back with a new one to confirm again."""
    _allowed(page)
    form = await page.request.form()
    f = ComposeForm.read(form)
    f.priority = "emergency"
    code, reason = _field(form, "confirmation"), _field(form, "reason")
    try:
        item_id = await run_in_threadpool(_send_emergency, page, f, code, reason)
    except LoaError as exc:
        again = str(exc.params.get("confirmation", "")) if exc.code == "confirm_emergency" else ""
        if exc.code in ("reason_required", "confirm_emergency", "reason_too_long", "text_too_long") or again:
            message = page.t("emergency.expired") if again else page.message(exc)
            return _confirm_page(page, f, again or code, error=message, status=exc.status)
        return _form_page(page, f, error=page.message(exc), status=exc.status)
    page.parts.on_change()  # the daemon plans and sends it now
    return page.redirect(f"/approvals/{item_id}?notice=emergency_sent")
