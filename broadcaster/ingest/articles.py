"""An article page as it will be read aloud: its title and its body, without the page around it.

trafilatura finds the body of most pages, but on Vietnamese provincial sites (Báo tỉnh, Cổng thông tin
điện tử tỉnh) it keeps what a listener must never hear, and loses what they should:

- photo captions (a table cell under the image, a centred italic paragraph repeating the image's alt
  text, "Ảnh: Minh Anh" on a line of its own): the sample article from Báo Yên Bái repeats one twice;
- the date line ("• Cập nhật: Thứ năm, 25/5/2023 | 7:45:09 AM"), views, font-size and print tools;
- the author's line at the end ("Trần Ngọc", "Minh Anh (Trung tâm VHTT huyện)"), "Nguồn:", "Theo ...";
- tags ("Tags ...", "Từ khóa: ..."), and lists of other articles ("Các tin khác", "Tin liên quan",
  "Tin cùng chuyên mục") with their headlines and teasers;
- and it drops the lead (sapo), which these sites keep outside the body's element.

So the page is cleaned before trafilatura sees it (captions collected and removed, boxes of other
articles, tags and tools removed), the lead is put back, and what trafilatura keeps is filtered line by
line. A page that is a list of articles (a category page), or has too little text, is refused with
`feed_not_article`: nothing is drafted from it.

Pure functions of the page's bytes: no network, no database (fetching is feeds.py's).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass

import lxml.html
import trafilatura
from lxml.etree import ParserError
from trafilatura.metadata import extract_metadata
from trafilatura.utils import decode_file, load_html

from broadcaster.errors import LoaError

MIN_BODY_CHARS = 200  # less is a stub, a video page or an error page: nothing to read out
MIN_PARAGRAPH_CHARS = 60  # ...and at least one real paragraph
SHORT_BOX_SHARE = 0.5  # a boilerplate box is less than half the page's text; more is the article itself

_WS = re.compile(r"\s+")
# Classes and ids of what is never the article (matched as whole words of `a-b_c d`).
_BOILERPLATE = re.compile(
    r"(?:^|[-_\s])(?:tags?|tag-title|keywords?|tu-?khoa|related|relate|lien-?quan|tinlienquan|other-?news|tin-?khac"
    r"|tinkhac|same-?category|cung-?chuyen-?muc|share|sharing|social|breadcrumbs?|menu|navbar|nav|comments?"
    r"|binh-?luan|print|toolbar|tools|pagination|paging|advert|ads|quang-?cao|author|byline|meta|date|time|info"
    r"|views|source|nguon|caption|image_desc|img-desc|photo-desc|chu-?thich|figcaption|date-filter|listen)"
    r"(?:$|[-_\s])",
    re.IGNORECASE,
)
_CAPTION_CLASS = re.compile(
    r"caption|image_desc|img-desc|imgdesc|photo-desc|desc-img|chu-?thich|chuthich|figcaption|note-image",
    re.IGNORECASE,
)
_LEAD_CLASS = re.compile(r"(?:^|[-_\s])(?:sapo|lead|summary|chapeau|tomtat|tom-tat|abstract|excerpt|intro|description)"
                         r"(?:$|[-_\s])", re.IGNORECASE)  # fmt: skip
_DROP_TAGS = ("script", "style", "noscript", "template", "form", "select", "button", "input", "textarea", "nav",
              "header", "footer", "aside", "iframe", "video", "audio", "object", "embed", "svg", "figure", "figcaption",
              "picture")  # fmt: skip
# Headings of lists of other articles: the heading and the list after it go.
_RELATED = re.compile(
    r"^(?:các tin khác|tin khác|tin liên quan|bài liên quan|tin cùng chuyên mục|cùng chuyên mục|tin cùng chủ đề"
    r"|đọc thêm|xem thêm|tin mới(?: nhất| hơn)?|tin đã đưa|tin cũ hơn|đọc nhiều(?: nhất)?|xem nhiều(?: nhất)?"
    r"|tin nổi bật|tin nóng|tin đọc nhiều|bình luận|ý kiến bạn đọc|gửi bình luận|tin ảnh|video|có thể bạn quan tâm"
    r"|bạn đọc quan tâm|tin tiêu điểm)\s*:?$",
    re.IGNORECASE,
)
_CAPTION_LINE = re.compile(
    r"^[(\[]?\s*(?:ảnh|ảnh minh họa|ảnh minh hoạ|ảnh tư liệu|ảnh internet|ảnh chụp màn hình|nguồn ảnh|nguồn|video|clip"
    r"|đồ họa|đồ hoạ|tin, ảnh|bài, ảnh|bài và ảnh|tin và ảnh|tin, ảnh, video|bài, ảnh, video|thực hiện)"
    r"\s*(?::\s*[^.!?]{0,80})?\s*[.)\]]?\s*$",
    re.IGNORECASE,
)
_CREDIT_AT_END = re.compile(r"[(\[]?\s*(?:ảnh|ảnh minh họa|ảnh minh hoạ|ảnh tư liệu)\s*:\s*[^.!?]{1,60}[.)\]]*\s*$",
                            re.IGNORECASE)  # fmt: skip
_META_LINE = re.compile(
    r"^[•·\-–\s]*(?:cập nhật|ngày đăng|đăng ngày|ngày cập nhật|đăng lúc|thời gian đăng|ngày xuất bản|xuất bản"
    r"|lượt xem|lượt đọc|cỡ chữ|in bài|gửi email|gửi bài|chia sẻ|nghe đọc bài|nghe bài viết|bản in|xem các tin đã đưa"
    r"|tin trong\s*:)",
    re.IGNORECASE,
)
_DATE_LINE = re.compile(
    r"^[•·\-–\s]*(?:(?:thứ\s+\S+|chủ\s+nhật)\s*,?\s*)?(?:ngày\s+)?\d{1,2}[/-]\d{1,2}[/-]\d{2,4}\b[\s\d:|,\-–hHAPMGT+()apm.]*$",
    re.IGNORECASE,
)
_TAGS_LINE = re.compile(r"^(?:tags?|từ khóa|từ khoá|chủ đề|keywords?)\b\s*:?", re.IGNORECASE)
_BYLINE = re.compile(r"^(?:tác giả|theo|nguồn|pv|phóng viên|nhóm pv|btv|ctv|bài và ảnh|bài, ảnh|tin, ảnh|tin và ảnh)\b",
                     re.IGNORECASE)  # fmt: skip
# A dateline naming the paper before the lead: "YênBái - ", "(Baoyenbai) - ", "QNO - ".
_SOURCE_TAG = re.compile(r"^\(?[^\s()]{2,20}\)?\s*[-–—]\s+")
_SENTENCE_END = re.compile(r"[.!?…:;\"”'»)]$")


@dataclass(frozen=True)
class Article:
    """What a draft is made of: the title and the body's paragraphs, and a fingerprint of the body."""

    title: str
    paragraphs: tuple[str, ...]

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)

    @property
    def text(self) -> str:
        """The title, then the body, a paragraph each: what is read aloud."""
        return "\n\n".join((self.title, *self.paragraphs)) if self.title else self.body

    @property
    def content_sha256(self) -> str:
        return content_sha256(self.body)


