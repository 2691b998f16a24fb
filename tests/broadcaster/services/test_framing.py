"""A bulletin's chimes and spoken heading are loa's own sound (clips), not the officer's announcements:
they take no announcement number, count as no item in a report, and still air with their audio."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from broadcaster import protocol
from broadcaster.db import (
    Announcement,
    Broadcast,
    Clip,
    Database,
    Delivery,
    DeliveryStatus,
    DeviceKind,
)
from broadcaster.dispatch.bodies import CommandBodies
from broadcaster.services import Services
from broadcaster.services.announcements import announce
from broadcaster.services.audio import pinned_audio
from broadcaster.services.programmes import add_programme
from broadcaster.services.reports import report
from broadcaster.services.zones import add_device, add_zone
from schedules import FRAMING_KINDS
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import make_services

DAWN = datetime(2026, 11, 25, 5, 0, tzinfo=LOCAL_TZ)


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(DAWN))
    add_zone(services, "thon-1", "Thôn 1", "village", [], actor="t")
    with services.db.session() as s:
        add_device(s, "thon-1-loa", DeviceKind.SPEAKER, "thon-1")
    yield services
    services.db.dispose()


def _frames(svc: Services) -> list[Broadcast]:
    with svc.db.session() as s:
        rows = list(s.scalars(select(Broadcast).where(Broadcast.kind.in_([k.value for k in FRAMING_KINDS]))))
        for b in rows:
            _ = b.clip, b.announcement, b.programme  # loaded while the session is open
        return rows


def test_the_frame_is_made_of_clips_and_airs_their_audio(svc: Services, tmp_path: Path) -> None:
    bulletin = add_programme(svc, "bulletin", "Bản tin", ["all"], "06:00 và 17:00", duration_s=1800)["id"]
    first = announce(svc, "Thông báo thu thuế đất.", ["all"], title="Thu thuế", bulletin=bulletin)
    evening = announce(svc, "Thông báo lịch họp.", ["all"], "16:00", title="Lịch họp")
    assert [first["id"], evening["id"]] == [1, 2]
    frames = _frames(svc)
    assert sorted(b.kind for b in frames) == ["chime_close", "chime_open", "heading"]
    assert all(b.announcement is None and b.clip is not None for b in frames)
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Announcement)) == 2
    signer = protocol.load_or_create_signer(tmp_path / "key.pem")
    heading = next(b for b in frames if b.kind == "heading")
    assert heading.clip is not None
    body = CommandBodies(heading, signer, lambda sha, ext: f"http://loa/audio/{sha}.{ext}").get(
        DeviceKind.SPEAKER, True
    )
    assert body is not None and body["title"] == "Bản tin sáng ngày 25 tháng 11"
    assert body["audio"] == {
        "url": f"http://loa/audio/{heading.clip.audio_sha256}.mp3",
        "sha256": heading.clip.audio_sha256,
        "size": heading.clip.audio_size,
        "duration_ms": heading.clip.audio_duration_ms,
        "format": "mp3",
    }
    assert svc.audio.store.open(heading.clip.audio_sha256) is not None
    assert {b.clip.audio_sha256 for b in frames if b.clip} <= pinned_audio(svc)  # kept until they have aired


def test_a_frame_counts_as_no_item_in_the_report(svc: Services) -> None:
    bulletin = add_programme(svc, "bulletin", "Bản tin", ["all"], "06:00", duration_s=1800)["id"]
    announce(svc, "Thông báo thu thuế đất.", ["all"], title="Thu thuế", bulletin=bulletin)
    with svc.db.session() as s:
        aired = list(s.scalars(select(Broadcast)))
        assert len(aired) == 4  # chime, heading, the item, chime
        for b in aired:  # every piece played on the speaker
            s.add(Delivery(broadcast_id=b.id, device_id="thon-1-loa", status=DeliveryStatus.DONE, updated_at=DAWN))
    done = report(svc, DAWN, DAWN + timedelta(days=1))
    assert (done["items"], done["plays"]) == (1, 1)


def test_a_clip_whose_audio_left_the_store_is_made_again(svc: Services) -> None:
    bulletin = add_programme(svc, "bulletin", "Bản tin", ["all"], "06:00 và 17:00", duration_s=1800)["id"]
    announce(svc, "Tin buổi sáng.", ["all"], bulletin=bulletin)
    chime = next(b.clip for b in _frames(svc) if b.kind == "chime_open" and b.clip)
    assert svc.audio.store.discard(chime.audio_sha256)  # evicted after the morning bulletin aired
    assert isinstance(svc.clock, FakeClock)
    svc.clock.advance(timedelta(hours=5))  # 10:00: the next bulletin is the evening's, a frame of its own
    evening = announce(svc, "Tin buổi chiều.", ["all"], bulletin=bulletin)
    assert evening["placements"][0]["start_at_local"].startswith("17:00")
    with svc.db.session() as s:
        chimes = list(s.scalars(select(Clip).where(Clip.kind == "chime_open")))
    assert len(chimes) == 1  # one chime, reused by every bulletin
    assert svc.audio.store.open(chimes[0].audio_sha256) is not None


def test_frames_stored_as_announcements_move_to_clips(database_url: str) -> None:
    """A database from before clips: its frames were announcements by "system", numbered between the
    officer's. Upgrading moves them; the officer's announcements stay as they were."""
    from broadcaster.db.migrations import upgrade

    db = Database(database_url)
    upgrade(db.engine, "0003")
    at = "2026-11-24 23:00:00"
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO zones (id, name, kind) VALUES ('thon-1', 'Thôn 1', 'VILLAGE')"))
        for n, (title, by) in enumerate([("Thu thuế", "can-bo"), ("Bản tin sáng ngày 25 tháng 11", "system")], 1):
            conn.execute(
                text(
                    "INSERT INTO announcements (id, title, text, priority, created_at, created_by, audio_sha256, "
                    "audio_size, audio_duration_ms, audio_ext, engine) VALUES (:id, :title, :text, 'normal', :at, "
                    f":by, '{n:064x}', 1000, 2000, 'mp3', 'espeak')"
                ),
                {"id": n, "title": title, "text": title, "at": at, "by": by},
            )
            conn.execute(
                text(
                    "INSERT INTO broadcasts (announcement_id, title, zone_id, start_at, expires_at, airing_id, "
                    "window_id, order_key, kind, priority, duration_ms, code, explanation, status, late, reason) "
                    "VALUES (:id, :title, 'thon-1', :at, :at, :airing, '', 0, :kind, 'normal', 2000, '', '', "
                    "'PLANNED', false, '')"
                ),
                {"id": n, "title": title, "at": at, "airing": f"x{n}", "kind": "notice" if n == 1 else "heading"},
            )
    db.upgrade()
    with db.session() as s:
        assert [a.id for a in s.scalars(select(Announcement))] == [1]
        clip = s.scalars(select(Clip)).one()
        assert (clip.kind, clip.title, clip.audio_sha256) == ("heading", "Bản tin sáng ngày 25 tháng 11", f"{2:064x}")
        heading = s.scalars(select(Broadcast).where(Broadcast.kind == "heading")).one()
        assert (heading.announcement_id, heading.clip_id) == (None, clip.id)
        assert clip.created_at == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    db.dispose()
