"""Turn written Vietnamese announcements into what a northern broadcaster says.

Commune loudspeakers are listened to by farmers in a field, not read on a
screen: a TTS engine fed ``55/QĐ-UBND`` or ``0912.345.678`` mumbles or reads it
as a decimal, and villagers stop trusting the speaker.  This module rewrites the
text into plain spoken words first, with our own rules and number reader, so the
reading does not change when a TTS vendor changes theirs.

Reading conventions (chosen once; the corpus in ``tests/audio`` pins them):

* Numbers: standard northern cardinal reading with ``nghìn``, ``linh`` (105 →
  "một trăm linh năm"), ``mốt``/``tư``/``lăm`` after ``mươi`` and ``lăm`` after
  ``mười``; an empty hundreds place inside a number is read ``không trăm``
  (2023 → "hai nghìn không trăm hai mươi ba").  ``.`` groups thousands, ``,``
  marks decimals ("phẩy"); a lone ``.`` between digits that is not a thousands
  separator is read "chấm" (``mục 2.1``).  Numbers of more than 15 digits, and
  codes of four or more digits starting with ``0``, are read digit by digit.
* Dates: ``25/5/2023``, ``25-5-2023``, ``25.5.2023`` → "ngày hai mươi lăm tháng
  năm năm hai nghìn không trăm hai mươi ba"; days 1–10 take "mùng" ("ngày mùng
  năm tháng sáu"); month 1 is "tháng một" and month 4 "tháng tư" (``tháng
  giêng`` is lunar only).  "ngày"/"tháng" already in the text is not doubled.
  A bare ``d/m`` is a date when plausible; it is a fraction after a quantity
  word or before "số"/"diện tích" ("khoảng 1/2", "1/2 số hộ" → "một phần
  hai"), or when it is a small fraction with no date word before it ("3/4" →
  "ba phần tư"); ``x/y`` before a counting noun or with ``x ≥ y`` is a tally
  ("19/19 tiêu chí" → "mười chín trên mười chín").
* Ordinals: only "thứ N" takes "nhất"/"tư" ("thứ 1" → "thứ nhất", "Thứ 4" →
  "Thứ tư"); "tháng 4" is "tháng tư", "hạng 1" stays "hạng một".
* Times: "bảy giờ bốn mươi lăm phút" for ``7:45``, ``7h45``, ``7h45'``; zero
  minutes are dropped; AM → "sáng", PM → "trưa"/"chiều"/"tối" by the hour.
* Ranges: a dash between two numeric expressions is read "đến" ("năm đến bảy
  ngày"); ``cấp 8-9`` repeats the noun: "cấp tám đến cấp chín".
* Units after a number are read with Vietnamese letter sounds: ``°C`` → "độ
  xê", ``km`` → "ki lô mét", ``m²`` → "mét vuông"; ``/`` after a price or a
  quantity before a counting noun reads "một" (``50.000 đồng/người`` → "năm mươi
  nghìn đồng một người"), inside a compound unit "trên" (``km/h``).
* Phone numbers are read digit by digit, groups separated by a comma so the TTS
  pauses where a listener writes: the source grouping when it has one, else
  4-3-3 (10 digits), 4-4-3 (11 digits), ``+84`` then 3-3-3.  Emergency numbers
  111–115 are read digit by digit next to a calling or rescue word.
* Document codes: the number is read as a cardinal (leading zeros digit by
  digit), a ``/`` after a numeric part is read "trên", every other separator is
  silent, and letter segments are expanded with the document table, so
  ``55/QĐ-UBND`` → "năm mươi lăm trên quyết định ủy ban nhân dân",
  ``100/2019/NĐ-CP`` → "một trăm trên hai nghìn không trăm mười chín trên nghị
  định chính phủ", ``05-CT/TW`` → "không năm chỉ thị trung ương".
* Roman numerals become numbers only after a word that takes them (``khóa
  XIII``, ``quý IV``, ``thế kỷ XXI``, ``lần thứ XX``).
* Unknown ALL-CAPS abbreviations of 2–6 letters are spelled with Vietnamese
  letter names ("KNF" → "ca en nờ ép"), unless they sit next to an all-caps word
  with diacritics, i.e. inside a headline written in capitals.
* Quotes, bullets and decorative symbols are silent; ``( ) |`` become commas
  so the TTS still pauses; a spaced dash is a comma before a capital
  (apposition: "Ông A - Bí thư") and silent before a lower-case word (compound:
  "kinh tế - xã hội"); ``, . ; : ! ?`` are kept.  A line that does not end in
  punctuation gets a full stop, so a title is not run into its body.

The output never contains an ASCII digit, and normalizing it again changes
nothing.  Everything is precompiled at import; the only state is an
``lru_cache`` of compiled commune lexicons, which is thread-safe, so the module
can be called from several threads.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from types import MappingProxyType

from audio.lexicon import ABBREVIATIONS, DOCUMENT_SEGMENTS, LETTER_NAMES

__all__ = [
    "BUILTIN_LEXICON",
    "Expansion",
    "Reading",
    "normalize",
    "read_aloud",
    "read_number",
    "split_paragraphs",
    "split_sentences",
]

BUILTIN_LEXICON: Mapping[str, str] = ABBREVIATIONS

# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_MAX_CARDINAL_DIGITS = 15
_BILLION = 10**9


def _below_hundred(n: int) -> str:
    tens, units = divmod(n, 10)
    if tens == 0:
        return _DIGITS[units]
    head = "mười" if tens == 1 else f"{_DIGITS[tens]} mươi"
    if units == 0:
        return head
    if units == 5:
        tail = "lăm"
    elif units == 1 and tens > 1:
        tail = "mốt"
    elif units == 4 and tens > 1:
        tail = "tư"
    else:
        tail = _DIGITS[units]
    return f"{head} {tail}"


def _below_thousand(n: int, inner: bool) -> str:
    """``inner``: the group follows a bigger one, so an empty hundreds place is spoken."""
    hundreds, rest = divmod(n, 100)
    if hundreds == 0 and not inner:
        return _below_hundred(rest)
    words = f"{_DIGITS[hundreds]} trăm"
    if rest == 0:
        return words
    if rest < 10:
        return f"{words} linh {_DIGITS[rest]}"
    return f"{words} {_below_hundred(rest)}"


def _cardinal(n: int, inner: bool = False) -> str:
    if n >= _BILLION:
        high, low = divmod(n, _BILLION)
        words = f"{_cardinal(high, inner)} tỷ"
        return f"{words} {_cardinal(low, True)}" if low else words
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    parts: list[str] = []
    for value, name in ((millions, "triệu"), (thousands, "nghìn"), (units, "")):
        if value == 0:
            continue
        words = _below_thousand(value, inner or bool(parts))
        parts.append(f"{words} {name}" if name else words)
    return " ".join(parts) if parts else "không"


def _read_digits(digits: str) -> str:
    return " ".join(_DIGITS[ord(c) - 48] for c in digits if "0" <= c <= "9")


def read_number(n: int) -> str:
    """Read an integer the way a northern broadcaster does.

    Beyond 15 digits nobody says "nghìn tỷ tỷ"; such numbers are identifiers,
    so they are read digit by digit.
    """
    if n < 0:
        return f"âm {read_number(-n)}"
    if n >= 10**_MAX_CARDINAL_DIGITS:
        return _read_digits(str(n))
    return _cardinal(n)


def _read_int_str(digits: str) -> str:
    """Read a digit string found in text; long or zero-led codes are spelled out."""
    if len(digits) > _MAX_CARDINAL_DIGITS or (len(digits) >= 4 and digits[0] == "0"):
        return _read_digits(digits)
    return _cardinal(int(digits))


def _read_fraction_digits(frac: str) -> str:
    stripped = frac.lstrip("0")
    words = ["không"] * (len(frac) - len(stripped))
    if stripped:
        words.append(_cardinal(int(stripped)) if len(stripped) <= 3 else _read_digits(stripped))
    return " ".join(words)


def _read_numeral(token: str) -> str:
    """Read one numeral as written in Vietnamese text (``1.500.000``, ``2,5``, ``2.1``)."""
    if "," in token:
        if token.count(",") == 1 and ("." not in token or _THOUSANDS_DECIMAL.fullmatch(token)):
            whole, frac = token.split(",")
            return f"{_read_int_str(whole.replace('.', ''))} phẩy {_read_fraction_digits(frac)}"
        return _read_int_str(token.replace(",", ""))  # 1,500,000 written the English way
    if "." in token:
        if _THOUSANDS_DOT.fullmatch(token):
            return _read_int_str(token.replace(".", ""))
        return " chấm ".join(_read_int_str(part) for part in token.split("."))
    return _read_int_str(token)


_THOUSANDS_DOT = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+")
_THOUSANDS_DECIMAL = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+,[0-9]+")

# ---------------------------------------------------------------------------------------------
# Small helpers shared by the rules
# ---------------------------------------------------------------------------------------------

# Private-use sentinels wrap every numeric expression the rules produce, so that a
# later pass can recognise "expression - expression" as a range and attach units.
_OPEN = "\ue000"
_CLOSE = "\ue001"


def _wrap(words: str) -> str:
    return f"{_OPEN}{words}{_CLOSE}"


def _month_name(month: int) -> str:
    return "tư" if month == 4 else _cardinal(month)


def _day_words(day: int) -> str:
    words = _cardinal(day)
    return f"mùng {words}" if day <= 10 else words


def _ordinal(n: int) -> str:
    if n == 1:
        return "nhất"
    if n == 4:
        return "tư"
    return read_number(n)


_LETTER = r"[^\W0-9_]"
_NOT_LETTER_BEFORE = r"(?<![^\W0-9_])"
_NOT_LETTER_AFTER = r"(?![^\W0-9_])"
_NOT_WORD_BEFORE = r"(?<![^\W_])"
_NOT_WORD_AFTER = r"(?![^\W_])"
# A numeral ends where no digit continues it through "." or ",".
_NUM_END = r"(?![0-9]|[.,][0-9])"

# ---------------------------------------------------------------------------------------------
# Pre-processing: Unicode, control characters, lines, bullets, quotes
# ---------------------------------------------------------------------------------------------

_NEWLINES = re.compile(r"\r\n?|[\v\f\x1c-\x1e\x85\u2028\u2029]")


def _preprocess_table() -> dict[int, str | None]:
    """One ``str.translate`` pass for line breaks, control and invisible characters, dashes."""
    table: dict[int, str | None] = {}
    controls = [*range(0x00, 0x09), *range(0x0E, 0x1C), 0x1F, *range(0x7F, 0x85), *range(0x86, 0xA0), 0x09]
    table.update(dict.fromkeys(controls, " "))
    table.update(dict.fromkeys([0x0D, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029], "\n"))
    invisible = [0xAD, 0x34F, 0x61C, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F)]
    table.update(dict.fromkeys([*invisible, *range(0x2060, 0x2065), *range(0x2066, 0x206A), 0xFEFF], None))
    table.update(dict.fromkeys([*range(0x2010, 0x2016), 0x2212, 0x2E3A, 0x2E3B, 0xFE58, 0xFE63, 0xFF0D], "-"))
    table.update(dict.fromkeys([ord(_OPEN), ord(_CLOSE)], " "))
    table[0x2044] = table[0x2215] = "/"
    return table


_PREPROCESS_TABLE = _preprocess_table()
_BULLET = re.compile(
    r"^[ ]*(?:(?:[-+*>](?=\s|$))|[•·▪▫►▶▸▹➢➣➤✓✔✗✘❖◆◇♦●○◦■□⁃‣∙])[ ]*",
)
# "Ông Trần Văn A - Bí thư", "Đảng ủy - HĐND - UBND": a pause, decided before abbreviations are
# expanded into lower case.  "Thứ 2 - Thứ 7" and "Thứ 2 - CN" stay ranges.
_APPOSITION_DASH_RE = re.compile(
    r"(?<=\S)[ ]+-+[ ]+(?=[^\W0-9_a-zđà-ỹ])(?!(?:[Tt]hứ|THỨ)\s*[0-9]|CN\b|Chủ nhật|Chủ Nhật)"
)
_LIST_NUMBER = re.compile(r"^([0-9]{1,2})[.)]\s+(?=\S)")
_QUOTES = re.compile(r"[\"“”„‟«»‹›「」『』`´]|(?<![0-9])['‘’]|['‘’](?![^\W0-9_]|$|\s)")
_QUOTE_CHARS = frozenset("\"“”„‟«»‹›「」『』`´'‘’")
_LINE_ENDS_SPOKEN = re.compile(r"[.!?:;,…]\s*$")


def _list_item(line: str) -> str:
    """A line without its bullets (silent), its list number read as a number and a pause."""
    line = line.strip(" ")
    while True:
        stripped = _BULLET.sub("", line, count=1)
        if stripped == line:
            break
        line = stripped
    return _LIST_NUMBER.sub(r"\1, ", line, count=1)


def _join_lines(text: str) -> str:
    """Lines become sentences: a title line without a full stop still needs a pause."""
    lines: list[str] = []
    for raw in text.split("\n"):
        line = _list_item(raw)
        if line.strip():
            lines.append(line)
    out: list[str] = []
    for i, line in enumerate(lines):
        core = _QUOTES.sub("", line).rstrip(" )]")
        if i < len(lines) - 1 and core and not _LINE_ENDS_SPOKEN.search(core):
            line = f"{line}."
        out.append(line)
    return " ".join(out)


def _preprocess(text: str) -> str:
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = text.translate(_PREPROCESS_TABLE)
    if " -" in text:
        text = _APPOSITION_DASH_RE.sub(", ", text)
    return _join_lines(text) if "\n" in text else _list_item(text)


# ---------------------------------------------------------------------------------------------
# Phone numbers and hotlines
# ---------------------------------------------------------------------------------------------


def _chunks(digits: str) -> list[str]:
    n = len(digits)
    if n <= 4:
        return [digits]
    sizes = {10: (4, 3, 3), 11: (4, 4, 3), 9: (3, 3, 3), 8: (4, 4), 7: (3, 4), 6: (3, 3)}.get(n)
    if sizes is None:
        return [digits[i : i + 3] for i in range(0, n, 3)]
    out, pos = [], 0
    for size in sizes:
        out.append(digits[pos : pos + size])
        pos += size
    return out


_PHONE_SPLIT = re.compile(r"[\s.\-()]+")


def _read_phone(raw: str) -> str:
    international = raw.lstrip("(").startswith("+") or raw.startswith("(84") or raw.startswith("84")
    groups = [g for g in _PHONE_SPLIT.split(raw.replace("+", " ")) if g]
    if len(groups) == 1:
        digits = groups[0]
        groups = ["84", *_chunks(digits[2:])] if international and digits.startswith("84") else _chunks(digits)
    else:  # "(0216) 3852123": the area code, then the local number in the usual groups
        groups = [chunk for g in groups for chunk in (_chunks(g) if len(g) > 4 else [g])]
    words = ", ".join(_read_digits(g) for g in groups if g)
    return f"cộng {words}" if raw.lstrip("(").startswith("+") else words


_PHONE_SEP = r"[ .\-]"
_PHONE_RE = re.compile(
    rf"(?<![\w.,+])(?:"
    rf"(?:\(\+84\)|\+84){_PHONE_SEP}?(?:[0-9]{{9,10}}|[0-9]{{2,3}}(?P<s1>{_PHONE_SEP})[0-9]{{3,4}}(?P=s1)[0-9]{{3,4}})"
    rf"|0[0-9]{{9,10}}"
    rf"|0[0-9]{{2,3}}(?P<s2>{_PHONE_SEP})[0-9]{{3,4}}(?P=s2)[0-9]{{3,4}}"
    rf"|1[89]00(?P<s3>{_PHONE_SEP}?)[0-9]{{3,4}}(?:(?P=s3)[0-9]{{2,4}})?"
    rf"|\(0[0-9]{{2,3}}\)[ ]?(?:[0-9]{{7,8}}|[0-9]{{3,4}}(?P<s4>[ .\-])[0-9]{{3,4}}(?:(?P=s4)[0-9]{{2,4}})?)"
    rf")(?![\w])(?![.,][0-9])"
)


def _phone_sub(m: re.Match[str]) -> str:
    raw = m.group(0)
    digits = sum(c.isdigit() for c in raw)
    if raw[0] in "0(" and digits not in (10, 11):
        return raw
    return f" {_read_phone(raw)} "


_CALL_CUE = (
    r"(?i:hotline|đường dây nóng|điện thoại|tổng đài|gọi(?:\s+điện|\s+ngay)?|liên hệ|sđt|đt|zalo|fax|số máy)"
)
_CUED_NUMBER_RE = re.compile(
    rf"{_NOT_WORD_BEFORE}(?P<cue>{_CALL_CUE}){_NOT_WORD_AFTER}"
    r"(?P<mid>\s*[(:]?\s*(?:(?i:đến|tới|vào|theo)\s+)?(?:(?i:số(?:\s+điện\s+thoại)?|sđt)\s*:?\s*)?)"
    r"(?P<num>[0-9]{3,}(?:[ .\-][0-9]{2,4})*)(?![\w%°:/])(?![.,][0-9])"
)


def _cued_number_sub(m: re.Match[str]) -> str:
    num = m.group("num")
    digits = "".join(c for c in num if c.isdigit())
    if len(digits) == 3 and digits not in _EMERGENCY:
        return m.group(0)
    if len(digits) > 15:
        return m.group(0)
    return f"{m.group('cue')}{m.group('mid')} {_read_phone(num) if len(digits) > 4 else _read_digits(digits)} "


_EMERGENCY = frozenset({"111", "112", "113", "114", "115"})
_SHORT_NUMBER_RE = re.compile(r"(?<![\w.,/\-])(?P<num>1[0-9]{2,4})(?![\w%°/:])(?![.,][0-9])(?P<after>\s*\S*)")
# Words that make any short number nearby a number to dial.
_HOTLINE_CUE = re.compile(r"(?i:gọi|hotline|tổng đài|đường dây nóng|điện thoại|liên hệ|số máy|nhắn tin)")
# Rescue services: their well-known number is dialled, but "công an xã có 113 hộ" is a count.
_EMERGENCY_CUE = re.compile(
    r"(?i:cảnh sát|công an|cứu hỏa|cứu hoả|chữa cháy|pccc|cấp cứu|cứu thương|cứu nạn|khẩn cấp|báo cháy|y tế)"
)
_EMERGENCY_FOLLOWERS = frozenset({"để", "hoặc", "ngay", "khi", "nếu", "và", "miễn", "được", "trong", "hay"})


def _short_number_sub(m: re.Match[str]) -> str:
    start = m.start()
    num = m.group("num")
    window = m.string[max(0, start - 50) : start]
    after = m.group("after")
    word = after.strip().rstrip(",.;:!?)")
    counted = bool(word) and word[0].isalpha() and word[0].islower() and word not in _EMERGENCY_FOLLOWERS
    hotline = _HOTLINE_CUE.search(window) is not None
    if num in _EMERGENCY:
        dial = hotline or (not counted and _EMERGENCY_CUE.search(window) is not None)
    else:
        dial = hotline and not counted
    if not dial:
        return m.group(0)
    return f" {_read_digits(num)} {after}"


# ---------------------------------------------------------------------------------------------
# Document codes: 55/QĐ-UBND, 100/2019/NĐ-CP, 05-CT/TW
# ---------------------------------------------------------------------------------------------

_DOC_SEGMENT = r"(?:[A-ZĐ][A-Za-zĐđ&]*[A-ZĐa-zđ]|T\.Ư)"
_DOC_RE = re.compile(
    rf"(?<![\w/.,\-])(?P<num>[0-9]{{1,6}})(?P<year>/[0-9]{{4}})?(?P<codes>(?:[/\-]{_DOC_SEGMENT})+)(?![\w&])"
)
_DOC_PARTS = re.compile(rf"([/\-])({_DOC_SEGMENT})")


def _spell(token: str) -> str:
    return " ".join(LETTER_NAMES.get(c, c) for c in token)


def _read_segment(seg: str, lexicon: Mapping[str, str]) -> str:
    reading = DOCUMENT_SEGMENTS.get(seg) or lexicon.get(seg)
    if reading is not None:
        return reading
    if "&" in seg:
        return " và ".join(_read_segment(part, lexicon) for part in seg.split("&") if part)
    if seg.isupper() and seg.isalpha() and len(seg) <= 8:
        return _spell(seg)
    return seg


def _doc_reading(m: re.Match[str], lexicon: Mapping[str, str]) -> str:
    num = m.group("num")
    words = [_read_digits(num) if len(num) > 1 and num[0] == "0" else _read_int_str(num)]
    year = m.group("year")
    if year:
        words += ["trên", _cardinal(int(year[1:]))]
    for i, (sep, seg) in enumerate(_DOC_PARTS.findall(m.group("codes"))):
        if i == 0 and sep == "/":
            words.append("trên")
        words.append(_read_segment(seg, lexicon))
    return f" {' '.join(words)} "


# ---------------------------------------------------------------------------------------------
# Abbreviation lexicon
# ---------------------------------------------------------------------------------------------

# Titles and place prefixes are written with a dot ("TP. Yên Bái", "ThS. Lê"): the dot is
# part of the abbreviation, not a full stop, and must not make the TTS stop.
_DOT_ABBREVIATIONS = frozenset(
    {"TP", "Tp", "TX", "TT", "ThS", "Th.S", "Ths", "TS", "PGS", "GS", "PGS.TS", "GS.TS", "BS", "KS", "Đ/c", "đ/c"}
)


def _trie_pattern(words: Iterable[str]) -> str:
    """An alternation shaped as a trie: hundreds of keys cost one pass, not one pass each."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        alternatives = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alternatives:
            return ""
        body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
        return f"(?:{body})?" if "" in node else body

    return f"(?:{build(trie)})"