def _norm(text: str) -> str:
    """For comparing pieces of text: NFC, case-folded, spaces collapsed, outer punctuation dropped."""
    text = unicodedata.normalize("NFC", text).casefold().replace("\u00a0", " ")
    return _WS.sub(" ", text).strip(" \t|•·-–—.,:;\"'“”()[]")


def content_sha256(body: str) -> str:
    """The same article under another address has the same fingerprint: the body's words, not its markup,
    spacing, letter case or quotes."""
    words = re.findall(r"\w+", unicodedata.normalize("NFC", body).casefold())
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()


def _text(el: lxml.html.HtmlElement) -> str:
    return _WS.sub(" ", el.text_content()).strip()


def _classes(el: lxml.html.HtmlElement) -> str:
    return f"{el.get('class', '')} {el.get('id', '')}".strip()


def _link_share(el: lxml.html.HtmlElement) -> float:
    total = len(_text(el))
    if not total:
        return 1.0
    return sum(len(_text(a)) for a in el.iter("a")) / total


def _is_link_box(el: lxml.html.HtmlElement | None, total: int) -> bool:
    """A small box of the page that is mostly links: a list of other articles."""
    return (
        el is not None
        and el.tag not in ("body", "html")
        and len(_text(el)) < SHORT_BOX_SHARE * total
        and _link_share(el) >= 0.5
    )


