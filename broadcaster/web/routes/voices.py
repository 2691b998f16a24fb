"""The admin's page of Piper voices (/voices): the voices pinned in the repository, which are installed,
and a button that installs one. The download (63 MB for the Vietnamese voice) runs in a thread of its
own (services/voices.py `start_install`); the page shows its progress by polling a fragment with htmx,
and its outcome, in the person's language, once it is over. Audited under the signed-in admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response
from starlette.concurrency import run_in_threadpool

from broadcaster.errors import LoaError
from broadcaster.services.audio import effective_engine
from broadcaster.services.voices import InstallJob, install_job, list_voices, start_install
from broadcaster.web.page import Admin, Page
from broadcaster.web.routes import page_router

router = page_router()

VoiceName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]


def _jobs(page: Page, names: list[str]) -> dict[str, InstallJob]:
    found = {name: install_job(page.svc, name) for name in names}
    return {name: job for name, job in found.items() if job is not None}


def _page(page: Page, *, error: str = "", status: int = 200) -> Response:
    voices = list_voices(page.svc.config)
    return page.render(
        "voices.html",
        status=status,
        error=error,
        voices=voices,
        jobs=_jobs(page, [v["name"] for v in voices]),
        engine=effective_engine(page.svc.config),
        configured=page.svc.config.speech.engine,
        source=page.svc.config.speech.voices_base_url,
    )


@router.get("/voices")
def voices_page(page: Admin) -> Response:
    return _page(page)


@router.post("/voices/{name}/install")
async def install(page: Admin, name: VoiceName) -> Response:
    try:
        await run_in_threadpool(lambda: start_install(page.svc, name, actor=page.person.username, by=page.person))
    except LoaError as exc:
        return _page(page, error=page.message(exc), status=exc.status)
    return page.redirect(f"/voices?notice=voice_install_started#voice-{name}")


@router.get("/voices/{name}/status")
def status(page: Admin, name: VoiceName) -> Response:
    """The progress fragment htmx polls while an install runs (and the outcome once it is over)."""
    job = install_job(page.svc, name)
    voice = next((v for v in list_voices(page.svc.config) if v["name"] == name), None)
    if voice is None:
        raise LoaError("voice_not_pinned", {"name": name, "known": ""}, status=404)
    return page.render("_voice_job.html", voice=voice, job=job)