def _compile_lexicon(keys: Iterable[str]) -> re.Pattern[str]:
    keys = [k for k in keys if k.strip()]
    if not keys:
        return re.compile(r"(?!)")
    return re.compile(
        rf"{_NOT_LETTER_BEFORE}(?P<key>{_trie_pattern(keys)}){_NOT_LETTER_AFTER}(?P<dot>\.(?=\s*{_LETTER}))?"
    )


_BUILTIN_LEXICON_RE = _compile_lexicon(ABBREVIATIONS)


@lru_cache(maxsize=32)
def _custom_lexicon(items: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str], Mapping[str, str]]:
    merged = dict(ABBREVIATIONS)
    merged.update(items)
    return _compile_lexicon(merged), MappingProxyType(merged)


def _lexicon_tables(lexicon: Mapping[str, str] | None) -> tuple[re.Pattern[str], Mapping[str, str]]:
    if not lexicon:
        return _BUILTIN_LEXICON_RE, ABBREVIATIONS
    items = tuple(sorted((str(k), str(v)) for k, v in lexicon.items() if str(k).strip()))
    return _custom_lexicon(items)


# ---------------------------------------------------------------------------------------------
# Times
# ---------------------------------------------------------------------------------------------

_AMPM = r"(?:\s?(?P<ap>[AaPp][Mm]|[AaPp]\.[Mm]\.)(?![^\W0-9_]))?"
_TIME_RE = re.compile(
    r"(?<![\w.,:])(?:"
    r"(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2}))?(?![0-9:])"
    r"|(?P<h2>[0-9]{1,2})\s?h(?:\s?(?P<m2>[0-9]{2})(?:\s?(?:['’]|ph|p)(?![^\W0-9_]))?)?(?![^\W0-9_]|[0-9])"
    rf"){_AMPM}"
)