def _drop(el: lxml.html.HtmlElement) -> None:
    parent = el.getparent()
    if parent is not None:
        el.drop_tree()


def _caption_texts(root: lxml.html.HtmlElement) -> set[str]:
    """Every caption the page has, as text: images' alt and title, captions' elements, and the short
    centred or italic paragraph right under an image (the copy many CMSs add)."""
    found: set[str] = set()
    for img in root.iter("img"):
        for attr in ("alt", "title"):
            value = _norm(img.get(attr, ""))
            if len(value.split()) >= 3:
                found.add(value)
        holder = img  # the outermost element holding the image and (almost) nothing else
        while (up := holder.getparent()) is not None and up.tag in ("a", "span", "strong", "em", "p", "div") \
                and len(_text(up)) < 10:  # fmt: skip
            holder = up
        after = holder.getnext()
        if after is not None and after.tag in ("p", "div") and 0 < len(_text(after)) < 300:
            style = after.get("style", "").replace(" ", "").lower()
            italic = all(len(_text(c)) >= len(_text(after)) - 2 for c in after if c.tag in ("em", "i")) and any(
                c.tag in ("em", "i") for c in after
            )
            if "text-align:center" in style or italic:
                found.add(_norm(_text(after)))
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag == "figcaption" or _CAPTION_CLASS.search(_classes(el)):
            value = _norm(_text(el))
            if value:
                found.add(value)
    return found


def _lead(root: lxml.html.HtmlElement) -> str:
    """The lead (sapo) as the page marks it, or a long h2 right under the title."""
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag not in ("meta", "html", "body") and _LEAD_CLASS.search(_classes(el)):
            text = _text(el)
            if 60 <= len(text) <= 1200:
                return text
    for h1 in root.iter("h1"):
        nxt = h1.getnext()
        while nxt is not None and nxt.tag not in ("h2", "p") and len(_text(nxt)) < 120:
            nxt = nxt.getnext()
        if nxt is not None and nxt.tag == "h2" and len(_text(nxt)) >= 80:
            return _text(nxt)
    return ""


def _clean(root: lxml.html.HtmlElement) -> None:
    """Remove what is never the article, in place: page furniture, captions' elements, tags and tools,
    and lists of other articles (by their class or by their heading)."""
    body = root.find("body")
    total = len(_text(body if body is not None else root)) or 1
    for el in list(root.iter(*_DROP_TAGS)):
        _drop(el)
    for table in list(root.iter("table")):
        if table.find(".//img") is not None and len(_text(table)) < 400:
            _drop(table)  # an image with its caption in the cell under it
    for el in list(root.iter()):
        if not isinstance(el.tag, str) or el.tag in ("html", "body") or el.getparent() is None:
            continue
        boxed = _BOILERPLATE.search(_classes(el)) or _CAPTION_CLASS.search(_classes(el))
        if boxed and len(_text(el)) < SHORT_BOX_SHARE * total:
            _drop(el)
    for el in list(root.iter("h1", "h2", "h3", "h4", "h5", "h6", "strong", "b", "p", "div", "span")):
        if el.getparent() is None or not _RELATED.match(_text(el)):
            continue
        node = el
        parent = node.getparent()
        # Climb while the box around the heading is a list of links (the box goes whole).
        while _is_link_box(parent, total):
            node, parent = parent, parent.getparent()
        following = node.getnext()
        while following is not None and (following.tag in ("ul", "ol") or _link_share(following) >= 0.5):
            nxt = following.getnext()
            _drop(following)
            following = nxt
        _drop(node)


def _teasers(root: lxml.html.HtmlElement) -> list[str]:
    """The texts beside headlines in small blocks: what a list of articles (a category page) is made of."""
    found = []
    for a in root.iter("a"):
        if len(_text(a).split()) < 4:
            continue
        block = a.getparent()
        while block is not None and block.tag not in ("div", "li", "article", "section", "td", "body"):
            block = block.getparent()
        if block is None or block.tag == "body" or len(_text(block)) > 700:
            continue
        rest = len(_text(block)) - len(_text(a))
        if rest >= 60:
            found.append(_norm(_text(block)))
    return found


