"""The sound of a bulletin's frame: our own opening and closing chimes and the spoken heading.

The planner places a bulletin's frame ("Bản tin sáng ngày hai mươi lăm tháng năm") around the items
queued in it; here each piece of the frame gets real audio, stored once as a clip and reused, so a
frame airs like any other item without being one of the officer's announcements.
"""

from __future__ import annotations

import wave
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from audio import AudioPipeline, StoredAudio
from audio.chimes import chime
from broadcaster.db import Clip
from broadcaster.services import Services
from broadcaster.services.planning import Owner, programme_of_window
from schedules import Airing, AiringKind

CHIME_RATE = 24000
LONGEST_HEADING = "Bản tin chiều ngày 27 tháng 12"


def _plain(pipeline: AudioPipeline) -> AudioPipeline:
    """The same voice and loudness, without the per-item chimes: the frame is the chime."""
    return AudioPipeline(pipeline.store, pipeline.engine, replace(pipeline.settings, chimes=False), pipeline.lexicon)


def chime_audio(pipeline: AudioPipeline, kind: AiringKind) -> StoredAudio:
    tmp = pipeline.store.new_tmp(".wav")
    try:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(CHIME_RATE)
            w.writeframes(chime(CHIME_RATE, "intro" if kind is AiringKind.CHIME_OPEN else "outro"))
        return _plain(pipeline).import_recording(tmp)
    finally:
        tmp.unlink(missing_ok=True)


def framing_lengths_ms(pipeline: AudioPipeline) -> dict[str, int]:
    """Slots for the frame, from the real audio (the heading slot fits the longest heading)."""
    return {
        "open_chime_ms": chime_audio(pipeline, AiringKind.CHIME_OPEN).duration_ms + 300,
        "heading_ms": _plain(pipeline).render(LONGEST_HEADING).duration_ms + 1000,
        "close_chime_ms": chime_audio(pipeline, AiringKind.CHIME_CLOSE).duration_ms + 300,
    }


def framing_owner(
    session: Session, pipeline: AudioPipeline, airing: Airing, programme_id: int | None, now: datetime
) -> Owner:
    """The clip a frame piece plays, made the first time it is needed (and made again if its audio has
    since left the store). A clip, not an announcement: the officer's numbering and lists are theirs."""
    clip = session.scalars(
        select(Clip).where(Clip.kind == airing.kind.value, Clip.title == airing.title).order_by(Clip.id)
    ).first()
    if clip is None or pipeline.store.open(clip.audio_sha256) is None:
        if airing.kind is AiringKind.HEADING:
            audio = _plain(pipeline).render(airing.title)
        else:
            audio = chime_audio(pipeline, airing.kind)
        if clip is None:
            clip = Clip(kind=airing.kind.value, title=airing.title, created_at=now)
            session.add(clip)
        clip.audio_sha256, clip.audio_size, clip.audio_duration_ms = audio.sha256, audio.size, audio.duration_ms
        clip.audio_ext, clip.engine = audio.path.suffix.lstrip("."), audio.engine
        session.flush()
    return Owner(None, programme_id, clip.id)


def framing_for(svc: Services, session: Session, now: datetime) -> Callable[[Airing], Owner]:
    """Audio for the chimes and spoken heading the planner puts around a bulletin's items."""
    def owner(airing: Airing) -> Owner:
        return framing_owner(session, svc.audio, airing, programme_of_window(airing.window_id or ""), now)

    return owner