def _time_words(hour: int, minute: int, second: int, ampm: str | None) -> str:
    words = f"{_cardinal(hour)} giờ"
    if minute:
        words += f" {_cardinal(minute)} phút"
    if second:
        words += f" {_cardinal(second)} giây"
    if ampm:
        if ampm[0] in "Aa":
            words += " sáng"
        elif hour == 12:
            words += " trưa"
        elif hour >= 6 and hour < 12:
            words += " tối"
        else:
            words += " chiều"
    return words


def _time_sub(m: re.Match[str]) -> str:
    if m.group("h") is not None:
        hour, minute = int(m.group("h")), int(m.group("m"))
        second = int(m.group("s")) if m.group("s") else 0
        if hour > 24 or minute > 59 or second > 59:
            return m.group(0)
    else:
        hour = int(m.group("h2"))
        minute = int(m.group("m2")) if m.group("m2") else 0
        second = 0
        if minute > 59 or (m.group("m2") and hour > 24):
            return m.group(0)
    return _wrap(_time_words(hour, minute, second, m.group("ap")))


# "7g30", "14g chiều": g for giờ, as notices write it; a bare "5g" stays grams unless a part of
# the day or a time word follows.
_TIME_G_RE = re.compile(r"(?<![\w.,:])(?P<h>[0-9]{1,2})g(?P<m>[0-9]{2})?(?![^\W0-9_]|[0-9])")
_TIME_G_AFTER = re.compile(r"\s*(?:-\s*[0-9]{1,2}g|(?i:sáng|trưa|chiều|tối|đêm|ngày|hôm|hằng|đến|tới)(?![^\W0-9_]))")
_TIME_G_BEFORE = re.compile(r"(?:[0-9]g\s*-|(?<![^\W0-9_])(?i:lúc|đến|tới))\s*$")


def _time_g_sub(m: re.Match[str]) -> str:
    hour, minute = int(m.group("h")), int(m.group("m") or 0)
    if hour > 24 or minute > 59:
        return m.group(0)
    if m.group("m") is None:
        before = m.string[max(0, m.start() - 8) : m.start()]
        if not (_TIME_G_AFTER.match(m.string, m.end()) or _TIME_G_BEFORE.search(before)):
            return m.group(0)
    return _wrap(_time_words(hour, minute, 0, None))


_MINUTES_RE = re.compile(r"(?<![\w.,])([0-9]{1,3})\s?['’](?![^\W0-9_])")

# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------

_DAY_PREFIX = r"(?:(?P<pre>[Nn]gày|NGÀY)\s+)?"
_MONTH_PREFIX = r"(?:(?P<pre>[Tt]háng|THÁNG)\s+)?"
_DATE_END = r"(?![\w/]|[.,\-][0-9])"

_DATE_DMY_RE = re.compile(
    rf"{_NOT_WORD_BEFORE}{_DAY_PREFIX}(?<![\w/.,\-])(?P<d>[0-9]{{1,2}})(?P<sep>[/.\-])(?P<mo>[0-9]{{1,2}})(?P=sep)"
    rf"(?P<y>[0-9]{{4}}|[0-9]{{2}}){_DATE_END}"
)
_DATE_RANGE_RE = re.compile(
    rf"{_NOT_WORD_BEFORE}{_DAY_PREFIX}(?<![\w/.,\-])(?P<d1>[0-9]{{1,2}})\s*-\s*(?P<d2>[0-9]{{1,2}})/(?P<mo>[0-9]{{1,2}})"
    rf"(?:/(?P<y>[0-9]{{4}}))?{_DATE_END}"
)
_DATE_PAIR_RE = re.compile(
    rf"{_NOT_WORD_BEFORE}{_DAY_PREFIX}(?<![\w/.,\-])(?P<d1>[0-9]{{1,2}})/(?P<m1>[0-9]{{1,2}})(?:/(?P<y1>[0-9]{{4}}))?"
    r"\s*(?:-|–|đến|tới)\s*(?:(?i:ngày)\s+)?"
    rf"(?P<d2>[0-9]{{1,2}})/(?P<m2>[0-9]{{1,2}})(?:/(?P<y2>[0-9]{{4}}))?{_DATE_END}"
)
_DATE_MY_RE = re.compile(
    rf"{_NOT_WORD_BEFORE}{_MONTH_PREFIX}(?<![\w/.,\-])(?P<mo>[0-9]{{1,2}})[/.\-](?P<y>[0-9]{{4}}){_DATE_END}"
)
_DATE_DM_RE = re.compile(
    rf"{_NOT_WORD_BEFORE}{_DAY_PREFIX}(?<![\w/.,\-])(?P<d>[0-9]{{1,2}})(?P<sep>[/.\-])(?P<mo>[0-9]{{1,2}})"
    rf"(?![\w/]|[.,\-:][0-9]|\s*[-%°])"
)
_FRACTION_BEFORE = frozenset(
    {"khoảng", "chiếm", "gần", "hơn", "còn", "bằng", "giảm", "tăng", "mất", "đạt", "quá", "trên", "dưới", "tỷ", "lệ"}
)
_FRACTION_AFTER = re.compile(r"\s*(?:số|dân số|diện tích|tổng|lượng|khối lượng|quãng|chiều|giá|thời gian)\b")
# Words that may follow "25-5" and still leave it a date ("từ 25-5 đến 30-5").
_DATE_FOLLOWERS = frozenset(
    {
        "đến", "tới", "và", "hoặc", "hằng", "hàng", "này", "vừa", "qua", "sắp", "tại", "ở", "của", "với", "là",
        "có", "sẽ", "đã", "được", "cho", "lúc", "vào", "từ", "năm", "nay", "trước", "sau", "thì", "mới",
    }
)
# Words after which "3/6" can only be a date.
_DATE_CUES = frozenset(
    {
        "từ", "đến", "tới", "vào", "hôm", "sáng", "chiều", "tối", "trưa", "đêm", "trước", "sau", "hạn", "lúc",
        "và", "hết", "nay", "mai", "qua", "ngày", "hằng", "kể", "đầu", "cuối", "giữa", "dịp", "nhật", "hai",
        "ba", "tư", "năm", "sáu", "bảy",
    }
)
_COUNT_NOUNS = frozenset(
    {
        "thôn", "xã", "hộ", "tiêu", "người", "trường", "đơn", "chỉ", "bản", "lớp", "phường", "huyện", "tỉnh",
        "đội", "chi", "nhóm", "em", "cháu", "câu", "điểm", "ý", "phiếu", "hồ", "xe", "nhà", "tuyến", "mô",
        "hạng", "cán", "đảng",
    }
)
_PREV_WORD = re.compile(rf"({_LETTER}+)\W*$")
_NEXT_WORD = re.compile(rf"\s*({_LETTER}+)")


