"""The villagers' side, below the pages: what counts as aired (services/listen.py), the QR tokens, the
feedback form's checks, the flood limits, the officer's handling, the count for reports, the purge."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.config import ConfigError, load_config
from broadcaster.db import Announcement as AnnouncementRow
from broadcaster.db import AnnouncementState, AuditEntry, DeliveryStatus, DeviceKind, Feedback
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.announcements import announce
from broadcaster.services.approvals import compose
from broadcaster.services.feedback import (
    FeedbackLimiter,
    count_by_village,
    handle_feedback,
    list_feedback,
    purge_feedback,
    qr_sheet,
    qr_token,
    resolve_qr,
    submit_feedback,
)
from broadcaster.services.listen import aired_items
from broadcaster.services.recall import recall
from broadcaster.services.zones import add_device, add_village
from schedules.clock import FakeClock
from tests.broadcaster.conftest import make_services
from tests.broadcaster.web.conftest import T0, air


@pytest.fixture
def svc(tmp_path: Path) -> Services:
    s = make_services(tmp_path, f"sqlite:///{tmp_path / 'loa.sqlite3'}", FakeClock(T0))
    with s.db.session() as session:
        add_village(session, "thon-1", "Thôn 1")
        add_village(session, "thon-2", "Thôn 2")
        add_device(session, "thon-1-loa", DeviceKind.SPEAKER, "thon-1", name="Loa chợ")
        add_device(session, "thon-2-loa", DeviceKind.SPEAKER, "thon-2")
    return s


def _clock(svc: Services) -> FakeClock:
    assert isinstance(svc.clock, FakeClock)
    return svc.clock


def _aired(svc: Services, text: str, zones: list[str], outcomes: dict[str, DeliveryStatus], **kw: str) -> int:
    made = announce(svc, text, zones, "+1m", title=text[:30], actor="can-bo", **kw)  # type: ignore[arg-type]
    _clock(svc).advance(timedelta(minutes=1))
    air(svc, made["broadcasts"][0]["id"], {d: (s, "", 1.0) for d, s in outcomes.items()})
    _clock(svc).advance(timedelta(minutes=2))
    return int(made["id"])


def _listed(svc: Services, village: str | None = None) -> set[int]:
    return {i.id for i in aired_items(svc, village)}


# ---------------------------------------------------------------- only what actually aired


def test_an_item_is_listed_where_a_speaker_played_it_to_the_end(svc: Services) -> None:
    both = _aired(svc, "Họp thôn tối nay.", ["all"], {"thon-1-loa": DeliveryStatus.DONE,
                                                      "thon-2-loa": DeliveryStatus.FAILED})  # fmt: skip
    assert both in _listed(svc, "thon-1") and both in _listed(svc)
    assert both not in _listed(svc, "thon-2")  # its speaker failed there: nobody heard it
    half = _aired(svc, "Đang phát dở.", ["thon-1"], {"thon-1-loa": DeliveryStatus.PLAYING})
    assert half not in _listed(svc)  # not to the end (yet)
    item = aired_items(svc, "thon-1")[0]
    assert item.audio_path and item.audio_bytes == (svc.audio.store.root / Path(item.audio_path).name).stat().st_size


def test_drafts_and_items_not_approved_are_never_listed(svc: Services) -> None:
    draft = compose(svc, "Bản nháp chưa gửi.", ["thon-1"], "+1h", submit=False, actor="can-bo")
    aired = _aired(svc, "Tin đã phát rồi bị sửa.", ["thon-1"], {"thon-1-loa": DeliveryStatus.DONE})
    assert aired in _listed(svc)
    with svc.db.session() as s:
        row = s.get(AnnouncementRow, aired)
        assert row is not None
        row.state = AnnouncementState.DRAFT  # as if its rows said it aired while it is a draft
    assert _listed(svc) == set() and draft["id"] not in _listed(svc)


def test_a_recalled_notice_is_withdrawn_but_an_emergency_stays_with_its_outcome(svc: Services) -> None:
    notice = _aired(svc, "Thông báo nhầm.", ["thon-1"], {"thon-1-loa": DeliveryStatus.DONE})
    assert notice in _listed(svc)
    recall(svc, notice, actor="can-bo", reason="Nhầm ngày")
    assert notice not in _listed(svc)
    alarm = _aired(svc, "Lũ về, sơ tán ngay.", ["thon-1"], {"thon-1-loa": DeliveryStatus.PLAYING},
                   priority="emergency", reason="Mưa lớn")  # fmt: skip
    recall(svc, alarm, actor="can-bo", reason="Báo nhầm")
    (item,) = [i for i in aired_items(svc) if i.id == alarm]
    assert item.emergency and item.recall is not None and item.recall["reason"] == "Báo nhầm"
    assert (item.speakers_played, item.speakers) == (1, 1)


def test_what_aired_before_the_listening_window_is_not_listed(svc: Services) -> None:
    old = _aired(svc, "Tin cũ.", ["thon-1"], {"thon-1-loa": DeliveryStatus.DONE})
    _clock(svc).advance(timedelta(days=svc.config.villagers.listen_days, minutes=1))
    assert old not in _listed(svc)


# ---------------------------------------------------------------- QR codes and the form


def test_a_qr_token_comes_from_the_server_secret_not_the_id(svc: Services, tmp_path: Path) -> None:
    other = make_services(tmp_path / "other", f"sqlite:///{tmp_path / 'other.sqlite3'}", FakeClock(T0))
    token = qr_token(svc.config, "thon", "thon-1")
    assert len(token) == 16 and token != qr_token(other.config, "thon", "thon-1")
    assert token != qr_token(svc.config, "loa", "thon-1") != qr_token(svc.config, "thon", "thon-2")
    assert resolve_qr(svc, "thon", "thon-1", token).village_id == "thon-1"
    for kind, target, bad in [("thon", "thon-1", token[:-1] + ("A" if token[-1] != "A" else "B")),
                              ("thon", "thon-2", token), ("loa", "thon-1", token), ("x", "thon-1", token)]:  # fmt: skip
        with pytest.raises(LoaError) as refused:
            resolve_qr(svc, kind, target, bad)
        assert refused.value.code == "not_found" and refused.value.status == 404
    sheet = qr_sheet(svc)
    assert [v["id"] for v in sheet] == ["thon-1", "thon-2"]
    assert sheet[0]["speakers"][0]["path"] == f"/y-kien/loa/thon-1-loa/{qr_token(svc.config, 'loa', 'thon-1-loa')}"


def _stored(svc: Services) -> int:
    with svc.db.session() as s:
        return len(s.scalars(select(Feedback)).all())


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"category": "unclear", "honeypot": "http://spam.example"}, "feedback_refused"),
        ({"category": "loud"}, "feedback_category"),
        ({"category": "unclear", "phone": "gọi tôi"}, "bad_phone"),
        ({"category": "unclear", "phone": "123"}, "bad_phone"),
        ({"category": "content", "text": "x" * 1001}, "text_too_long"),
    ],
)
def test_bad_feedback_is_refused_and_nothing_is_stored(svc: Services, fields: dict[str, str], code: str) -> None:
    target = resolve_qr(svc, "loa", "thon-1-loa", qr_token(svc.config, "loa", "thon-1-loa"))
    with pytest.raises(LoaError) as refused:
        submit_feedback(svc, target, **fields)
    assert refused.value.code == code and 400 <= refused.value.status < 500
    assert refused.value.message("vi") and _stored(svc) == 0


def test_feedback_is_stored_as_typed_and_handled_with_an_audited_reply(svc: Services) -> None:
    target = resolve_qr(svc, "loa", "thon-1-loa", qr_token(svc.config, "loa", "thon-1-loa"))
    fid = submit_feedback(svc, target, "too_loud", " Loa to quá, trẻ con sợ. ", "0912.345.678", client_hash="ab" * 20)
    (row,) = list_feedback(svc, show_phone=True)
    assert (row["id"], row["village"], row["device"], row["category"]) == (fid, "thon-1", "thon-1-loa", "too_loud")
    assert row["text"] == "Loa to quá, trẻ con sợ." and row["phone"] == "0912345678" and len(row["same_sender"]) == 32
    assert list_feedback(svc)[0]["phone"] is None and list_feedback(svc)[0]["has_phone"]
    with pytest.raises(LoaError, match="reply_required"):
        handle_feedback(svc, fid, "  ", actor="can-bo")
    handle_feedback(svc, fid, "Đã giảm âm lượng loa chợ.", actor="can-bo")
    assert list_feedback(svc) == [] and list_feedback(svc, state="handled")[0]["reply"] == "Đã giảm âm lượng loa chợ."
    with svc.db.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "feedback.handle")).one()
    assert entry.actor == "can-bo" and json.loads(entry.detail)["feedback"] == fid
    with pytest.raises(LoaError, match="not_found"):
        handle_feedback(svc, 999, "x", actor="can-bo")


def test_floods_are_refused_per_address_and_per_code_for_an_hour() -> None:
    clock = FakeClock(T0)
    limiter = FeedbackLimiter(clock, per_address=2, per_qr=3)
    limiter.take("a", "thon:thon-1")
    limiter.take("a", "thon:thon-1")
    with pytest.raises(LoaError) as refused:
        limiter.take("a", "thon:thon-1")
    assert refused.value.status == 429 and refused.value.params["minutes"] == 60
    assert "thử lại sau 60 phút" in refused.value.message("vi")
    limiter.take("b", "thon:thon-1")  # another phone, same code: the code's third
    with pytest.raises(LoaError, match="too_many_feedback"):
        limiter.take("c", "thon:thon-1")  # the code is spent for the hour
    limiter.take("c", "loa:x")  # a refusal counted nothing against c
    clock.advance(timedelta(hours=1, seconds=1))
    limiter.take("a", "thon:thon-1")


def test_counts_per_village_and_the_purge_after_the_retention(svc: Services) -> None:
    village = resolve_qr(svc, "thon", "thon-2", qr_token(svc.config, "thon", "thon-2"))
    speaker = resolve_qr(svc, "loa", "thon-1-loa", qr_token(svc.config, "loa", "thon-1-loa"))
    submit_feedback(svc, village, "content", "Nên phát lại bản tin tối.", "0987654321")
    _clock(svc).advance(timedelta(days=10))
    submit_feedback(svc, speaker, "broken")
    submit_feedback(svc, village, "unclear")
    now = svc.clock.now()
    assert count_by_village(svc, now - timedelta(days=30), now + timedelta(seconds=1)) == {"thon-1": 1, "thon-2": 2}
    assert count_by_village(svc, now - timedelta(days=1), now + timedelta(seconds=1)) == {"thon-1": 1, "thon-2": 1}
    _clock(svc).advance(timedelta(days=svc.config.villagers.feedback_retention_days - 5))
    assert purge_feedback(svc) == 1  # the first, phone number and all
    assert all(not f["has_phone"] for f in list_feedback(svc, state="all")) and _stored(svc) == 2


def test_the_retention_is_validated() -> None:
    with pytest.raises(ConfigError, match="feedback_retention_days"):
        load_config(None, environ={"LOA_VILLAGERS_FEEDBACK_RETENTION_DAYS": "0"})
    config = load_config(None, environ={"LOA_VILLAGERS_FEEDBACK_RETENTION_DAYS": "30"})
    assert config.villagers.feedback_retention_days == 30
