"""The commune's lexicon, edited while loa runs: checked, unique whatever the case, audited, merged over
the configured one, and read by every render; and the reading a compose page shows. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.config import load_config
from broadcaster.db import AuditEntry, Database, LexiconEntry, Role, User
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.build import build_services
from broadcaster.services.lexicon import (
    add_entry,
    current_lexicon,
    delete_entry,
    edit_entry,
    lexicon_source,
    list_entries,
    reading,
)
from schedules.clock import LOCAL_TZ, FakeClock
from tests.broadcaster.conftest import make_user

MORNING = datetime(2026, 11, 25, 7, 0, tzinfo=LOCAL_TZ)


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    """With a configured lexicon, as a commune writes it in its TOML file."""
    config = tmp_path / "loa.toml"
    config.write_text('[speech.lexicon]\n"TDP" = "tổ dân phố"\n"KVC" = "khu vực chung"\n', encoding="utf-8")
    environ = {"LOA_GENERAL_DATA_DIR": str(tmp_path / "data"), "LOA_DATABASE_URL": database_url,
               "LOA_SPEECH_CHIMES": "false"}  # fmt: skip
    services = build_services(load_config(config, environ=environ), FakeClock(MORNING))
    yield services
    services.db.dispose()


def _principal(svc: Services, username: str, role: Role) -> Principal:
    make_user(svc, username, role)
    with svc.db.session() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        return Principal(user.id, user.username, user.display_name, user.role, "token")


def _rows(svc: Services) -> tuple[int, int]:
    with svc.db.session() as s:
        entries = s.scalar(select(func.count()).select_from(LexiconEntry)) or 0
        audited = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("lexicon.%")))
        return entries, audited or 0


def test_a_reading_added_is_heard_in_the_next_render_and_wins_over_the_configured_one(svc: Services) -> None:
    text = "Họp tổ tại KVC, TDP số 3."
    assert reading(svc, text)["spoken"] == "Họp tổ tại khu vực chung, tổ dân phố số ba."
    key_before = svc.audio.cache_key(text)
    officer = _principal(svc, "can-bo", Role.OFFICER)
    entry = add_entry(svc, "KVC", "khu vui chơi", actor="can-bo", by=officer)
    assert (entry["written"], entry["spoken"], entry["created_by"]) == ("KVC", "khu vui chơi", "can-bo")
    assert current_lexicon(svc)["KVC"] == "khu vui chơi" and current_lexicon(svc)["TDP"] == "tổ dân phố"
    read = reading(svc, text)
    assert read["spoken"] == "Họp tổ tại khu vui chơi, tổ dân phố số ba."
    assert [(e["written"], e["source"]) for e in read["expansions"]] == [("KVC", "lexicon"), ("TDP", "lexicon"),
                                                                          ("3", "rule")]  # fmt: skip
    assert svc.audio.cache_key(text) != key_before  # the render the next time is a new one, with the new reading

    edited = edit_entry(svc, entry["id"], spoken="khu vui  chơi trẻ em", actor="can-bo", by=officer)
    assert edited["spoken"] == "khu vui chơi trẻ em"  # spaces tidied
    delete_entry(svc, entry["id"], actor="can-bo", by=officer)
    assert reading(svc, text)["spoken"] == "Họp tổ tại khu vực chung, tổ dân phố số ba."  # the configured again
    with svc.db.session() as s:
        log = [(a.actor, a.action) for a in s.scalars(select(AuditEntry).where(AuditEntry.action.like("lexicon.%")))]
    assert log == [("can-bo", "lexicon.add"), ("can-bo", "lexicon.edit"), ("can-bo", "lexicon.delete")]


@pytest.mark.parametrize(
    ("written", "spoken", "code", "status"),
    [
        ("", "ủy ban", "lexicon_empty", 400),
        ("UBND", "   ", "lexicon_empty", 400),
        ("X" * 61, "ích", "lexicon_too_long", 400),
        ("UBND", "ủy " * 100, "lexicon_too_long", 400),
        ("QĐ", "quyết định 15", "lexicon_digits", 400),
        ("Nà\nHẩu", "na hẩu", "lexicon_bad_chars", 400),
        ("Nà\u200bHẩu", "na hẩu", "lexicon_bad_chars", 400),
        ("...", "chấm", "lexicon_no_word", 400),
        ("KT", "—", "lexicon_no_word", 400),
        ("Nà Hẩu\ud800", "na hẩu", "bad_text", 400),
        ("ubnd", "u bê en đê", "lexicon_exists", 409),  # "UBND" is there, whatever the case
    ],
)
def test_bad_readings_are_refused_and_nothing_is_stored(
    svc: Services, written: str, spoken: str, code: str, status: int
) -> None:
    add_entry(svc, "UBND", "ủy ban nhân dân", actor="t")
    before = _rows(svc)
    with pytest.raises(LoaError) as refused:
        add_entry(svc, written, spoken, actor="t")
    assert (refused.value.code, refused.value.status) == (code, status)
    assert refused.value.message("vi") != refused.value.key and refused.value.message("en")
    assert _rows(svc) == before


def test_only_officers_and_admins_change_it_and_edits_keep_it_unique(svc: Services) -> None:
    admin = _principal(svc, "quan-tri", Role.ADMIN)
    first = add_entry(svc, "HTXNN", "hợp tác xã nông nghiệp", actor="quan-tri", by=admin)
    second = add_entry(svc, "Nà Hẩu", "na hẩu", actor="quan-tri", by=admin)
    before = _rows(svc)
    for role in (Role.APPROVER, Role.VIEWER):
        who = _principal(svc, f"nguoi-{role.value}", role)
        for call in (
            lambda w=who: add_entry(svc, "X", "ích", actor=w.username, by=w),
            lambda w=who: edit_entry(svc, first["id"], spoken="ích", actor=w.username, by=w),
            lambda w=who: delete_entry(svc, first["id"], actor=w.username, by=w),
        ):
            with pytest.raises(LoaError) as refused:
                call()
            assert (refused.value.code, refused.value.status) == ("forbidden", 403)
    for change, code in (({"written": "nà hẩu"}, "lexicon_exists"), ({"spoken": ""}, "lexicon_empty")):
        with pytest.raises(LoaError) as refused:
            edit_entry(svc, first["id"], **change, actor="t")
        assert refused.value.code == code
    for missing in (999, 2**70):
        with pytest.raises(LoaError) as refused:
            delete_entry(svc, missing, actor="t")
        assert (refused.value.code, refused.value.status) == ("not_found", 404)
    assert _rows(svc) == before
    assert edit_entry(svc, first["id"], written="htxnn", actor="t")["written"] == "htxnn"  # its own case may change
    assert [e["written"] for e in list_entries(svc)] == ["htxnn", "Nà Hẩu"]
    assert second["id"] in {e["id"] for e in list_entries(svc)}


def test_a_lexicon_that_cannot_be_read_costs_the_communes_readings_not_the_render(tmp_path: Path) -> None:
    config = load_config(None, environ={"LOA_GENERAL_DATA_DIR": str(tmp_path)})
    config.speech.lexicon = {"TDP": "tổ dân phố"}
    empty = Database(f"sqlite:///{tmp_path / 'not-migrated.sqlite3'}")  # no lexicon table
    assert lexicon_source(empty, config)() == {"TDP": "tổ dân phố"}
    empty.dispose()


def test_the_reading_refuses_what_cannot_be_read(svc: Services) -> None:
    for text, code in (("", "empty_text"), ("   ", "empty_text"), ("x" * 20_001, "text_too_long"),
                       ("a\ud800", "bad_text")):  # fmt: skip
        with pytest.raises(LoaError) as refused:
            reading(svc, text)
        assert refused.value.code == code