def _date_words(day: int | None, month: int, year: str | None, pre: str | None, month_pre: bool = False) -> str:
    parts: list[str] = []
    if day is not None:
        parts.append(f"{pre or 'ngày'} {_day_words(day)} tháng {_month_name(month)}")
    else:
        parts.append(f"{pre or 'tháng'} {_month_name(month)}")
    if year is not None:
        parts.append(f"năm {_cardinal(int(year))}")
    return _wrap(" ".join(parts))


def _dmy_sub(m: re.Match[str]) -> str:
    day, month = int(m.group("d")), int(m.group("mo"))
    year = m.group("y")
    if not (1 <= day <= 31 and 1 <= month <= 12) or (len(year) == 2 and m.group("sep") != "/"):
        return m.group(0)
    return _date_words(day, month, year, m.group("pre"))


def _date_range_sub(m: re.Match[str]) -> str:
    d1, d2, month = int(m.group("d1")), int(m.group("d2")), int(m.group("mo"))
    if not (1 <= d1 <= 31 and 1 <= d2 <= 31 and 1 <= month <= 12 and d1 < d2):
        return m.group(0)
    pre = m.group("pre") or "ngày"
    words = f"{pre} {_day_words(d1)} đến ngày {_day_words(d2)} tháng {_month_name(month)}"
    if m.group("y"):
        words += f" năm {_cardinal(int(m.group('y')))}"
    return _wrap(words)


def _date_pair_sub(m: re.Match[str]) -> str:
    """"20/8 - 25/8/2023": two dates, the second one's year said once at the end as written."""
    d1, m1, d2, m2 = (int(m.group(g)) for g in ("d1", "m1", "d2", "m2"))
    if not (1 <= d1 <= 31 and 1 <= d2 <= 31 and 1 <= m1 <= 12 and 1 <= m2 <= 12):
        return m.group(0)
    prev = _PREV_WORD.search(m.string, max(0, m.start() - 30), m.start())
    if (prev and prev.group(1).lower() in _FRACTION_BEFORE) or _FRACTION_AFTER.match(m.string, m.end()):
        return m.group(0)  # "khoảng 1/2 - 2/3 số hộ": fractions
    first = _date_words(d1, m1, m.group("y1"), m.group("pre"))
    return f"{first} đến {_date_words(d2, m2, m.group('y2'), None)}"


def _my_sub(m: re.Match[str]) -> str:
    month = int(m.group("mo"))
    if not 1 <= month <= 12:
        return m.group(0)
    return _date_words(None, month, m.group("y"), m.group("pre"))


def _dm_sub(m: re.Match[str]) -> str:
    day, month, sep = int(m.group("d")), int(m.group("mo")), m.group("sep")
    pre = m.group("pre")
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m.group(0)
    if sep == "." and not pre:
        return m.group(0)
    text = m.string
    if not pre:
        prev = _PREV_WORD.search(text, max(0, m.start() - 30), m.start())
        prev_word = prev.group(1).lower() if prev else ""
        nxt = _NEXT_WORD.match(text, m.end())
        next_word = nxt.group(1) if nxt else ""
        if sep == "/":
            if prev_word not in _DATE_CUES and (
                prev_word in _FRACTION_BEFORE
                or _FRACTION_AFTER.match(text, m.end())
                or next_word in _COUNT_NOUNS  # "10/11 thôn": ten of eleven hamlets
                or day < month <= 4  # a bare "1/2", "3/4" is a half, three quarters
            ):
                return m.group(0)
        elif next_word and next_word[0].islower() and next_word not in _DATE_FOLLOWERS:
            return m.group(0)  # "5-7 ngày" is a range of days
    return _date_words(day, month, None, pre)


# ---------------------------------------------------------------------------------------------
# Ordinals and calendar words written with a numeral
# ---------------------------------------------------------------------------------------------

_THU_RE = re.compile(rf"{_NOT_LETTER_BEFORE}(?P<w>[Tt]hứ|THỨ)\s+(?P<n>[0-9]{{1,3}}){_NUM_END}(?![^\W0-9_])")
_THANG_RE = re.compile(
    rf"{_NOT_LETTER_BEFORE}(?<![0-9]\s)(?P<w>[Tt]háng|THÁNG)\s+(?P<n>[0-9]{{1,2}}){_NUM_END}(?![^\W0-9_]|/)"
)
_NGAY_THANG_RE = re.compile(
    rf"{_NOT_LETTER_BEFORE}(?P<w>[Nn]gày|NGÀY)\s+(?P<n>[0-9]{{1,2}}){_NUM_END}(?=\s*(?:,|và)?\s*(?:[Tt]háng|THÁNG)\s)"
)
_CAP_RANGE_RE = re.compile(
    rf"{_NOT_LETTER_BEFORE}(?P<w>[Cc]ấp|CẤP|[Tt]hứ|THỨ)\s+(?P<a>[0-9]{{1,2}})\s*-\s*(?P<b>[0-9]{{1,2}}){_NUM_END}"
)


def _thu_sub(m: re.Match[str]) -> str:
    return _wrap(f"{m.group('w')} {_ordinal(int(m.group('n')))}")


def _thang_sub(m: re.Match[str]) -> str:
    n = int(m.group("n"))
    if not 1 <= n <= 12:
        return m.group(0)
    return _wrap(f"{m.group('w')} {_month_name(n)}")


def _ngay_thang_sub(m: re.Match[str]) -> str:
    n = int(m.group("n"))
    if not 1 <= n <= 31:
        return m.group(0)
    return f"{m.group('w')} {_day_words(n)}"


_QUARTER_RE = re.compile(
    rf"{_NOT_LETTER_BEFORE}(?P<w>[Qq]uý|QUÝ)\s+(?P<q>IV|I{{1,3}}|[1-4])\s*[/\-]\s*(?P<y>[0-9]{{4}}){_NUM_END}"
)
_QUARTERS = {"I": 1, "II": 2, "III": 3, "IV": 4}


def _quarter_sub(m: re.Match[str]) -> str:
    q = m.group("q")
    quarter = _QUARTERS.get(q) or int(q)
    return _wrap(f"{m.group('w')} {_cardinal(quarter)} năm {_cardinal(int(m.group('y')))}")


# "trực 24/24", "phục vụ 24/7": round the clock, never a date or a fraction.
_ROUND_THE_CLOCK_RE = re.compile(r"(?<![\w/.,])24/(?P<b>24|7)(?P<h>\s?h)?(?![\w/]|[.,][0-9])")


def _round_the_clock_sub(m: re.Match[str]) -> str:
    hours = " giờ" if m.group("h") else ""
    return _wrap(f"{_cardinal(24)} trên {_cardinal(int(m.group('b')))}{hours}")


# "mưa 100 mm/3 giờ": an amount within a duration.
_PER_DURATION_RE = re.compile(r"(?<=[^\W0-9_])\s*/\s*(?=[0-9]{1,2}\s?(?:h|giờ|tiếng|ngày)(?![^\W0-9_]))")


def _cap_range_sub(m: re.Match[str]) -> str:
    """"cấp 8-9", "thứ 2-6": the noun is repeated, as a forecaster or a clerk says it."""
    w = m.group("w")
    read = _ordinal if w.lower() == "thứ" else _cardinal
    return _wrap(f"{w} {read(int(m.group('a')))} đến {w.lower()} {read(int(m.group('b')))}")


# ---------------------------------------------------------------------------------------------
# Numbers, fractions, units
# ---------------------------------------------------------------------------------------------

