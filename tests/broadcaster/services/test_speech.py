"""The voice an item is read with (#13 item 3): chosen per commune (`[speech]`) and per announcement,
recorded with the item, and the same for the preview, the submission and after an edit — so what the
officer hears before saving is the very file that airs. Real espeak-ng and ffmpeg, SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from broadcaster.api.renders import Renders
from broadcaster.db import Announcement, Role, User
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.announcements import announce
from broadcaster.services.approvals import compose, edit, submit
from broadcaster.services.speech import VoiceChoice, choose, default_choice, offered, pipeline_for
from broadcaster.services.voices import voices_dir
from broadcaster.services.zones import add_zone
from schedules.clock import LOCAL_TZ, FakeClock
from tests.audio.tiny_piper import make_voice
from tests.broadcaster.conftest import make_services, make_user

MORNING = datetime(2026, 11, 25, 7, 0, tzinfo=LOCAL_TZ)
TEXT = "Thông báo: 8h sáng thứ bảy, thôn 2 ra quân dọn vệ sinh đường làng."
SOUTH = VoiceChoice("espeak", "vi-vn-x-south", 0.9)
TINY = "vi_VN-tiny-x_low"


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(MORNING), LOA_SECURITY_REQUIRE_APPROVAL="true")
    add_zone(services, "thon-2", "Thôn 2", "village", [], actor="t")
    yield services
    services.db.dispose()


@pytest.fixture
def officer(svc: Services) -> Principal:
    make_user(svc, "can-bo", Role.OFFICER)
    with svc.db.session() as s:
        user = s.scalars(select(User).where(User.username == "can-bo")).one()
        return Principal(user.id, user.username, user.display_name, user.role, "token")


def _row(svc: Services, item_id: int) -> Announcement:
    with svc.db.session() as s:
        return s.get_one(Announcement, item_id)


def _preview(svc: Services, text: str, voice: VoiceChoice | None) -> dict[str, Any]:
    """What the desk's and the API's "hear it" do: a background render job."""
    jobs = Renders(svc)
    job = jobs.start(text, voice)
    deadline = time.monotonic() + 60
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        job = jobs.get(job["id"])
    assert job["state"] == "done", job
    return dict(job["audio"])


def test_the_preview_is_the_file_that_airs_in_the_voice_chosen(svc: Services, officer: Principal) -> None:
    heard = _preview(svc, TEXT, SOUTH)
    item = compose(svc, TEXT, ["thon-2"], "+2h", actor=officer.username, by=officer, voice=SOUTH)
    assert item["audio"]["sha256"] == heard["sha256"]  # byte for byte what the officer heard
    assert item["voice"] == {"engine": "espeak", "voice": "vi-vn-x-south", "rate": 0.9}
    row = _row(svc, item["id"])
    assert (row.voice_engine, row.voice, row.speaking_rate) == ("espeak", "vi-vn-x-south", 0.9)

    commune = _preview(svc, TEXT, None)  # the commune's voice is another sound, another file
    assert commune["sha256"] != heard["sha256"]


def test_the_voice_and_the_rate_change_the_sound(svc: Services) -> None:
    north = _preview(svc, TEXT, VoiceChoice("espeak", "vi", 1.0))
    south = _preview(svc, TEXT, VoiceChoice("espeak", "vi-vn-x-south", 1.0))
    slow = _preview(svc, TEXT, VoiceChoice("espeak", "vi", 0.8))
    fast = _preview(svc, TEXT, VoiceChoice("espeak", "vi", 1.2))
    assert len({north["sha256"], south["sha256"], slow["sha256"], fast["sha256"]}) == 4
    # the rate is applied: 0.8 is half again as long as 1.2 (within what silence trimming leaves)
    assert slow["duration_ms"] > fast["duration_ms"] * 1.3
    assert fast["duration_ms"] < north["duration_ms"] < slow["duration_ms"]


def test_a_draft_keeps_its_voice_until_it_is_submitted_and_an_edit_can_change_it(
    svc: Services, officer: Principal
) -> None:
    draft = compose(svc, TEXT, ["thon-2"], "+2h", actor=officer.username, by=officer, voice=SOUTH, submit=False)
    assert draft["audio"]["sha256"] is None and draft["voice"]["voice"] == "vi-vn-x-south"
    sent = submit(svc, draft["id"], actor=officer.username, by=officer)
    assert sent["audio"]["sha256"] == _preview(svc, TEXT, SOUTH)["sha256"]  # rendered in the recorded voice

    again = compose(svc, TEXT, ["thon-2"], "+3h", actor=officer.username, by=officer, voice=SOUTH, submit=False)
    central = VoiceChoice("espeak", "vi-vn-x-central", 1.1)
    changed = edit(svc, again["id"], {"voice": central}, actor=officer.username, by=officer)
    assert changed["voice"] == {"engine": "espeak", "voice": "vi-vn-x-central", "rate": 1.1}
    sent = submit(svc, again["id"], actor=officer.username, by=officer)
    assert sent["audio"]["sha256"] == _preview(svc, TEXT, central)["sha256"]
    # an edit of something else keeps the voice
    third = compose(svc, TEXT, ["thon-2"], "+4h", actor=officer.username, by=officer, voice=central, submit=False)
    kept = edit(svc, third["id"], {"title": "Dọn vệ sinh"}, actor=officer.username, by=officer)
    assert kept["voice"]["voice"] == "vi-vn-x-central"


def test_without_a_choice_the_commune_voice_is_recorded(tmp_path: Path, database_url: str) -> None:
    svc = make_services(tmp_path, database_url, FakeClock(MORNING), LOA_SPEECH_VOICE="vi-vn-x-central",
                        LOA_SPEECH_SPEAKING_RATE="0.9")  # fmt: skip
    try:
        add_zone(svc, "thon-2", "Thôn 2", "village", [], actor="t")
        assert default_choice(svc.config) == VoiceChoice("espeak", "vi-vn-x-central", 0.9)
        assert pipeline_for(svc, None) is svc.audio is pipeline_for(svc, default_choice(svc.config))
        made = announce(svc, TEXT, ["thon-2"], "+1h")
        assert made["voice"] == {"engine": "espeak", "voice": "vi-vn-x-central", "rate": 0.9}
        assert made["audio"]["sha256"] == svc.audio.render(TEXT).sha256
    finally:
        svc.db.dispose()


@pytest.mark.parametrize(
    ("asked", "code"),
    [
        ({"engine": "festival"}, "voice_unknown_engine"),
        ({"engine": "espeak", "voice": "banmai"}, "voice_unknown"),  # FPT.AI's voice, not espeak's
        ({"voice": "en-us"}, "voice_unknown"),
        ({"rate": 3}, "voice_bad_rate"),
        ({"rate": "nhanh"}, "voice_bad_rate"),
    ],
)
def test_a_voice_this_commune_lacks_is_refused_before_anything_is_stored(
    svc: Services, officer: Principal, asked: dict[str, Any], code: str
) -> None:
    with pytest.raises(LoaError) as refused:
        choose(svc.config, asked.get("engine"), asked.get("voice"), asked.get("rate"))
    assert refused.value.code == code
    assert refused.value.message("vi") and refused.value.message("en")


def test_the_desk_offers_only_voices_that_can_speak_here(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOA_FPT_API_KEY", raising=False)
    options = offered(svc.config)
    assert (options[0].engine, options[0].voice, options[0].default) == ("espeak", "vi", True)
    engines = {o.engine for o in options}
    assert "fpt+espeak" not in engines  # no key: it would refuse every sentence
    assert not any(o.engine in ("gtts", "fpt") for o in options)  # online voices only with their fallback
    assert {o.voice for o in options if o.engine == "espeak"} == {"vi", "vi-vn-x-central", "vi-vn-x-south"}
    monkeypatch.setenv("LOA_FPT_API_KEY", "khoa-thu")
    with_key = offered(svc.config, "en")
    assert {o.voice for o in with_key if o.engine == "fpt+espeak"} >= {"banmai", "leminh"}
    assert any(o.label.startswith("Ban Mai (female") for o in with_key)


def test_a_neural_voice_is_offered_once_installed_and_reads_the_item(tmp_path: Path, database_url: str) -> None:
    """With Piper's voice on disk (the tests' tiny one), "auto" is piper+espeak, the desk offers it, and an
    item asked in it is read by it; espeak's voices stay on offer."""
    svc = make_services(tmp_path, database_url, FakeClock(MORNING), LOA_SPEECH_PIPER_VOICE=TINY)
    try:
        add_zone(svc, "thon-2", "Thôn 2", "village", [], actor="t")
        assert default_choice(svc.config).engine == "espeak"  # nothing installed yet
        assert not any(o.engine.startswith("piper") for o in offered(svc.config))
        with pytest.raises(LoaError) as refused:
            choose(svc.config, "piper+espeak", TINY)
        assert refused.value.code == "voice_unknown"

        make_voice(voices_dir(svc.config), TINY)
        assert default_choice(svc.config) == VoiceChoice("piper+espeak", TINY, 1.0)
        options = offered(svc.config)
        assert (options[0].engine, options[0].voice, options[0].default) == ("piper+espeak", TINY, True)
        assert {"vi-vn-x-south"} <= {o.voice for o in options if o.engine == "espeak"}
        made = announce(svc, TEXT, ["thon-2"], "+1h")  # the commune's voice, now the neural one
        assert made["voice"]["engine"] == "piper+espeak" and made["audio"]["engine"] == "piper"
        south = announce(svc, TEXT, ["thon-2"], "+2h", voice=choose(svc.config, "espeak", "vi-vn-x-south"))
        assert south["audio"]["engine"] == "espeak" and south["audio"]["sha256"] != made["audio"]["sha256"]
    finally:
        svc.db.dispose()
