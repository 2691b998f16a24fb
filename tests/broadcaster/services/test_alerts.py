"""Official alerts (CAP 1.2, TT39 bulletins): what airs, what waits, what is refused, and that a refused
alert airs nothing — checked by what is planned, not by what is answered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcaster.db import (
    AlertSource,
    Announcement,
    AnnouncementState,
    AuditEntry,
    Broadcast,
    BroadcastStatus,
    ReceivedAlert,
)
from broadcaster.errors import LoaError
from broadcaster.ingest.cap import receive_cap
from broadcaster.services import Services
from broadcaster.services.alerts import receive, sources_view, tt39_bulletin
from schedules.clock import SystemClock
from tests.broadcaster.capdocs import HEADLINE, cap, commune, reference, sign, signing_pair


@pytest.fixture
def svc(tmp_path: Path, sqlite_url: str) -> Iterator[Services]:
    services = commune(tmp_path, sqlite_url, SystemClock())
    yield services
    services.db.dispose()


def planned(svc: Services) -> list[Broadcast]:
    with svc.db.session() as s:
        rows = list(s.scalars(select(Broadcast).where(Broadcast.status == BroadcastStatus.PLANNED)))
        s.expunge_all()
    return rows


def source_status(svc: Services, name: str) -> tuple[str, str]:
    row = {r["name"]: r for r in sources_view(svc, "en")}[name]
    return row["status"], row["reason_code"]


def refused(svc: Services, doc: bytes, code: str, source: str = "tinh") -> LoaError:
    with pytest.raises(LoaError) as info:
        receive_cap(svc, source, doc, posted_by="tinh-bot")
    assert info.value.code == code, info.value
    assert source_status(svc, source) == ("rejected", code)
    assert planned(svc) == []  # nothing airs
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Announcement)) == 0
        assert (s.scalar(select(func.count()).where(AuditEntry.action == "alert.rejected")) or 0) >= 1
    return info.value


def test_an_extreme_immediate_alert_airs_at_once_as_an_emergency_on_its_villages(svc: Services) -> None:
    result = receive_cap(svc, "tinh", cap(), posted_by="tinh-bot")
    assert result["status"] == "aired" and result["priority"] == "emergency" and result["zones"] == ["thon-1"]
    rows = planned(svc)
    repeats = svc.config.schedule.emergency_repeats
    assert len(rows) == repeats and {b.zone_id for b in rows} == {"thon-1"}
    assert {b.priority for b in rows} == {"emergency"}
    assert {b.title for b in rows} == {HEADLINE}  # what the LED boards show
    with svc.db.session() as s:
        item = s.get(Announcement, result["announcement"])
        assert item is not None and item.created_by == "cap:tinh" and item.approved_via == "emergency"
        assert item.text.startswith(HEADLINE + ".\nMưa lớn 150mm") and "vùng cao" in item.text
        confirmed = s.scalars(select(AuditEntry).where(AuditEntry.action == "emergency.confirmed")).one()
        assert confirmed.actor == "cap:tinh" and "VN-KTTV-2026-0001" in confirmed.detail
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "alert.aired")).one().actor == "tinh-bot"
    assert source_status(svc, "tinh") == ("ok", "")


def test_a_severe_expected_alert_waits_for_an_approver(svc: Services) -> None:
    result = receive_cap(svc, "tinh", cap(severity="Severe", urgency="Expected", geocode=("VN-XA", "25252"),
                                          area="Vùng trũng ven sông"), posted_by="tinh-bot")  # fmt: skip
    assert result["status"] == "drafted" and result["priority"] == "priority" and result["zones"] == ["thon-1"]
    assert result["item"]["state"] == "awaiting_approval"  # even with require_approval off: nobody sent it
    assert planned(svc) == []


def test_an_update_replaces_the_alert_and_a_cancel_recalls_it(svc: Services) -> None:
    first = cap()
    aired = receive_cap(svc, "tinh", first, posted_by="tinh-bot")
    update = cap(identifier="VN-KTTV-2026-0002", msg_type="Update", references=reference(first),
                 headline="Lũ quét: mở rộng sang thôn 2", area="Thôn 2")  # fmt: skip
    updated = receive_cap(svc, "tinh", update, posted_by="tinh-bot")
    assert updated["status"] == "aired" and updated["withdrawn"] == [aired["announcement"]]
    assert {(b.zone_id, b.announcement_id) for b in planned(svc)} == {("thon-2", updated["announcement"])}
    cancel = cap(identifier="VN-KTTV-2026-0003", msg_type="Cancel", references=reference(update), info=False)
    cancelled = receive_cap(svc, "tinh", cancel, posted_by="tinh-bot")
    assert cancelled["status"] == "applied" and cancelled["withdrawn"] == [updated["announcement"]]
    assert planned(svc) == []
    with svc.db.session() as s:
        statuses = dict(s.execute(select(ReceivedAlert.identifier, ReceivedAlert.status)).all())
        cancelled_rows = s.scalars(select(Broadcast).where(Broadcast.status == BroadcastStatus.CANCELLED)).all()
    assert statuses == {"VN-KTTV-2026-0001": "cancelled", "VN-KTTV-2026-0002": "cancelled",
                        "VN-KTTV-2026-0003": "applied"}  # fmt: skip
    assert {b.reason for b in cancelled_rows} == {"recalled"}


def test_a_cancel_sends_back_what_waits_for_approval(svc: Services) -> None:
    first = cap(severity="Moderate", urgency="Expected")
    drafted = receive_cap(svc, "tinh", first, posted_by="tinh-bot")
    cancel = cap(identifier="huy-1", msg_type="Cancel", references=reference(first), info=False)
    assert receive_cap(svc, "tinh", cancel, posted_by="tinh-bot")["withdrawn"] == [drafted["announcement"]]
    with svc.db.session() as s:
        item = s.get(Announcement, drafted["announcement"])
        assert item is not None and item.state is AnnouncementState.REJECTED


def test_a_document_that_fails_the_schema_is_refused_with_the_reason_and_nothing_airs(svc: Services) -> None:
    bad = cap().replace(b"<severity>Extreme</severity>", b"<severity>Catastrophic</severity>")
    error = refused(svc, bad, "alert_schema")
    assert "severity" in str(error.params["detail"]) or "Catastrophic" in str(error.params["detail"])
    status = {r["name"]: r for r in sources_view(svc, "en")}["tinh"]
    assert "CAP 1.2 schema" in status["reason"]
    refused(svc, b"<alert>not closed", "alert_malformed")
    refused(svc, cap().replace(b"urn:oasis:names:tc:emergency:cap:1.2", b"urn:example:cap"), "alert_schema")


def test_entities_and_doctypes_are_refused_unread(svc: Services, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("mật khẩu")
    xxe = (b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x SYSTEM "file://' + str(secret).encode() + b'">]>'
           + cap().split(b"?>", 1)[1].replace(HEADLINE.encode(), b"&x;"))  # fmt: skip
    error = refused(svc, xxe, "alert_malformed")
    assert "mật khẩu" not in error.message("vi")
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><l>&b;</l>'
    refused(svc, bomb, "alert_malformed")
    utf16 = cap().decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').replace(
        "<alert ", '<!DOCTYPE alert [<!ENTITY x "y">]><alert ').encode("utf-16")  # fmt: skip
    refused(svc, utf16, "alert_malformed")
    with pytest.raises(LoaError) as info:
        receive_cap(svc, "tinh", b" " * (svc.config.alerts.max_kb * 1024 + 1), posted_by="tinh-bot")
    assert info.value.code == "alert_too_large"


def test_expired_duplicate_wrong_area_and_test_alerts_are_refused_and_nothing_airs(svc: Services) -> None:
    now = dt.datetime.now(dt.UTC)
    refused(svc, cap(identifier="cu", sent=now - dt.timedelta(hours=3), expires=now - dt.timedelta(hours=1)),
            "alert_expired")  # fmt: skip
    refused(svc, cap(identifier="xa-khac", area="Xã Bên Cạnh", geocode=("VN-XA", "99999")), "alert_no_zone")
    refused(svc, cap(identifier="tap-huan", status="Exercise"), "alert_not_actual")
    refused(svc, cap(identifier="huy-gi", msg_type="Cancel", references="x,y,2026-01-01T00:00:00+07:00",
                     info=False), "alert_unknown_reference")  # fmt: skip
    doc = cap(identifier="that")
    assert receive_cap(svc, "tinh", doc, posted_by="tinh-bot")["status"] == "aired"
    airings = len(planned(svc))
    with pytest.raises(LoaError) as info:
        receive_cap(svc, "tinh", doc, posted_by="attacker")  # a replay, word for word
    assert info.value.code == "alert_duplicate" and info.value.status == 409
    assert len(planned(svc)) == airings
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Announcement)) == 1


def test_a_source_that_must_sign_takes_only_what_its_key_signed(svc: Services, tmp_path: Path) -> None:
    key = (tmp_path / "ky-key.pem").read_bytes()
    cert = tmp_path / "ky.pem"
    refused(svc, cap(identifier="khong-ky"), "alert_unsigned", source="ky")
    signed = sign(cap(identifier="da-ky"), key, cert)
    forged = signed.replace(b"Immediate", b"Expected")  # changed after signing
    refused(svc, forged, "alert_unsigned", source="ky")
    other_key, _ = signing_pair(tmp_path, "khac")
    refused(svc, sign(cap(identifier="ky-khac"), other_key, cert), "alert_unsigned", source="ky")
    result = receive_cap(svc, "ky", signed, posted_by="ky-bot")
    assert result["status"] == "aired" and len(planned(svc)) == svc.config.schedule.emergency_repeats
    # A source that need not sign cannot withdraw what the signing one aired.
    cancel = cap(identifier="huy-gia", msg_type="Cancel", references=reference(signed), info=False)
    with pytest.raises(LoaError) as info:
        receive_cap(svc, "tinh", cancel, posted_by="attacker")
    assert info.value.code == "alert_unknown_reference"
    assert len(planned(svc)) == svc.config.schedule.emergency_repeats


def test_tt39_bulletins_at_their_three_levels(svc: Services) -> None:
    now = dt.datetime.now(dt.UTC)

    def bulletin(identifier: str, level: str) -> dict[str, Any]:
        incoming = tt39_bulletin("tt39", identifier=identifier, level=level, title=f"Bản tin {level}",
                                 text="Thông báo của UBND tỉnh.", areas=["Thôn 2"], sent=now)  # fmt: skip
        return receive(svc, incoming, posted_by="tinh-he-thong")

    assert bulletin("b1", "normal")["item"]["state"] == "awaiting_approval"
    assert bulletin("b2", "priority")["item"]["priority"] == "priority"
    assert planned(svc) == []
    emergency = bulletin("b3", "emergency")
    assert emergency["status"] == "aired"
    assert {(b.zone_id, b.priority) for b in planned(svc)} == {("thon-2", "emergency")}
    with pytest.raises(LoaError) as info:
        bulletin("b3", "emergency")
    assert info.value.code == "alert_duplicate"


def test_without_auto_air_an_emergency_waits_as_a_priority_item(tmp_path: Path, sqlite_url: str) -> None:
    svc = commune(tmp_path, sqlite_url, SystemClock(), LOA_ALERTS_AUTO_AIR="false")
    result = receive_cap(svc, "tinh", cap(), posted_by="tinh-bot")
    assert result["status"] == "drafted" and result["priority"] == "priority" and planned(svc) == []
    svc.db.dispose()


def test_two_deliveries_of_one_alert_at_once_air_it_once(tmp_path: Path, database_url: str) -> None:
    """The poller and a POST bring the same alert together: the unique key lets one through."""
    import threading

    svc = commune(tmp_path, database_url, SystemClock())
    doc, outcomes = cap(identifier="dong-thoi"), []
    def deliver() -> None:
        try:
            outcomes.append(receive_cap(svc, "tinh", doc, posted_by="tinh-bot")["status"])
        except LoaError as exc:
            outcomes.append(exc.code)
    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["aired", "alert_duplicate"]
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Announcement)) == 1
        assert s.scalar(select(AlertSource.status).where(AlertSource.name == "tinh")) in ("ok", "rejected")
    svc.db.dispose()


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[[alerts.rules]]\npriority = "emergency"\naction = "draft"\n', "never drafted"),
        ('[alerts.sources.a]\nkind = "cap-post"\nrequire_signature = true\n', "needs a certificate"),
        ('[alerts.sources.b]\nkind = "cap-url"\n', "needs a url"),
        ('[alerts.sources."Tỉnh"]\nkind = "tt39"\n', "a source name"),
        ('[[alerts.rules]]\nseverity = ["Apocalyptic"]\npriority = "normal"\naction = "air"\n', "alerts.rules"),
    ],
)
def test_an_alert_policy_that_cannot_be_is_refused_at_start_up(tmp_path: Path, toml: str, needle: str) -> None:
    from broadcaster.config import ConfigError, load_config

    path = tmp_path / "loa.toml"
    path.write_text("[alerts]\n" + toml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert needle in str(info.value)