_NUMERAL = r"[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?|[0-9]{1,3}(?:,[0-9]{3}){2,}|[0-9]+,[0-9]+|[0-9]+(?:\.[0-9]+)+|[0-9]+"
_NUMBER_RE = re.compile(
    rf"(?P<neg>(?<![\w)\].,%°{_CLOSE}])-)?{_NOT_WORD_BEFORE}(?<![0-9][.,])(?P<num>{_NUMERAL}){_NUM_END}"
)
_FRACTION_RE = re.compile(r"(?<![\w/.,])(?P<a>[0-9]{1,6})/(?P<b>[0-9]{1,6})(?![\w/]|[.,][0-9])")
_CURRENCY_PREFIX_RE = re.compile(r"\$\s?(?P<num>[0-9][0-9.,]*[0-9]|[0-9])")
_APPROX_RE = re.compile(r"[~≈]\s?(?=[0-9])")
_HASH_NUMBER_RE = re.compile(r"#\s?(?=[0-9])")
_PLUS_NUMBER_RE = re.compile(r"(?<=[0-9\s])\+(?=\s?[0-9])")


def _number_sub(m: re.Match[str]) -> str:
    token = m.group("num")
    if _DOT_DECIMAL.fullmatch(token) and _DECIMAL_CONTEXT.match(m.string, m.end()):
        whole, frac = token.split(".")
        words = f"{_read_int_str(whole)} phẩy {_read_fraction_digits(frac)}"  # "1.5 triệu", "36.5 độ"
    else:
        words = _read_numeral(token)
    if m.group("neg"):
        words = f"âm {words}"
    return _wrap(words)


def _fraction_sub(m: re.Match[str]) -> str:
    a, b = m.group("a"), m.group("b")
    if len(b) == 4 and b[:2] in ("19", "20"):  # "123/2023": a number of the year, not a fraction
        return _wrap(f"{_read_int_str(a)} trên {_cardinal(int(b))}")
    numerator, denominator = int(a), int(b)
    if 0 < numerator < denominator <= 10:  # a true fraction: "hai phần ba", "ba phần tư"
        words = "tư" if denominator == 4 else _cardinal(denominator)
        return _wrap(f"{_cardinal(numerator)} phần {words}")
    # "đạt 19/19 tiêu chí", "10/11 thôn": a count out of a total
    return _wrap(f"{_read_int_str(a)} trên {_read_int_str(b)}")


# Units read after a number.  Those in _ATTACHED_ONLY are too ambiguous as separate words
# ("5 V" may be a class) and count as units only when glued to the number.
_UNITS: dict[str, str] = {
    "km/h": "ki lô mét trên giờ",
    "km/giờ": "ki lô mét một giờ",
    "m3/s": "mét khối trên giây",
    "m³/s": "mét khối trên giây",
    "m/s": "mét trên giây",
    "km²": "ki lô mét vuông",
    "km2": "ki lô mét vuông",
    "m²": "mét vuông",
    "m2": "mét vuông",
    "m³": "mét khối",
    "m3": "mét khối",
    "cm2": "xăng ti mét vuông",
    "cm3": "xăng ti mét khối",
    "°C": "độ xê",
    "°F": "độ ép",
    "°": "độ",
    "%": "phần trăm",
    "‰": "phần nghìn",
    "km": "ki lô mét",
    "m": "mét",
    "dm": "đề xi mét",
    "cm": "xăng ti mét",
    "mm": "mi li mét",
    "ha": "héc ta",
    "kg": "ki lô gam",
    "g": "gam",
    "mg": "mi li gam",
    "ml": "mi li lít",
    "l": "lít",
    "kWh": "ki lô oát giờ",
    "kwh": "ki lô oát giờ",
    "kW": "ki lô oát",
    "MW": "mê ga oát",
    "MWh": "mê ga oát giờ",
    "W": "oát",
    "kVA": "ki lô vôn am pe",
    "kV": "ki lô vôn",
    "V": "vôn",
    "A": "am pe",
    "Hz": "héc",
    "GB": "gi ga bai",
    "MB": "mê ga bai",
    "ppm": "phần triệu",
    "đ": "đồng",
    "Đ": "đồng",
    "VNĐ": "đồng",
    "VND": "đồng",
    "vnđ": "đồng",
    "USD": "đô la Mỹ",
    "tr": "triệu",
    "k": "nghìn",
    "K": "nghìn",
}
_ATTACHED_ONLY = frozenset({"W", "V", "A", "tr", "k", "K", "Đ"})
_UNIT_PATTERN = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_UNIT_AFTER_NUMBER_RE = re.compile(rf"{_CLOSE}(?P<sp>\s?)(?P<unit>{_UNIT_PATTERN}){_NOT_LETTER_AFTER}(?![0-9])")
_PER_UNIT_RE = re.compile(rf"(?<={_LETTER})\s*/\s*(?P<unit>{_UNIT_PATTERN}){_NOT_LETTER_AFTER}(?![0-9])")
_PER_WORD_RE = re.compile(rf"(?P<p>{_LETTER}+)\s*/\s*(?=(?P<w>{_LETTER}+))")
_PER_DENOMINATORS = frozenset(
    {
        "người", "hộ", "khẩu", "tháng", "năm", "ngày", "tuần", "giờ", "phút", "lượt", "ca", "buổi", "lần",
        "con", "chiếc", "cái", "suất", "em", "cháu", "học", "lớp", "sào", "mẫu", "thửa", "xã", "thôn", "bản",
        "kỳ", "vụ", "lít", "bao", "bình", "liều", "mũi", "cây", "gốc", "tấn", "tạ", "km", "kg", "ha",
        "lượng", "khóm", "khoá", "khóa", "đợt", "trẻ", "hecta", "sản", "trang", "bộ", "phòng", "xe", "ký",
        "cuốn", "quyển", "hồ", "gói", "hộp", "chai", "túi", "bó", "m", "tờ", "đêm",
    }
)


def _unit_sub(m: re.Match[str]) -> str:
    unit = m.group("unit")
    if m.group("sp") and unit in _ATTACHED_ONLY:
        return m.group(0)
    return f"{_CLOSE} {_UNITS[unit]}"


def _per_unit_sub(m: re.Match[str]) -> str:
    unit = m.group("unit")
    if unit in _ATTACHED_ONLY or unit in ("%", "°", "°C", "°F", "‰"):
        return m.group(0)
    return f" một {_UNITS[unit]}"


# After a price or a unit any noun is what the price is for: "3.000 đồng/trang", "mét/cuộn".
_PER_AFTER = frozenset(
    {
        "đồng", "nghìn", "triệu", "tỷ", "đô", "mỹ", "mét", "gam", "lít", "tạ", "tấn", "ta", "khối", "vuông",
        "giờ", "phút", "giây", "oát",
    }
)


def _per_word_sub(m: re.Match[str]) -> str:
    prev = m.group("p")
    per = m.group("w").lower() in _PER_DENOMINATORS or prev.lower() in _PER_AFTER
    return f"{prev} một " if per else f"{prev} "


_DOT_DECIMAL = re.compile(r"[0-9]+\.[0-9]{1,2}")
_DECIMAL_CONTEXT = re.compile(rf"\s?(?:triệu|tỷ|nghìn|độ|lần|{_UNIT_PATTERN})(?![^\W0-9_])")
_TIMES_RE = re.compile(r"(?<=[0-9])\s?[xX×]\s?(?=[0-9])")
_LETTER_DIGIT_RE = re.compile(r"(?<![^\W0-9_])(?P<l>[A-ZĐ])(?=[0-9])|(?<=[0-9])(?P<r>[A-ZĐ])(?![^\W0-9_])")
_ANY_DIGITS_RE = re.compile(r"[0-9]+")
# Digits glued to letters ("v2.1", "Win10") that the stricter number rule leaves alone.
_LEFTOVER_NUMERAL_RE = re.compile(_NUMERAL)
_RANGE_RE = re.compile(rf"{_CLOSE}\s*-\s*(?={_OPEN}|chủ nhật)")
_COLON_BETWEEN_DIGITS_RE = re.compile(r"(?<=[0-9]):(?=[0-9])")
_DO_C_RE = re.compile(r"(?<![^\W0-9_])(độ|ĐỘ)\s+(?P<u>[CF])(?![^\W0-9_])")


def _letter_digit_sub(m: re.Match[str]) -> str:
    letter = m.group("l") or m.group("r")
    return f" {LETTER_NAMES.get(letter, letter)} "


def _leftover_numeral_sub(m: re.Match[str]) -> str:
    return f" {_read_numeral(m.group(0))} "


# ---------------------------------------------------------------------------------------------
# Roman numerals and unknown abbreviations
# ---------------------------------------------------------------------------------------------

_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50}
_ROMAN_RE = re.compile(
    r"(?<![^\W0-9_])(?P<kw>(?i:khóa|khoá|quý|thứ|đại hội|thế kỷ|thế kỉ|kỳ|kì|kỳ họp|chương|phần|mục|phụ lục|"
    r"tập|giai đoạn|đợt|vòng|cấp|hạng|loại|quân khu|lần|số|khu vực|vùng|mức độ|mức|báo động|cấp độ|bậc|nhóm|"
    r"khối|cụm|tiểu khu|phân khu|tiểu đoàn|trung đoàn|sư đoàn|quân đoàn|học kỳ|học kì|kỳ thi|"
    r"đoạn|gói thầu|hạng mục))\s+(?P<r>[IVXL]{1,7})(?![^\W_])"
)


_ROMAN_GATE_RE = re.compile(r"[IVXL]")


def _roman_value(numeral: str) -> int | None:
    total = 0
    for i, ch in enumerate(numeral):
        value = _ROMAN_VALUES[ch]
        if i + 1 < len(numeral) and _ROMAN_VALUES[numeral[i + 1]] > value:
            total -= value
        else:
            total += value
    return total if total > 0 and _to_roman(total) == numeral else None


