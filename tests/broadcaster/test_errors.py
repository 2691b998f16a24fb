"""One error type and one catalogue: every refusal has words in both languages, the words fit the
values each raise site gives, and the outcomes stored in `reason` columns read the same way."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from audio.engines import EngineError
from audio.render import AudioError
from broadcaster.errors import LoaError
from broadcaster.messages import (
    CATALOGUE,
    LANGUAGES,
    coded_reason,
    pick_language,
    placeholders,
    reason_label,
    reason_text,
    render,
)
from schedules import (
    LOCAL_TZ,
    BulletinProgramme,
    ErrorCode,
    RelayProgramme,
    ScheduleError,
    Zone,
    ZoneKind,
    ZoneTree,
    notice,
    parse_recurrence,
    plan,
)
from schedules.when import WhenError, parse_when

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 25, 20, 0, tzinfo=LOCAL_TZ)  # 20:00 in the commune: quiet hours begin at 21:30
MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Site:
    """One place in the source that raises: the catalogue key it names and the params it gives."""

    where: str
    key: str | None  # None: not a literal, so it cannot be checked
    params: frozenset[str] | None  # None: not a dict literal


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _keys(node: ast.expr | None) -> frozenset[str] | None:
    if node is None:
        return frozenset()
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        return frozenset(str(k.value) for k in node.keys if isinstance(k, ast.Constant))
    return None


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _calls(where: str, *names: str) -> Iterator[tuple[str, ast.Call]]:
    for path in sorted((ROOT / where).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _name(node.func) in names:
                yield f"{path.relative_to(ROOT)}:{node.lineno}", node


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ErrorCode":
        return str(ErrorCode[node.attr])
    return None


def broadcaster_sites() -> list[Site]:
    """`LoaError("key", {...})` and `ConfigError("key", {...})` anywhere in broadcaster/."""
    return [
        Site(where, _literal(call.args[0]) if call.args else None, _keys(call.args[1] if len(call.args) > 1 else None))
        for where, call in _calls("broadcaster", "LoaError", "ConfigError")
    ]


def domain_sites() -> list[Site]:
    """The raise sites of audio/ and schedules/, as the keys LoaError.from_domain looks up."""
    sites = []
    for where, call in _calls("schedules", "ScheduleError", "WhenError"):
        code = _literal(call.args[0])
        variant = _kw(call, "variant")
        suffix = _literal(variant) if variant is not None else ""
        key = None if code is None or suffix is None else f"{code}.{suffix}" if suffix else code
        sites.append(Site(where, key, _keys(call.args[2] if len(call.args) > 2 else None)))
    for where, call in _calls("audio", "AudioError"):
        code = _literal(call.args[0])
        sites.append(Site(where, None if code is None else f"audio_{code}", _keys(_kw(call, "params"))))
    return sites


def _problems(sites: list[Site]) -> list[str]:
    bad = []
    for s in sites:
        if s.key is None or s.params is None:
            bad.append(f"{s.where}: the key and the params must be literals, so this test can read them")
        elif s.key not in CATALOGUE:
            bad.append(f"{s.where}: no catalogue entry {s.key!r}")
        else:
            for lang in LANGUAGES:
                wanted = placeholders(CATALOGUE[s.key].get(lang, ""))
                if lang not in CATALOGUE[s.key] or wanted != s.params:
                    bad.append(f"{s.where}: {s.key!r} in {lang} wants {sorted(wanted)}, given {sorted(s.params)}")
    return bad


def test_every_refusal_raised_in_broadcaster_has_words_in_both_languages_for_its_params() -> None:
    sites = broadcaster_sites()
    assert len(sites) > 40  # the reader finds them (the services, the API, the CLI, the config)
    assert not _problems(sites), "\n".join(_problems(sites))


def test_every_error_of_audio_and_schedules_has_words_in_both_languages_for_its_params() -> None:
    sites = domain_sites()
    assert len(sites) > 50
    assert not _problems(sites), "\n".join(_problems(sites))
    missing = [c.value for c in ErrorCode if c.value not in CATALOGUE]
    assert not missing, missing
    engine = LoaError.from_domain(EngineError("espeak", "exit 1"))
    assert engine.key == "audio_engine_failed" and engine.key in CATALOGUE


def test_the_catalogue_says_everything_in_both_languages_with_the_same_placeholders() -> None:
    for key, entry in CATALOGUE.items():
        assert set(entry) == set(LANGUAGES), key
        assert placeholders(entry["vi"]) == placeholders(entry["en"]), key
        assert entry["vi"] != entry["en"] or not any(c.isalpha() for c in entry["vi"]), key


def test_a_stored_reason_code_has_words() -> None:
    codes = [(where, _literal(call.args[0])) for where, call in _calls("broadcaster", "coded_reason") if call.args]
    assert len(codes) >= 6  # dispatch's no_devices, missed_validity, late, ...; the planner's rescheduled
    assert not [(w, c) for w, c in codes if c is None or f"reason.{c}" not in CATALOGUE]


# ---------------------------------------------------------------- what a person reads


def test_a_refusal_in_each_language() -> None:
    err = LoaError("unknown_zone", {"zone": "thon-9", "known": "all, thon-1"}, status=404)
    assert err.code == "unknown_zone" and err.status == 404
    assert err.message() == "Không có khu vực 'thon-9'. Các khu vực hiện có: all, thon-1."
    assert err.message("en") == "There is no zone 'thon-9'. Existing zones: all, thon-1."
    assert err.as_json("en") == {
        "error": {
            "code": "unknown_zone",
            "message": "There is no zone 'thon-9'. Existing zones: all, thon-1.",
            "params": {"zone": "thon-9", "known": "all, thon-1"},
        }
    }
    variant = LoaError("not_found.announcement", {"id": 7}, status=404)
    assert variant.code == "not_found" and variant.as_json()["error"]["message"] == "Không có thông báo số 7."
    assert str(variant) == "Không có thông báo số 7. (not_found)"


@pytest.mark.parametrize(
    ("header", "lang"),
    [(None, "vi"), ("", "vi"), ("en", "en"), ("en-GB,en;q=0.8", "en"), ("fr-FR, en;q=0.5", "en"),
     ("vi-VN,en;q=0.9", "vi"), ("fr", "vi"), ("en;q=0", "vi"), ("EN-us", "en")],
)  # fmt: skip
def test_the_language_asked_for(header: str | None, lang: str) -> None:
    assert pick_language(header) == lang


def test_errors_of_audio_and_schedules_become_ours() -> None:
    audio = LoaError.from_domain(AudioError("too_large", "Tệp quá lớn (tối đa 200 MB).", params={"max_mb": 200}))
    assert (audio.code, audio.status, audio.params) == ("audio_too_large", 422, {"max_mb": 200})
    assert audio.message("en") == "The file is too large (at most 200 MB)."

    with pytest.raises(WhenError) as when:
        parse_when("sáng mai", T0)
    bad_time = LoaError.from_domain(when.value)
    assert (bad_time.code, bad_time.status, bad_time.params) == ("bad_time", 400, {"text": "sáng mai"})
    assert bad_time.message("vi") == when.value.message_vi  # the catalogue says what the library says
    assert "sáng mai" in bad_time.message("en") and "Cannot read" in bad_time.message("en")

    with pytest.raises(ScheduleError) as rule:
        parse_recurrence("06:00 từ 10/06/2026 đến 01/06/2026", today=T0.date())
    ended = LoaError.from_domain(rule.value)
    assert (ended.code, ended.key) == ("end_before_start", "end_before_start.dates")
    assert ended.message("en") == "The end date 01/06/2026 is before the start date 10/06/2026."
    assert LoaError.from_domain(ended) is ended


def test_a_domain_sentence_the_catalogue_lacks_is_shown_as_the_library_says_it() -> None:
    err = LoaError.from_domain(ScheduleError(ErrorCode.BAD_ZONE, "Một câu mới của thư viện.", variant="new_case"))
    assert err.code == "bad_zone" and err.key == "bad_zone.new_case" and err.key not in CATALOGUE
    assert err.message("vi") == "Một câu mới của thư viện."
    assert err.message("en") == render("bad_zone", {}, "en")  # the code's general sentence


# ---------------------------------------------------------------- the planner's refusals


def _tree() -> ZoneTree:
    return ZoneTree(
        [
            Zone("xa", "Xã", ZoneKind.COMMUNE),
            Zone("thon-1", "Thôn 1", ZoneKind.VILLAGE, parent="xa"),
            Zone("thon-2", "Thôn 2", ZoneKind.VILLAGE, parent="xa"),
        ]
    )


def test_the_planners_refusals_are_said_from_the_catalogue_in_both_languages() -> None:
    at = T0.replace
    requests = [
        notice("quiet", "Họp", 2 * MIN, {"thon-1"}, now=T0, at=at(hour=22), valid_until=at(hour=23)),
        notice("long", "Dài", 50 * MIN, {"thon-2"}, now=T0, at=T0, valid_until=T0 + 60 * MIN),
        notice("full", "Chen", timedelta(minutes=12, seconds=30), {"thon-2"}, now=T0, at=T0, valid_until=T0 + 60 * MIN),
    ]
    requests += RelayProgramme(
        "r", "VOV", "http://127.0.0.1:9/s", 30 * MIN, frozenset({"thon-1"}), parse_recurrence("22:00", today=T0.date())
    ).airings(T0, T0 + timedelta(hours=5))
    windows = BulletinProgramme(
        "b", frozenset({"thon-1"}), parse_recurrence("20:30", today=T0.date()), length=5 * MIN
    ).windows(T0, T0 + timedelta(hours=2))
    window = windows[0]
    requests.append(
        notice("tight", "Quá dài", 10 * MIN, {"thon-1"}, now=T0, at=T0, window_id=window.id, valid_until=window.end)
    )
    conflicts = plan(_tree(), requests, now=T0, windows=windows).conflicts
    said = {c.airing.id: LoaError.from_domain(c) for c in conflicts}
    assert {k: v.key for k, v in said.items()} == {
        "quiet": "in_quiet_hours.item",
        "long": "no_free_slot",  # the shorter item went first; the long one no longer fits
        "r@20261125T150000Z": "in_quiet_hours.relay",
        "tight": "window_too_short.bulletin",
    }
    for c in conflicts:
        err = said[c.airing.id]
        assert err.status == 409
        assert err.message("vi") == c.message_vi  # the catalogue's sentence is the planner's own
        assert err.message("en") == render(err.key, err.params, "en")
    assert said["long"].message("en") == (
        "'Dài' (50 min) cannot be placed between 20:00 and 21:00: the timeline in Thôn 2 is full."
    )
    refusal = LoaError.refusal([c for c in conflicts if c.airing.id in ("quiet", "long")])
    assert refusal.code in ("in_quiet_hours", "no_free_slot") and refusal.status == 409
    assert "quiet hours" in refusal.message("en") and "is full" in refusal.message("en")


# ---------------------------------------------------------------- outcomes in `reason` columns


def test_reasons_are_stored_as_codes_and_read_in_the_persons_language() -> None:
    assert coded_reason("late", 12) == "late: 12" and coded_reason("no_devices") == "no_devices"
    assert reason_text("late: 12") == "Phát trễ 12 giây" and reason_text("late: 12", "en") == "Aired 12 s late"
    assert reason_text("download_failed: HTTP 404") == "Lỗi tải âm thanh (HTTP 404)"
    assert reason_text("rejected: bad_signature", "en") == "The device refused the command (bad_signature)"
    old = "Quá thời hạn phát khi hệ thống chưa gửi được lệnh"  # a row written before reasons were coded
    assert reason_text(old, "en") == old
    assert reason_text("firmware_said_no: 7") == "firmware_said_no: 7" and reason_text("") == ""
    assert reason_label("download_failed") == "lỗi tải âm thanh" and reason_label("nope") == "nope"
    with pytest.raises(KeyError):
        coded_reason("not_a_reason")


def test_the_error_modules_need_only_the_standard_library() -> None:
    """`loa agent` on a speaker's computer reports errors with these; they must not pull in the server."""
    code = (
        "import sys; before = set(sys.modules); "
        "import broadcaster.errors, broadcaster.messages, broadcaster.cli.parser; "
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before} - sys.stdlib_module_names)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["broadcaster"]
