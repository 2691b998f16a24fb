"""Edge inputs that crashed the services (5xx at the API): each is now a 4xx code, and nothing is left
behind — no row, no audit entry, no audio file — whether it is refused before or after rendering."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcaster.db import Announcement, AuditEntry, Broadcast, Programme
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.announcements import announce, get_announcement
from broadcaster.services.programmes import add_programme
from broadcaster.services.zones import add_village
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import make_services

MORNING = datetime(2026, 11, 25, 9, 0, tzinfo=LOCAL_TZ)


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(MORNING))
    with services.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
    yield services
    services.db.dispose()


def _stored(svc: Services) -> tuple[int, int, int, int, list[str]]:
    with svc.db.session() as s:
        counts = tuple(
            s.scalar(select(func.count()).select_from(t)) or 0 for t in (Announcement, Broadcast, Programme, AuditEntry)
        )
    return (*counts, sorted(p.name for p in svc.audio.store.root.glob("*.mp3")))  # type: ignore[return-value]


EDGES: list[tuple[str, Callable[[Services], Any], str, int]] = [
    ("a lone surrogate in the text", lambda s: announce(s, "Kính thưa \ud800 bà con", ["all"], "+1h"), "bad_text", 400),
    ("a lone surrogate in the title", lambda s: announce(s, "Họp", ["all"], "+1h", title="\udfff"), "bad_text", 400),
    ("a title longer than a board shows", lambda s: announce(s, "Họp", ["all"], "+1h", title="x" * 201),
     "title_too_long", 400),
    ("year 1", lambda s: announce(s, "Họp", ["all"], "0001-01-01 00:00"), "bad_time", 400),
    ("year 9999", lambda s: announce(s, "Họp", ["all"], "9999-12-31 23:59"), "time_too_far", 400),
    ("beyond the calendar", lambda s: announce(s, "Họp", ["all"], "+99999999999d"), "bad_time", 400),
    ("an order of 2**70", lambda s: announce(s, "Họp", ["all"], "+1h", order=2**70), "bad_order", 400),
    ("an announcement id of 2**70", lambda s: get_announcement(s, 2**70), "not_found", 404),
    ("a series of 99999999999 days",
     lambda s: add_programme(s, "notice", "Nhắc", ["all"], "06:00 trong 99999999999 ngày", text="Họp"),
     "bad_recurrence", 400),
    ("every 99999999999 days",
     lambda s: add_programme(s, "notice", "Nhắc", ["all"], "mỗi 99999999999 ngày 06:00", text="Họp"),
     "bad_recurrence", 400),
    ("a relay of 1e308 seconds",
     lambda s: add_programme(s, "relay", "VOV1", ["all"], "06:00", stream_url="http://r/v", duration_s=1e308),
     "bad_duration", 400),
    ("a relay of infinite seconds",
     lambda s: add_programme(s, "relay", "VOV1", ["all"], "06:00", stream_url="http://r/v", duration_s=float("inf")),
     "bad_duration", 400),
]  # fmt: skip


@pytest.mark.parametrize(("what", "call", "code", "status"), EDGES, ids=[e[0] for e in EDGES])
def test_an_edge_input_is_a_clear_refusal_and_stores_nothing(
    svc: Services, what: str, call: Callable[[Services], Any], code: str, status: int
) -> None:
    before = _stored(svc)
    with pytest.raises(LoaError) as refused:
        call(svc)
    assert (refused.value.code, refused.value.status) == (code, status), what
    assert refused.value.message("vi") and refused.value.message("en")
    assert _stored(svc) == before


def test_a_refusal_after_rendering_leaves_no_audio_behind(svc: Services) -> None:
    """The planner refuses only once the speech exists (it needs its length): the file goes too."""
    before = _stored(svc)
    with pytest.raises(LoaError) as refused:
        announce(svc, "Thông báo xếp vào bản tin không có.", ["all"], "+1h", bulletin=2**70)
    assert refused.value.code == "no_bulletin"
    assert _stored(svc) == before
    # a preview keeps its audio (the officer hears it, and announcing it next is a cache hit) ...
    preview = announce(svc, "Thông báo họp thôn lúc 19 giờ.", ["all"], "+1h", preview=True)
    assert preview["preview"] and len(_stored(svc)[4]) == 1
    # ... and a refusal of the same text does not take away audio an announcement already uses
    stored = announce(svc, "Thông báo họp thôn lúc 19 giờ.", ["all"], "+1h")
    with pytest.raises(LoaError):
        announce(svc, "Thông báo họp thôn lúc 19 giờ.", ["all"], "+1h", bulletin=2**70)
    assert _stored(svc)[4] == [f"{stored['audio']['sha256']}.mp3"]