def _to_roman(n: int) -> str:
    out = []
    for value, symbol in ((50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out.append(symbol)
            n -= value
    return "".join(out)


def _roman_sub(m: re.Match[str]) -> str:
    value = _roman_value(m.group("r"))
    if value is None:
        return m.group(0)
    kw = m.group("kw")
    words = _ordinal(value) if kw.lower() == "thứ" else _cardinal(value)
    return f"{kw} {words}"


_CAPS_RE = re.compile(r"(?<![^\W_])[A-ZĐ]{2,6}(?![^\W_])")
_WORD_RE = re.compile(r"[^\W0-9_]+")
_TOKEN_BEFORE_RE = re.compile(r"([^\W_]+)[^\w]*$")
_TOKEN_AFTER_RE = re.compile(r"[^\w]*([^\W_]+)")


def _is_shouted_word(token: str) -> bool:
    """An all-caps word with diacritics: a headline, not an abbreviation."""
    return token.isupper() and any(c.isalpha() and not "A" <= c <= "Z" and c != "Đ" for c in token)


def _spell_caps(text: str) -> str:
    if not _CAPS_RE.search(text):
        return text
    headline = any(_is_shouted_word(w) for w in _WORD_RE.findall(text))

    def sub(m: re.Match[str]) -> str:
        if headline:
            before = _TOKEN_BEFORE_RE.search(text, max(0, m.start() - 40), m.start())
            after = _TOKEN_AFTER_RE.match(text, m.end())
            for near in (before, after):
                if near and _is_shouted_word(near.group(1)):
                    return m.group(0)
        return f" {_spell(m.group(0))} "

    return _CAPS_RE.sub(sub, text)


# ---------------------------------------------------------------------------------------------
# Symbols and final clean-up
# ---------------------------------------------------------------------------------------------

_SYMBOL_WORDS = {
    "&": " và ",
    "%": " phần trăm ",
    "‰": " phần nghìn ",
    "°": " độ ",
    "@": " a còng ",
    "+": " cộng ",
    "=": " bằng ",
    "≥": " lớn hơn hoặc bằng ",
    "≤": " nhỏ hơn hoặc bằng ",
    ">": " lớn hơn ",
    "<": " nhỏ hơn ",
    "$": " đô la ",
    "€": " ơ rô ",
    "|": ", ",
    "(": ", ",
    ")": ", ",
    "[": ", ",
    "]": ", ",
    "{": ", ",
    "}": ", ",
    "→": ", ",
    "⇒": ", ",
    "/": " ",
    "\\": " ",
    "*": " ",
    "#": " ",
    "_": " ",
    "^": " ",
    "~": " ",
    "'": " ",
    "‘": " ",
    "’": " ",
    "\"": " ",
    "`": " ",
    "´": " ",
}
_SYMBOL_TABLE = str.maketrans(_SYMBOL_WORDS)
# Pictographs, dingbats, box drawing, arrows and marks: TTS engines either skip them or read
# their English names, neither of which a villager should hear.
_PICTOGRAPHS_RE = re.compile(
    "[\u00a9\u00ae\u00b7\u2022\u2023\u2043\u2219\u2122\u2190-\u21ff\u2300-\u23ff\u2460-\u24ff\u2500-\u27bf\u2900-\u2bff"
    "\u3000-\u303f\ufe00-\ufe0f\U0001f000-\U0001faff\U000e0000-\U000e007f]"
)
_SPACED_DASH_RE = re.compile(r"\s+-+\s+(?P<next>.?)|\s+-+$|^-+\s+")
_DASH_RE = re.compile(r"-+")
_SPACES_RE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+(?=[,.;:!?])")
_WEAK_THEN_STRONG_RE = re.compile(r"[,;:](?:\s*[,;:])*\s*(?=[.!?])")
_STRONG_THEN_WEAK_RE = re.compile(r"(?<=[.!?])(?:\s*[,;:])+")
_WEAK_RUN_RE = re.compile(r"([,;:])(?:\s*[,;:])+")
_SPACED_DOTS_RE = re.compile(r"\.(?:\s*\.)+")
_PUNCT_NO_SPACE_RE = re.compile(r"([,;:!?])(?=[^\W0-9_])")
_LEADING_RE = re.compile(r"^[\s,.;:!?]+")
_TRAILING_WEAK_RE = re.compile(r"[\s,]+$")


# Anything one of the clean-up rules above would still change.
_DIRTY_RE = re.compile(
    r"\s\s|[^\S ]|\s[,.;:!?]|\.\s+\.|(?<!\.)\.\.(?!\.)|\.{4}|[,;:]\s*[.!?,;:]|[.!?]\s*[,;:]|[,;:!?][^\W0-9_]"
    r"|^[\s,.;:!?]|[\s,]$"
)


def _spaced_dash_sub(m: re.Match[str]) -> str:
    """"kinh tế - xã hội" is one compound; "Cường - Bí thư" is an apposition that needs a pause."""
    nxt = m.group("next") or ""
    return f" {nxt}" if nxt.islower() else f", {nxt}"


def _dots(m: re.Match[str]) -> str:
    return "..." if m.group(0).count(".") >= 2 else "."


def _symbols(text: str) -> str:
    """Symbols become words or silence before the letter rules run.

    Doing it later would let a removed symbol bring a keyword and a numeral
    together ("quý*IV") only on the second pass, and break idempotence.
    """
    text = text.replace(_OPEN, " ").replace(_CLOSE, " ")
    text = text.translate(_SYMBOL_TABLE)
    text = _PICTOGRAPHS_RE.sub(" ", text)
    text = _SPACED_DASH_RE.sub(_spaced_dash_sub, text)
    return _DASH_RE.sub(" ", text)


def _cleanup(text: str) -> str:
    for _ in range(3):
        text = _SPACES_RE.sub(" ", text)
        text = _SPACE_BEFORE_PUNCT_RE.sub("", text)
        text = _SPACED_DOTS_RE.sub(_dots, text)
        text = _WEAK_THEN_STRONG_RE.sub("", text)
        text = _STRONG_THEN_WEAK_RE.sub("", text)
        text = _WEAK_RUN_RE.sub(r"\1", text)
        text = _PUNCT_NO_SPACE_RE.sub(r"\1 ", text)
        text = _LEADING_RE.sub("", text)
        text = _TRAILING_WEAK_RE.sub("", text)
        if not _DIRTY_RE.search(text):
            break
    return text.strip()


# ---------------------------------------------------------------------------------------------
# Words as written by hand: glued syllables, an abbreviation repeating its words, addresses
# ---------------------------------------------------------------------------------------------

# One Vietnamese syllable without its tone: onset, vowels, final consonant.
_SYLLABLE = (
    r"(?:ngh|ng|gh|gi|kh|nh|ph|th|tr|ch|qu|[bcdđghklmnprstvx])?"
    r"(?:oai|oay|oao|oeo|uây|uay|uôi|uoi|ươi|ươu|uou|iêu|ieu|yêu|yeu|uyê|uye|uya|[aăâeêioôơuưy]{1,2})"
    r"(?:ng|nh|ch|[cmnpt])?"
)
_SYLLABLE_RE = re.compile(_SYLLABLE)
_SYLLABLES_RE = re.compile(rf"(?:{_SYLLABLE})+")
_GLUED_GATE_RE = re.compile(r"[a-zà-ỹđ][A-ZÀ-ỸĐ]")
_GLUED_RE = re.compile(r"(?<![^\W0-9_])[^\W0-9_]{4,}(?![^\W0-9_])")


def _camel_parts(word: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for i in range(1, len(word)):
        if word[i].isupper() and word[i - 1].islower():
            parts.append(word[start:i])
            start = i
    parts.append(word[start:])
    return parts


def _toneless(word: str) -> str:
    """The letters without tone marks (the vowel's own shape, ă â ê ô ơ ư, stays)."""
    out = []
    for ch in unicodedata.normalize("NFD", word.lower()):
        if ch in "\u0300\u0301\u0303\u0309\u0323":
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _is_syllable(word: str) -> bool:
    return _SYLLABLE_RE.fullmatch(_toneless(word)) is not None


def _glued_sub(m: re.Match[str], table: Mapping[str, str]) -> str:
    """"YênBái": a missing space, split when every part is a Vietnamese syllable and one has a
    Vietnamese letter, so brand names ("MoMo", "TikTok", "VNeID") are left to the lexicon."""
    word = m.group(0)
    if word in table:
        return word
    parts = _camel_parts(word)
    if not 2 <= len(parts) <= 4 or not all(p[0].isupper() and p[1:].islower() for p in parts):
        return word
    if not all(_is_syllable(p) for p in parts) or word.isascii():
        return word
    return " ".join(parts)


def _spell_plain(part: str) -> str:
    """One part of an address: syllables as syllables ("yenbai" → "yen bai"), else letter by letter."""
    lower = part.lower()
    if lower in _ADDRESS_WORDS:
        return _ADDRESS_WORDS[lower]
    if lower.isdigit():
        return _read_digits(lower)
    if lower.isalpha() and lower.isascii():
        split = _split_syllables(lower)
        if split:
            return split
    return " ".join(
        _read_digits(c) if c.isdigit() else LETTER_NAMES.get(c.upper(), "") if c.isalpha() else "" for c in lower
    )


def _split_syllables(word: str) -> str | None:
    """The fewest syllables that spell ``word`` exactly, or None."""
    best: list[list[str] | None] = [None] * (len(word) + 1)
    best[0] = []
    for i in range(len(word)):
        done = best[i]
        if done is None:
            continue
        for j in range(i + 1, min(len(word), i + 7) + 1):
            if _SYLLABLE_RE.fullmatch(word, i, j):
                candidate = [*done, word[i:j]]
                current = best[j]
                if current is None or len(candidate) < len(current):
                    best[j] = candidate
    found = best[len(word)]
    return " ".join(found) if found and len(found) <= 4 else None


_ADDRESS_WORDS = {
    "vn": "vê en",
    "com": "com",
    "net": "nét",
    "org": "o rờ gờ",
    "gov": "gốp",
    "edu": "e đu",
    "info": "in phô",
    "www": "vê kép vê kép vê kép",
    "gmail": "gờ meo",
    "yahoo": "da hu",
    "outlook": "ao lúc",
    "facebook": "phây búc",
    "zalo": "da lô",
    "youtube": "diu túp",
    "http": "",
    "https": "",
}
_TLD = r"(?:vn|com|net|org|gov|edu|info)"
_EMAIL_RE = re.compile(r"(?<![\w@])[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?<![.])")
_URL_RE = re.compile(
    rf"(?<![^\W0-9_])(?<![@/])(?:https?://)?(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.{_TLD}(?![^\W0-9_]|@)(?:/[A-Za-z0-9._~/-]*[A-Za-z0-9])?"
)
_ADDRESS_PART_RE = re.compile(r"[A-Za-z]+|[0-9]+|[@./:_-]")


def _address_sub(m: re.Match[str]) -> str:
    """An e-mail or web address as announcers read it: "a còng", "chấm", "gạch chéo"."""
    raw = re.sub(r"^https?://", "", m.group(0))
    words: list[str] = []
    for part in _ADDRESS_PART_RE.findall(raw):
        if part == "@":
            words.append("a còng")
        elif part == ".":
            words.append("chấm")
        elif part == "/":
            words.append("gạch chéo")
        elif part in "_-":
            words.append("gạch dưới" if part == "_" else "gạch ngang")
        elif part != ":":
            words.append(_spell_plain(part))
    return f" {' '.join(w for w in words if w)} "


def _repeats_the_words(before: str, key: str, reading: str | None) -> bool:
    """Whether ``(key)`` only repeats the words written just before it ("thủ tục hành chính (TTHC)")."""
    words = _WORD_RE.findall(before)
    if reading:
        said = reading.casefold().split()
        if [w.casefold() for w in words[-len(said) :]] == said:
            return True
    letters = [c for c in key if c.isalpha()]
    if len(words) < len(letters) or not letters:
        return False
    initials = [_toneless(w[0]).upper()[0] for w in words[-len(letters) :]]
    return initials == [_toneless(c).upper()[0] for c in letters]


_BRACKETED_ABBREVIATION_RE = re.compile(r"\s*\(\s*(?P<key>[A-ZĐ][A-Za-zĐđ&\-]{1,11})\s*\)")


def _drop_repeated_abbreviations(text: str, table: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group("key")
        if sum(c.isupper() for c in key) < 2:
            return m.group(0)
        before = m.string[max(0, m.start() - 80) : m.start()]
        return "" if _repeats_the_words(before, key, table.get(key)) else m.group(0)

    return _BRACKETED_ABBREVIATION_RE.sub(sub, text)


# ---------------------------------------------------------------------------------------------
# Pipeline
# ---------------------------------------------------------------------------------------------


def _normalize(text: str, lexicon: Mapping[str, str] | None) -> str:
    text = _preprocess(text)
    lexicon_re, table = _lexicon_tables(lexicon)
    if "@" in text:
        text = _EMAIL_RE.sub(_address_sub, text)
    if "." in text:
        text = _URL_RE.sub(_address_sub, text)
    if "(" in text:
        text = _drop_repeated_abbreviations(text, table)
    if _GLUED_GATE_RE.search(text):
        text = _GLUED_RE.sub(lambda m: _glued_sub(m, table), text)
    has_digit = any("0" <= c <= "9" for c in text)

    if has_digit:
        text = _PHONE_RE.sub(_phone_sub, text)
        text = _CUED_NUMBER_RE.sub(_cued_number_sub, text)
        text = _SHORT_NUMBER_RE.sub(_short_number_sub, text)
        text = _DOC_RE.sub(lambda m: _doc_reading(m, table), text)
        text = _CURRENCY_PREFIX_RE.sub(r"\g<num> USD", text)

    def lexicon_sub(m: re.Match[str]) -> str:
        key = m.group("key")
        dot = m.group("dot") or ""
        if dot and key in _DOT_ABBREVIATIONS:
            dot = ""
        return f" {table[key]}{dot} "

    text = lexicon_re.sub(lexicon_sub, text)
    has_digit = any("0" <= c <= "9" for c in text)

    # Each rule is gated on a cheap substring test: most sentences carry one or two numbers,
    # and scanning for twenty kinds of expression that cannot be there is most of the cost.
    if has_digit:
        if "'" in text or "’" in text:
            text = _MINUTES_RE.sub(lambda m: _wrap(f"{_read_int_str(m.group(1))} phút"), text)
        if not _QUOTE_CHARS.isdisjoint(text):
            text = _QUOTES.sub(" ", text)
        if "~" in text or "≈" in text:
            text = _APPROX_RE.sub("khoảng ", text)
        if "#" in text:
            text = _HASH_NUMBER_RE.sub("số ", text)
        if "+" in text:
            text = _PLUS_NUMBER_RE.sub(" cộng ", text)
        slash, dash = "/" in text, "-" in text
        if slash:
            text = _ROUND_THE_CLOCK_RE.sub(_round_the_clock_sub, text)
            text = _PER_DURATION_RE.sub(" trong ", text)
        if ":" in text or "h" in text:
            text = _TIME_RE.sub(_time_sub, text)
        if "g" in text:
            text = _TIME_G_RE.sub(_time_g_sub, text)
        if "uý" in text or "UÝ" in text:
            text = _QUARTER_RE.sub(_quarter_sub, text)
        if dash and ("ấp" in text or "ẤP" in text or "hứ" in text or "HỨ" in text):
            text = _CAP_RANGE_RE.sub(_cap_range_sub, text)
        if slash or dash or "." in text:
            if slash:
                text = _DATE_PAIR_RE.sub(_date_pair_sub, text)
            text = _DATE_DMY_RE.sub(_dmy_sub, text)
            if slash:
                text = _DATE_RANGE_RE.sub(_date_range_sub, text)
            text = _DATE_MY_RE.sub(_my_sub, text)
            text = _DATE_DM_RE.sub(_dm_sub, text)
        if "gày" in text or "GÀY" in text:
            text = _NGAY_THANG_RE.sub(_ngay_thang_sub, text)
        if "hứ" in text or "HỨ" in text:
            text = _THU_RE.sub(_thu_sub, text)
        if "háng" in text or "HÁNG" in text:
            text = _THANG_RE.sub(_thang_sub, text)
        text = _LETTER_DIGIT_RE.sub(_letter_digit_sub, text)
        if slash:
            text = _FRACTION_RE.sub(_fraction_sub, text)
        if ":" in text:
            text = _COLON_BETWEEN_DIGITS_RE.sub(" trên ", text)
        if "x" in text or "X" in text or "×" in text:
            text = _TIMES_RE.sub(" nhân ", text)
        text = _NUMBER_RE.sub(_number_sub, text)
        if _CLOSE in text:
            text = _UNIT_AFTER_NUMBER_RE.sub(_unit_sub, text)
        if slash:
            text = _PER_UNIT_RE.sub(_per_unit_sub, text)
        text = _LEFTOVER_NUMERAL_RE.sub(_leftover_numeral_sub, text)
        if dash:
            text = _RANGE_RE.sub(f"{_CLOSE} đến ", text)
    elif not _QUOTE_CHARS.isdisjoint(text):
        text = _QUOTES.sub(" ", text)

    if "/" in text:
        text = _PER_WORD_RE.sub(_per_word_sub, text)
    text = _symbols(text)
    if "độ" in text or "ĐỘ" in text:
        text = _DO_C_RE.sub(lambda m: f"{m.group(1)} {LETTER_NAMES[m.group('u')]}", text)
    if _ROMAN_GATE_RE.search(text):
        text = _ROMAN_RE.sub(_roman_sub, text)
    text = _spell_caps(text)
    return _cleanup(text)


def _safe_fallback(text: str) -> str:
    """Last resort if a rule ever breaks: still speakable, still digit-free."""
    try:
        text = _ANY_DIGITS_RE.sub(lambda m: f" {_read_digits(m.group(0))} ", str(text))
        return _SPACES_RE.sub(" ", text).strip()
    except Exception:
        return ""


def normalize(text: str, lexicon: Mapping[str, str] | None = None) -> str:
    """Spoken Vietnamese form of ``text``.

    ``lexicon`` holds the commune's own abbreviations (hamlets, people, local
    bodies) and wins over the built-in table.  The function never raises: a
    broken announcement must still be aired.
    """
    if not isinstance(text, str) or not text:
        return ""
    try:
        return _normalize(text, lexicon)
    except Exception:  # pragma: no cover - defensive: airing beats crashing
        return _safe_fallback(text)


# ---------------------------------------------------------------------------------------------
# Sentence and paragraph splitting (on the original text)
# ---------------------------------------------------------------------------------------------

# Tokens whose trailing dot never ends a sentence ("TP. Yên Bái", "ThS. Lê Văn A").
_NO_BREAK_ABBREVIATIONS = frozenset(
    {
        "tp", "tx", "tt", "ths", "th.s", "ts", "pgs", "gs", "pgs.ts", "gs.ts", "bs", "ks", "mr", "mrs", "ms",
        "dr", "st", "q", "p", "h", "x", "tr", "đ/c", "ô", "b", "a", "ông", "bà", "no", "số", "vs", "t.ư",
    }
)
_SENTENCE_BREAK_RE = re.compile(r"(?P<p>[.!?…]+)(?P<q>[\"”’»)\]]*)(?P<ws>\s+)")
_TOKEN_END_RE = re.compile(r"(\S+)$")
_LIST_MARKER_RE = re.compile(r"\s*(?:[0-9]{1,2}|[a-zA-Z]|[IVX]{1,4})")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")


def _opens_sentence(text: str, pos: int) -> bool:
    while pos < len(text) and text[pos] in "\"“'‘«([-•*":
        pos += 1
    if pos >= len(text):
        return False
    ch = text[pos]
    return ch.isupper() or ch.isdigit()


def _split_line(line: str) -> list[str]:
    out: list[str] = []
    start = 0
    for m in _SENTENCE_BREAK_RE.finditer(line):
        punct = m.group("p")
        end = m.end("q")
        nxt = m.end()
        if "!" in punct or "?" in punct:
            pass
        elif punct == ".":
            if not _opens_sentence(line, nxt):
                continue
            token = _TOKEN_END_RE.search(line, start, m.start())
            word = token.group(1).lstrip("\"“'‘«([").lower() if token else ""
            if word in _NO_BREAK_ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
            if _LIST_MARKER_RE.fullmatch(line, start, m.start()):
                continue
        elif not _opens_sentence(line, nxt):
            continue
        piece = line[start:end].strip()
        if piece:
            out.append(piece)
        start = nxt
    piece = line[start:].strip()
    if piece:
        out.append(piece)
    return out


def split_sentences(text: str) -> list[str]:
    """Sentences of the original text, for pacing and per-sentence TTS.

    Splitting happens before normalization because the signals (capital after a
    full stop, abbreviation dots) disappear once numbers and abbreviations are
    read out.  Each line is at least one sentence: announcements put titles,
    times and places on their own lines without a full stop.
    """
    if not isinstance(text, str):
        return []
    text = _NEWLINES.sub("\n", text)
    sentences: list[str] = []
    for line in text.split("\n"):
        if line.strip():
            sentences.extend(_split_line(line))
    return sentences


def split_paragraphs(text: str) -> list[list[str]]:
    """Paragraphs (separated by blank lines), each as its sentences; a longer pause goes between."""
    if not isinstance(text, str):
        return []
    text = _NEWLINES.sub("\n", text)
    paragraphs = (split_sentences(p) for p in _BLANK_LINE_RE.split(text))
    return [p for p in paragraphs if p]


# ---------------------------------------------------------------------------------------------
# What was read out how: the spans a page highlights
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expansion:
    """A piece of the written text and the words it is read as (`spoken` is empty when it is silent).

    `start`/`end` index the written text, `spoken_start`/`spoken_end` the reading. `source` says which
    table read it: the commune's `lexicon`, the built-in `abbreviation` table, or a `rule` (numbers,
    dates, times, units, phone numbers, document codes, spelled capitals)."""

    written: str
    spoken: str
    start: int
    end: int
    spoken_start: int
    spoken_end: int
    source: str


@dataclass(frozen=True)
class Reading:
    """The text as the speakers will say it (sentence by sentence, as the pipeline speaks it; a new
    line between paragraphs) and the pieces that were not read as written."""

    spoken: str
    expansions: tuple[Expansion, ...]


_TOKEN_RE = re.compile(r"\S+")
_EDGE_RE = re.compile(r"^[\W_]+|[\W_]+$")


def _match_key(token: str) -> str:
    """What must be equal for a written word to count as read as written: case, surrounding punctuation
    and Unicode composition aside (the rules change all three without changing the word)."""
    core = _EDGE_RE.sub("", unicodedata.normalize("NFKC", token))
    return (core or token).casefold()


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the punctuation at its edges, unless nothing would be left of it."""
    piece = text[start:end]
    core = _EDGE_RE.sub("", piece)
    if not core:
        return start, end
    lead = piece.find(core)
    return start + lead, start + lead + len(core)


def _source(written: str, lexicon: Mapping[str, str] | None) -> str:
    if lexicon and written in lexicon:
        return "lexicon"
    return "abbreviation" if written in ABBREVIATIONS else "rule"


def _written_tokens(sentence: str, lexicon: Mapping[str, str] | None) -> list[tuple[int, int]]:
    """The written words, except that a lexicon entry of several words ("Nà Hẩu") is one: found with
    the normalizer's own compiled lexicon, so it is read as one piece, as `normalize` reads it."""
    tokens = [(t.start(), t.end()) for t in _TOKEN_RE.finditer(sentence)]
    lexicon_re, _ = _lexicon_tables(lexicon)
    for m in lexicon_re.finditer(sentence):
        a, b = m.span("key")
        if not any(c.isspace() for c in sentence[a:b]):
            continue
        inside = [t for t in tokens if t[0] < b and t[1] > a]
        if len(inside) > 1:
            merged = (inside[0][0], inside[-1][1])
            tokens = sorted({*tokens} - {*inside} | {merged})
    return tokens


Opcode = tuple[str, int, int, int, int]


def _finer(
    opcodes: Sequence[Opcode],
    sentence: str,
    written_tokens: list[tuple[int, int]],
    spoken: str,
    spoken_tokens: list[tuple[int, int]],
    lexicon: Mapping[str, str] | None,
) -> list[Opcode]:
    """Split a run of several written words with no word read as written between them ("KVC, TDP")
    into one piece per word, when each word read alone gives exactly its share of the reading; a run
    whose words are read differently together (a date, a phone number) stays whole."""
    out: list[Opcode] = []
    for op, i1, i2, j1, j2 in opcodes:
        if op != "replace" or i2 - i1 < 2:
            out.append((op, i1, i2, j1, j2))
            continue
        alone = [[_match_key(w) for w in normalize(sentence[a:b], lexicon).split()] for a, b in written_tokens[i1:i2]]
        said = [_match_key(spoken[a:b]) for a, b in spoken_tokens[j1:j2]]
        if [k for keys in alone for k in keys] != said:
            out.append((op, i1, i2, j1, j2))
            continue
        j = j1
        for i, keys in zip(range(i1, i2), alone, strict=True):
            same = keys == [_match_key(sentence[slice(*written_tokens[i])])]
            out.append(("equal" if same else "replace", i, i + 1, j, j + len(keys)))
            j += len(keys)
    return out


def _sentence_expansions(
    sentence: str, offset: int, spoken: str, spoken_offset: int, lexicon: Mapping[str, str] | None
) -> list[Expansion]:
    """Align the written words of one sentence with its reading: the words that are equal anchor the
    alignment, and every run between two anchors is one expansion. The reading itself is `normalize`'s,
    so the spans follow the rules wherever they change, without a second copy of them."""
    written_tokens = _written_tokens(sentence, lexicon)
    spoken_tokens = [(t.start(), t.end()) for t in _TOKEN_RE.finditer(spoken)]
    matcher = SequenceMatcher(
        None,
        [_match_key(sentence[a:b]) for a, b in written_tokens],
        [_match_key(spoken[a:b]) for a, b in spoken_tokens],
        autojunk=False,
    )
    out: list[Expansion] = []
    for op, i1, i2, j1, j2 in _finer(matcher.get_opcodes(), sentence, written_tokens, spoken, spoken_tokens, lexicon):
        if op == "equal":
            continue
        if i1 < i2:
            start, end = _trimmed(sentence, written_tokens[i1][0], written_tokens[i2 - 1][1])
        else:  # words said where nothing was written: placed before the next written word
            start = end = written_tokens[i1][0] if i1 < len(written_tokens) else len(sentence.rstrip())
        if j1 < j2:
            s_start, s_end = _trimmed(spoken, spoken_tokens[j1][0], spoken_tokens[j2 - 1][1])
        else:  # written but silent (a bullet, a decoration): placed where the next word is said
            s_start = s_end = spoken_tokens[j1][0] if j1 < len(spoken_tokens) else len(spoken)
        written = sentence[start:end]
        said = spoken[s_start:s_end]
        if not any(c.isalnum() for c in written + said):
            continue  # punctuation that became other punctuation: nothing a listener hears
        out.append(Expansion(written, said, offset + start, offset + end, spoken_offset + s_start,
                             spoken_offset + s_end, _source(written, lexicon)))  # fmt: skip
    return out


def read_aloud(text: str, lexicon: Mapping[str, str] | None = None) -> Reading:
    """How `text` will be read, and which written words became which spoken ones, for a page that shows
    the reading beside the text as it is typed.

    The reading is exactly what the pipeline speaks: `split_paragraphs`, then `normalize` of each
    sentence with the same `lexicon` (sentences without a letter or digit to say are left out). Never
    raises, like `normalize`."""
    if not isinstance(text, str) or not text:
        return Reading("", ())
    pieces: list[str] = []
    expansions: list[Expansion] = []
    length = 0
    cursor = 0
    for sentences in split_paragraphs(text):
        new_paragraph = True
        for sentence in sentences:
            at = text.find(sentence, cursor)
            if at >= 0:
                cursor = at + len(sentence)
            spoken = normalize(sentence, lexicon).strip()
            if not any(ch.isalnum() for ch in spoken):
                continue
            glue = "" if not pieces else ("\n" if new_paragraph else " ")
            new_paragraph = False
            length += len(glue)
            pieces.append(glue + spoken)
            if at >= 0:
                expansions += _sentence_expansions(sentence, at, spoken, length, lexicon)
            length += len(spoken)
    return Reading("".join(pieces), tuple(expansions))