def _filter(lines: list[str], *, title: str, captions: set[str], author: str, tags: Iterable[str]) -> list[str]:
    """What trafilatura kept, line by line, without captions, the date line, tags, lists of other articles
    and the author's line at the end."""
    tag_words = _norm(" ".join(tags))
    out: list[str] = []
    skipping_list = False
    for raw in lines:
        line = _WS.sub(" ", raw.replace("\u00a0", " ")).strip().strip("|").strip()
        n = _norm(line)
        if not n:
            continue
        if _RELATED.match(line):
            skipping_list = True  # the headlines after it, until the body goes on
            continue
        if skipping_list:
            if len(line.split()) < 12 or not _SENTENCE_END.search(line):
                continue
            skipping_list = False
        if n in captions or any(len(c) > 20 and n == c for c in captions):
            continue
        if _CAPTION_LINE.match(line) or (_CREDIT_AT_END.search(line) and len(line) < 300):
            continue
        if _META_LINE.match(line) or (_DATE_LINE.match(line) and len(line.split()) <= 12):
            continue
        if _TAGS_LINE.match(line) or (tag_words and n == tag_words):
            continue
        if title and n == _norm(title):
            continue
        out.append(line)
    author_n = _norm(author)
    while out and _is_byline(out[-1], author_n):
        out.pop()
    return out


def _is_byline(line: str, author: str) -> bool:
    """The author's line that ends an article: their name (the page's author, or a short line of capitalised
    words), perhaps with their office in brackets or after a dash; "Theo ...", "Nguồn: ...", "PV"."""
    n = _norm(line)
    if author and (n == author or n.startswith(author + " (") or n.startswith(author + " -")):
        return True
    if len(line) > 160:
        return False
    if _BYLINE.match(line) and len(line.split()) <= 15:
        return True
    name = re.split(r"\s*[(\[]|\s+[-–—]\s+", line, maxsplit=1)[0].strip()
    words = name.split()
    if not 1 <= len(words) <= 6 or (_SENTENCE_END.search(name) and not name.endswith(")")):
        return False
    return all(w[0].isupper() or not w[0].isalpha() for w in words)


def extract_article(page: bytes, url: str, *, charset: str | None = None, feed_title: str = "") -> Article:
    """The article in an HTML page: its title (the feed's, else the page's) and its body's paragraphs.
    Refused (`feed_not_article`) when the page is not one article: a list of articles, or too little text."""
    try:
        html = page.decode(charset, errors="replace") if charset else decode_file(page)
    except LookupError:  # a charset Python does not know
        html = decode_file(page)
    try:
        root = load_html(html)
    except (ParserError, ValueError):
        root = None
    if root is None:
        raise LoaError("feed_not_article", {"url": url})
    meta = extract_metadata(deepcopy(root), default_url=url, extensive=False)
    title = _WS.sub(" ", feed_title or meta.title or "").strip()
    captions = _caption_texts(root)
    lead = _lead(root)
    _clean(root)
    teasers = _teasers(root)
    doc = trafilatura.bare_extraction(
        root, url=url, include_comments=False, include_tables=False, include_images=False, include_links=False,
        with_metadata=False,
    )  # fmt: skip
    text = getattr(doc, "text", None) or ""
    lines = _filter(text.splitlines(), title=title, captions=captions, author=meta.author or "", tags=meta.tags or [])
    teased = sum(1 for line in lines if any(_norm(line) in t for t in teasers))
    if len(lines) >= 2 and 2 * teased >= len(lines):
        raise LoaError("feed_not_article", {"url": url})  # a category page: headlines and their teasers
    if lead and not any(_norm(lead)[:80] in _norm(line) for line in lines[:3]):
        lines.insert(0, lead)
    if lines:
        lines[0] = _SOURCE_TAG.sub("", lines[0], count=1) if _SOURCE_TAG.match(lines[0]) else lines[0]
    body = "\n\n".join(lines)
    if len(body) < MIN_BODY_CHARS or not any(len(line) >= MIN_PARAGRAPH_CHARS for line in lines):
        raise LoaError("feed_not_article", {"url": url})
    return Article(title=title, paragraphs=tuple(lines))
