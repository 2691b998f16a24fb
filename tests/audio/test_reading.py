"""How a text will be read, and which written words became which spoken ones (`read_aloud`), for the
compose page that shows the reading beside the text; and the pipeline reading its lexicon afresh for
every render, so a reading fixed while the daemon runs is heard in the next render."""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from audio.engines import EspeakEngine
from audio.normalize import normalize, read_aloud, split_paragraphs
from audio.pipeline import AudioPipeline
from audio.store import AudioStore

LEXICON = {"KVC": "khu vui chơi", "Nà Hẩu": "na hẩu"}


def _pieces(text: str, lexicon: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    return [(e.written, e.spoken, e.source) for e in read_aloud(text, lexicon).expansions]


def test_the_reading_is_what_the_pipeline_speaks_and_says_what_it_expanded() -> None:
    text = "UBND xã thông báo: 7h30 sáng mai, ngày 25/5/2023, họp thôn tại KVC."
    reading = read_aloud(text, LEXICON)
    assert reading.spoken == normalize(text, LEXICON)
    assert _pieces(text, LEXICON) == [
        ("UBND", "ủy ban nhân dân", "abbreviation"),
        ("7h30", "bảy giờ ba mươi phút", "rule"),
        ("25/5/2023", "hai mươi lăm tháng năm năm hai nghìn không trăm hai mươi ba", "rule"),
        ("KVC", "khu vui chơi", "lexicon"),
    ]


def test_spans_index_the_written_text_and_the_reading_across_sentences_and_paragraphs() -> None:
    text = "Gọi 114 khi có cháy.\r\nHọc phí 1.500.000đ/tháng\n\n- HĐND và UBND xã Nà Hẩu họp."
    reading = read_aloud(text, LEXICON)
    spoken_lines = [" ".join(normalize(s, LEXICON) for s in paragraph) for paragraph in split_paragraphs(text)]
    assert reading.spoken == "\n".join(spoken_lines)
    for e in reading.expansions:
        assert text[e.start : e.end] == e.written
        assert reading.spoken[e.spoken_start : e.spoken_end] == e.spoken
    assert ("Nà Hẩu", "na hẩu", "lexicon") in _pieces(text, LEXICON)  # an entry of two words is one piece
    assert ("1.500.000đ/tháng", "một triệu năm trăm nghìn đồng một tháng", "rule") in _pieces(text, LEXICON)
    assert ("114", "một một bốn", "rule") in _pieces(text, LEXICON)


def test_words_read_as_written_are_no_expansion_and_without_a_lexicon_names_are_left_alone() -> None:
    assert _pieces("Kính thưa bà con, \"họp\" thôn (tối nay).") == []  # quotes and brackets: only pauses
    assert _pieces("Họp tại nhà văn hóa Nà Hẩu.") == []
    assert _pieces("Họp tại KVC.") == [("KVC", "ca vê xê", "rule")]  # an unknown abbreviation is spelled
    assert read_aloud("") == read_aloud("   ") == read_aloud("• • •")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.text(alphabet=string.ascii_letters + string.digits + " .,:/-\n" + "ăâđêôơưàáạảãệộờỳ", max_size=80))
def test_any_text_gives_spans_that_point_at_what_they_say(text: str) -> None:
    reading = read_aloud(text, LEXICON)
    for e in reading.expansions:
        assert text[e.start : e.end] == e.written
        assert reading.spoken[e.spoken_start : e.spoken_end] == e.spoken
        assert e.written or e.spoken


def test_a_callable_lexicon_is_read_for_every_render(tmp_path: Path) -> None:
    """The daemon hands the pipeline a function that reads the commune's lexicon: a reading added while
    it runs changes the next render (a new cache key, so the old audio is not reused)."""
    table: dict[str, str] = {}
    pipeline = AudioPipeline(AudioStore(tmp_path / "store"), EspeakEngine(), lexicon=lambda: dict(table))
    before = pipeline.cache_key("Họp tại KVC.")
    table["KVC"] = "khu vui chơi"
    after = pipeline.cache_key("Họp tại KVC.")
    assert before != after
    assert pipeline.current_lexicon() == {"KVC": "khu vui chơi"}
    fixed = AudioPipeline(AudioStore(tmp_path / "store"), EspeakEngine(), lexicon={"KVC": "khu vui chơi"})
    assert fixed.cache_key("Họp tại KVC.") == after  # a mapping and a function giving it read the same
