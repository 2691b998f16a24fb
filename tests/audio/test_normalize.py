"""Tests for the Vietnamese broadcast normalizer.

The corpus pins the readings a northern announcer gives; the property tests pin
the guarantees the TTS pipeline relies on (never raises, never leaves a digit,
idempotent) on input nobody thought of.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio.lexicon import DOCUMENT_SEGMENTS, LETTER_NAMES
from audio.normalize import BUILTIN_LEXICON, normalize, read_aloud, read_number, split_paragraphs, split_sentences

CORPUS_PATH = Path(__file__).with_name("normalize_corpus.tsv")
SAMPLE_ARTICLE = Path(__file__).resolve().parents[1] / "data" / "news-au-lau-chinh-quyen-than-thien.txt"
ASCII_DIGIT = re.compile(r"[0-9]")


def _load_corpus() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        source, expected = line.split("\t")
        rows.append((source, expected))
    return rows


CORPUS = _load_corpus()

# ------------------------------------------------------------------------------------------------
# Corpus
# ------------------------------------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 220


@pytest.mark.parametrize(("source", "expected"), CORPUS, ids=[f"line{i}" for i in range(len(CORPUS))])
def test_corpus_reading(source: str, expected: str) -> None:
    assert normalize(source) == expected


def test_corpus_expectations_are_fixed_points() -> None:
    """A reading fed back must not change: the TTS cache keys on normalized text."""
    for _, expected in CORPUS:
        assert normalize(expected) == expected


# ------------------------------------------------------------------------------------------------
# read_number
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "không"),
        (5, "năm"),
        (10, "mười"),
        (11, "mười một"),
        (14, "mười bốn"),
        (15, "mười lăm"),
        (21, "hai mươi mốt"),
        (24, "hai mươi tư"),
        (25, "hai mươi lăm"),
        (101, "một trăm linh một"),
        (105, "một trăm linh năm"),
        (110, "một trăm mười"),
        (115, "một trăm mười lăm"),
        (1001, "một nghìn không trăm linh một"),
        (1005, "một nghìn không trăm linh năm"),
        (1010, "một nghìn không trăm mười"),
        (2023, "hai nghìn không trăm hai mươi ba"),
        (10000, "mười nghìn"),
        (21000, "hai mươi mốt nghìn"),
        (1_000_000, "một triệu"),
        (1_500_000, "một triệu năm trăm nghìn"),
        (1_000_005, "một triệu không trăm linh năm"),
        (1_234_567, "một triệu hai trăm ba mươi tư nghìn năm trăm sáu mươi bảy"),
        (1_000_000_000, "một tỷ"),
        (1_005_000_000, "một tỷ không trăm linh năm triệu"),
        (2_000_000_000_000, "hai nghìn tỷ"),
        (-5, "âm năm"),
    ],
)
def test_read_number(n: int, words: str) -> None:
    assert read_number(n) == words


def test_read_number_beyond_fifteen_digits_is_digit_by_digit() -> None:
    assert read_number(10**15) == " ".join(["một"] + ["không"] * 15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234.567", "một triệu hai trăm ba mươi tư nghìn năm trăm sáu mươi bảy"),
        ("1.500.000", "một triệu năm trăm nghìn"),
        ("2,5", "hai phẩy năm"),
        ("3,05", "ba phẩy không năm"),
        ("1000000000", "một tỷ"),
        ("15%", "mười lăm phần trăm"),
        ("2,5%", "hai phẩy năm phần trăm"),
        ("1/2", "một phần hai"),
        ("25/5/2023", "ngày hai mươi lăm tháng năm năm hai nghìn không trăm hai mươi ba"),
        ("ngày 25/5/2023", "ngày hai mươi lăm tháng năm năm hai nghìn không trăm hai mươi ba"),
        ("5/2023", "tháng năm năm hai nghìn không trăm hai mươi ba"),
        ("7:45", "bảy giờ bốn mươi lăm phút"),
        ("7h45", "bảy giờ bốn mươi lăm phút"),
        ("17h", "mười bảy giờ"),
        ("05:30", "năm giờ ba mươi phút"),
        ("7:45:09 AM", "bảy giờ bốn mươi lăm phút chín giây sáng"),
        ("3:15 PM", "ba giờ mười lăm phút chiều"),
        ("5-7 ngày", "năm đến bảy ngày"),
        ("20–25°C", "hai mươi đến hai mươi lăm độ xê"),
        ("từ 7h-11h", "từ bảy giờ đến mười một giờ"),
        ("50.000 đồng", "năm mươi nghìn đồng"),
        ("50.000đ", "năm mươi nghìn đồng"),
        ("50.000 VND", "năm mươi nghìn đồng"),
        ("-5°C", "âm năm độ xê"),
        ("60 km/h", "sáu mươi ki lô mét trên giờ"),
        ("thứ 1", "thứ nhất"),
        ("Thứ 4", "Thứ tư"),
        ("tháng 4", "tháng tư"),
        ("tháng 1", "tháng một"),
        ("lần thứ 2", "lần thứ hai"),
        ("113", "một trăm mười ba"),
        ("Gọi 113", "Gọi một một ba"),
        ("0912.345.678", "không chín một hai, ba bốn năm, sáu bảy tám"),
        ("0912 345 678", "không chín một hai, ba bốn năm, sáu bảy tám"),
        ("0912345678", "không chín một hai, ba bốn năm, sáu bảy tám"),
        ("+84 912 345 678", "cộng tám bốn, chín một hai, ba bốn năm, sáu bảy tám"),
        ("+84912345678", "cộng tám bốn, chín một hai, ba bốn năm, sáu bảy tám"),
        ("55/QĐ-UBND", "năm mươi lăm trên quyết định ủy ban nhân dân"),
        ("100/2019/NĐ-CP", "một trăm trên hai nghìn không trăm mười chín trên nghị định chính phủ"),
        ("05-CT/TW", "không năm chỉ thị trung ương"),
        ("khóa XIII", "khóa mười ba"),
        ("quý IV", "quý bốn"),
        ("thế kỷ XXI", "thế kỷ hai mươi mốt"),
        ("lần thứ XX", "lần thứ hai mươi"),
        ("Đại hội XIII", "Đại hội mười ba"),
    ],
)
def test_spec_examples(text: str, expected: str) -> None:
    assert normalize(text) == expected


# ------------------------------------------------------------------------------------------------
# Lexicon
# ------------------------------------------------------------------------------------------------

REQUIRED_READINGS = {
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "MTTQ": "mặt trận tổ quốc",
    "TTHC": "thủ tục hành chính",
    "BCĐ": "ban chỉ đạo",
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "CCCD": "căn cước công dân",
    "CAND": "công an nhân dân",
    "GD&ĐT": "giáo dục và đào tạo",
    "KH": "kế hoạch",
    "TP": "thành phố",
    "HTX": "hợp tác xã",
    "NTM": "nông thôn mới",
    "PCCC": "phòng cháy chữa cháy",
    "TW": "trung ương",
    "LHPN": "liên hiệp phụ nữ",
    "ĐTN": "đoàn thanh niên",
    "HND": "hội nông dân",
    "HCCB": "hội cựu chiến binh",
    "VN": "Việt Nam",
    "USD": "đô la Mỹ",
    "Covid-19": "cô vít mười chín",
}


def test_builtin_lexicon_covers_the_brief() -> None:
    for key, reading in REQUIRED_READINGS.items():
        assert BUILTIN_LEXICON[key] == reading
    for key in ("TX", "ATGT", "PCTT", "TKCN", "CSGT", "QĐ", "NĐ-CP", "TT", "CT", "HĐ", "BTV", "MTTQVN",
                "LĐTB&XH", "TN&MT", "NN&PTNT", "VH-TT", "CNTT", "KT-XH", "ANTT", "ANQP", "QP-AN", "SXKD",
                "ĐBSCL", "THPTQG", "GPMB", "ĐTM", "HS", "GV", "CB", "CC", "VC", "CBCCVC", "BCH", "BQL", "XH"):
        assert key in BUILTIN_LEXICON, key
    assert len(BUILTIN_LEXICON) >= 13 + 60


@pytest.mark.parametrize("key", sorted(REQUIRED_READINGS))
def test_lexicon_entry_in_a_sentence(key: str) -> None:
    assert normalize(f"Thông báo của {key} xã.") == f"Thông báo của {REQUIRED_READINGS[key]} xã."


def test_lexicon_readings_are_already_spoken() -> None:
    for table in (BUILTIN_LEXICON, DOCUMENT_SEGMENTS):
        for reading in table.values():
            assert not ASCII_DIGIT.search(reading)
            assert normalize(reading) == reading, reading


def test_lexicon_is_case_sensitive_and_whole_token() -> None:
    assert normalize("ubnd xã") == "ubnd xã"
    assert normalize("UBNDXYZ") == "UBNDXYZ"  # seven letters: a word, not an abbreviation
    assert normalize("UBND-HĐND") == "ủy ban nhân dân hội đồng nhân dân"


def test_commune_lexicon_extends_and_overrides() -> None:
    commune = {"AL": "Âu Lâu", "HTX": "hợp tác xã Âu Lâu", "XT3": "xóm Trại ba"}
    assert normalize("UBND xã AL thông báo", commune) == "ủy ban nhân dân xã Âu Lâu thông báo"
    assert normalize("HTX chè", commune) == "hợp tác xã Âu Lâu chè"
    assert normalize("họp tại XT3", commune) == "họp tại xóm Trại ba"
    assert normalize("HTX chè") == "hợp tác xã chè"  # the override did not leak
    assert normalize("AL") == "a e lờ"


def test_commune_lexicon_value_with_digits_is_still_read() -> None:
    assert normalize("đường LX", {"LX": "liên xã 5"}) == "đường liên xã năm"


def test_dotted_abbreviations_do_not_end_the_sentence() -> None:
    assert normalize("TP. Yên Bái") == "thành phố Yên Bái"
    assert normalize("Th.S Nguyễn Văn A") == "thạc sĩ Nguyễn Văn A"
    assert normalize("gồm gạo, muối, v.v. và nước") == "gồm gạo, muối, vân vân và nước"


# ------------------------------------------------------------------------------------------------
# Spelling, Roman numerals, symbols
# ------------------------------------------------------------------------------------------------


def test_unknown_abbreviation_is_spelled() -> None:
    assert normalize("Công ty KNF") == "Công ty ca en nờ ép"
    assert normalize("mã QRZ") == "mã quy e rờ dét"
    assert normalize("WJ") == "vê kép gi"


@pytest.mark.parametrize("word", ["CV", "MC", "DI", "CD", "XL", "LI", "MIX"])
def test_capitalised_words_are_not_roman_numbers(word: str) -> None:
    out = normalize(f"Nộp {word} cho ban tổ chức.")
    assert out == f"Nộp {' '.join(LETTER_NAMES[c] for c in word)} cho ban tổ chức."


def test_headline_in_capitals_is_not_spelled() -> None:
    assert normalize("THÔNG BÁO HỌP BAN CHỈ ĐẠO") == "THÔNG BÁO HỌP BAN CHỈ ĐẠO"
    assert normalize("LỊCH TIÊM VẮC XIN") == "LỊCH TIÊM VẮC XIN"


def test_quotes_and_bullets_are_silent() -> None:
    assert normalize("• “Dân vận khéo”") == "Dân vận khéo"
    assert normalize("- - «Mục tiêu»") == "Mục tiêu"
    assert normalize("*** Chú ý ***") == "Chú ý"


def test_lines_without_stop_get_a_pause() -> None:
    text = "THÔNG BÁO\nVề việc họp dân\n\n- Thời gian: 8h"
    assert normalize(text) == "THÔNG BÁO. Về việc họp dân. Thời gian: tám giờ"


def test_control_characters_emoji_and_huge_numbers() -> None:
    assert normalize("Thông\x00 báo\x07 khẩn\u200b cấp 📢") == "Thông báo khẩn cấp"
    assert normalize("9" * 40) == " ".join(["chín"] * 40)
    assert normalize("") == ""
    assert normalize("   \n\t ") == ""


def test_whole_sample_article_is_speakable() -> None:
    text = SAMPLE_ARTICLE.read_text(encoding="utf-8")
    out = normalize(text)
    assert not ASCII_DIGIT.search(out)
    assert normalize(out) == out
    assert "ngày hai mươi lăm tháng năm năm hai nghìn không trăm hai mươi ba" in out
    for paragraph in split_paragraphs(text):
        for sentence in paragraph:
            spoken = normalize(sentence)
            assert not ASCII_DIGIT.search(spoken)


def test_thread_safety() -> None:
    sources = [source for source, _ in CORPUS] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(normalize, sources))
    assert results == [normalize(s) for s in sources]


# ------------------------------------------------------------------------------------------------
# Sentence splitting
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hội nghị tổ chức tại TP. Yên Bái vào sáng mai.",
        "Ngày 25.5.2023 xã tổ chức họp dân.",
        "Lượng mưa tăng 2,5 lần so với trung bình.",
        "Thực hiện Quyết định số 55/QĐ-UBND của xã.",
        "Báo cáo viên là Th.S Nguyễn Văn Nam.",
        "Báo cáo viên là ThS. Nguyễn Văn Nam.",
        "Chuẩn bị gạo, muối, v.v. để ứng phó với bão.",
        "Xây dựng hòm thư điện tử, trang thông tin điện tử… để tiếp nhận ý kiến.",
        "Chờ đợi... rồi mọi việc cũng xong.",
        "Ông Nguyễn V. Nam phát biểu.",
        "1. Tổ chức tuyên truyền sâu rộng.",
    ],
)
def test_split_sentences_keeps_one_sentence(text: str) -> None:
    assert split_sentences(text) == [text]


def test_split_sentences_splits_on_full_stop_before_capital() -> None:
    text = "UBND xã thông báo. Người dân chú ý theo dõi. 48 buổi tiếp dân đã diễn ra."
    assert split_sentences(text) == [
        "UBND xã thông báo.",
        "Người dân chú ý theo dõi.",
        "48 buổi tiếp dân đã diễn ra.",
    ]


def test_split_sentences_splits_on_exclamation_question_and_newlines() -> None:
    text = "Khẩn cấp! Bão đang đến gần? hãy chuẩn bị.\nThôn 1 họp lúc 7h\nThôn 2 họp lúc 8h"
    assert split_sentences(text) == [
        "Khẩn cấp!",
        "Bão đang đến gần?",
        "hãy chuẩn bị.",
        "Thôn 1 họp lúc 7h",
        "Thôn 2 họp lúc 8h",
    ]


def test_split_sentences_keeps_closing_quote_with_sentence() -> None:
    text = 'Ông nói: "Đồng thuận cao." Sau đó hội nghị bế mạc.'
    assert split_sentences(text) == ['Ông nói: "Đồng thuận cao."', "Sau đó hội nghị bế mạc."]


def test_split_paragraphs() -> None:
    text = "Tiêu đề\n\nCâu một. Câu hai.\nCâu ba.\n\n\n  \nCâu bốn!"
    assert split_paragraphs(text) == [["Tiêu đề"], ["Câu một.", "Câu hai.", "Câu ba."], ["Câu bốn!"]]
    assert split_paragraphs("") == []
    assert split_sentences("") == []


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------

_PIECES = [
    *"0123456789",
    *"0123456789",
    *".,/-:;!?%°+()'\"“”…&$#*•",
    *"hkmgđlVWA",
    *"ABCDEGHIKLMNOPQRSTUVXYĐFJWZ",
    *"aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạếộ",
    " ", " ", " ", "\n", "\t", "\x00", "\u200b", "🎉", "\ue000", "\ue001",
    " - ", "– ", "thứ ", "Thứ ", "tháng ", "ngày ", "khóa ", "quý ", "gọi ", "số ", "năm ", "cấp ",
    "UBND", "QĐ", "NĐ-CP", "°C", "km", "m2", "h", "AM", "PM", "TP.", "v.v.", "XIII", "IV", "Covid-19",
    "đồng/", "tháng/", "hotline ", "0912", "+84", "24/7", "1.000", ",5", "/2023",
]
_mixed_text = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)
_any_text = st.one_of(st.text(max_size=200), _mixed_text)

_SPELLABLE = "ABCDEGHIKLMNOPQRSTUVXYĐFJWZ"
_ROMAN_LETTERS = set("IVXLCDM")


def _is_lexicon_or_roman(token: str) -> bool:
    keys = set(BUILTIN_LEXICON) | set(DOCUMENT_SEGMENTS)
    return token in keys or set(token) <= _ROMAN_LETTERS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_any_text)
def test_never_raises_and_never_leaves_a_digit(text: str) -> None:
    out = normalize(text)
    assert isinstance(out, str)
    assert not ASCII_DIGIT.search(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_any_text)
def test_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_any_text)
def test_splitters_never_raise(text: str) -> None:
    sentences = split_sentences(text)
    assert all(s and s == s.strip() for s in sentences)
    paragraphs = split_paragraphs(text)
    assert all(paragraph for paragraph in paragraphs)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_SPELLABLE, min_size=2, max_size=6).filter(lambda t: not _is_lexicon_or_roman(t)))
def test_unknown_abbreviation_spelled_with_letter_names(token: str) -> None:
    spelled = " ".join(LETTER_NAMES[c] for c in token)
    assert normalize(f"Đơn vị {token} đã hoàn thành nhiệm vụ.") == f"Đơn vị {spelled} đã hoàn thành nhiệm vụ."


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**15 - 1))
def test_read_number_is_words_only(n: int) -> None:
    words = read_number(n)
    assert not ASCII_DIGIT.search(words)
    assert words == words.strip() and "  " not in words
    assert normalize(str(n)) != ""


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1000, max_value=10**12))
def test_thousands_separators_do_not_change_the_reading(n: int) -> None:
    dotted = f"{n:,}".replace(",", ".")
    assert normalize(f"có {dotted} người") == f"có {read_number(n)} người"


# ------------------------------------------------------------------------------------------------
# Issue 13: hand-written shortcuts, foreign words, addresses
# ------------------------------------------------------------------------------------------------


def test_glued_syllables_are_split_only_when_every_part_is_vietnamese() -> None:
    assert normalize("YênBái") == "Yên Bái"
    assert normalize("ThànhPhốYênBái") == "Thành Phố Yên Bái"
    for brand in ("MoMo", "iPhone", "VinFast", "McDonald"):
        assert normalize(brand) == brand  # no Vietnamese letter, or a part that is no syllable


def test_a_bracketed_abbreviation_is_dropped_only_when_it_repeats_the_words_before_it() -> None:
    assert normalize("Khu vui chơi (KVC) mở cửa.") == "Khu vui chơi mở cửa."  # by its initials
    assert normalize("Hội đồng (UBND) họp.") == "Hội đồng, ủy ban nhân dân, họp."  # says something new


def test_commune_lexicon_extends_the_phrase_abbreviations() -> None:
    assert normalize("K/g: bà con thôn KVC", {"KVC": "khu vui chơi"}) == "kính gửi: bà con thôn khu vui chơi"


def test_g_is_giờ_only_in_a_time() -> None:
    assert normalize("họp lúc 7g30") == "họp lúc bảy giờ ba mươi phút"
    assert normalize("họp lúc 8g") == "họp lúc tám giờ"
    assert normalize("cân 5g muối") == "cân năm gam muối"


def test_addresses_are_read_part_by_part() -> None:
    assert normalize("xa.aulau@gmail.com") == "xa chấm au lau a còng gờ meo chấm com"
    assert normalize("https://dichvucong.gov.vn/tra-cuu") == (
        "dich vu cong chấm gốp chấm vê en gạch chéo tra gạch ngang cuu"
    )


def test_read_aloud_marks_the_new_expansions() -> None:
    pieces = [(e.written, e.spoken, e.source) for e in read_aloud("V/v họp, giá 3.000 đồng/trang.").expansions]
    assert ("V/v", "về việc", "abbreviation") in pieces
    assert ("đồng/trang", "đồng một trang", "rule") in pieces
