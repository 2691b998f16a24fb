"""An article page as it will be read aloud: the body of pages shaped like Vietnamese provincial news
sites, without their captions, date lines, authors, tags and lists of other articles; a list of articles
is not an article."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.errors import LoaError
from broadcaster.ingest.articles import content_sha256, extract_article

PAGES = Path(__file__).with_name("pages")
# the provincial article of ../shared/samples/, kept with the tests so that a clean clone reads it too
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "news-au-lau-chinh-quyen-than-thien.txt"

# What the pages carry around the article, none of which may be read out.
BOILERPLATE = {
    "baoyenbai-au-lau.html": [
        "Đại biểu các huyện, thị xã thăm quan",  # the photo caption, twice on the page
        "Cập nhật", "7:45:09", "Trần Ngọc", "Tags", "góp phần công khai minh bạch", "Các tin khác",
        "Quang cảnh lớp tập huấn", "Nghĩa Lộ", "Ảnh minh họa", "Họp không đúng thành phần", "Vina KNF",
        "Xem các tin đã đưa ngày", "Mọi chuyên mục", "Chuyên mục này", "Trang chủ", "Báo Yên Bái điện tử", "Đọc nhiều",
        "Phóng sự ảnh", "Giấy phép", "YênBái",
    ],
    "congthongtin-lao-cai.html": [
        "Nhân dân xã Quang Kim tham gia", "Ảnh: Minh Anh", "Minh Anh", "Ngày đăng", "Lượt xem", "Cỡ chữ", "In bài",
        "Gửi email", "Tin liên quan", "Sa Pa đón", "Bảo Thắng", "Các tin khác", "Mường Khương", "Từ khóa", "Nguồn:",
        "Chia sẻ", "Cơ quan chủ quản", "Thống kê truy cập", "Trang chủ", "Dịch vụ công", "Thông báo tuyển dụng",
        "CỔNG THÔNG TIN",
    ],
    "baotinh-nghe-an.html": [
        "Nông dân xã Công Thành thu hoạch lúa mùa", "Máy gặt đập liên hợp làm việc", "Ảnh: Thanh Hà", "Thanh Hà",
        "Chủ Nhật", "07:30", "Nghe đọc bài", "Tin liên quan", "Diễn Châu", "Giá lúa tăng", "Từ khóa",
        "Tin cùng chuyên mục", "Nghĩa Đàn", "Quỳnh Lưu", "Bình luận", "Giấy phép", "Podcast", "Sao chép liên kết",
    ],
    "baotinh-ha-giang-ngan.html": [
        "Bể chứa nước tại thôn Lô Lô Chải", "Hoàng Thủy", "25/11/2026", "07:10", "Từ khóa", "Các tin khác", "Mèo Vạc",
        "Yên Minh", "Trang chủ", "Giấy phép", "Thời sự",
    ],
}  # fmt: skip
# What must come through: the lead (which these sites keep outside the body) and the last paragraph.
KEPT = {
    "baoyenbai-au-lau.html": ["Xã Âu Lâu, thành phố Yên Bái đã cụ thể hóa", "Ông Trần Mạnh Cường - Bí thư",
                              "Định kỳ tổ chức lấy ý kiến đóng góp"],
    "congthongtin-lao-cai.html": ["Sáng 11/11, UBND huyện Bát Xát", "Phát biểu tại lễ ra quân",
                                  "Dịp này, huyện trao tặng 200 tấn xi măng"],
    "baotinh-nghe-an.html": ["Trước dự báo bão số 9", "Ông Nguyễn Văn Bình", "Năng suất lúa mùa năm nay"],
    "baotinh-ha-giang-ngan.html": ["Huyện Đồng Văn vừa đưa vào sử dụng", "Ban quản lý công trình đề nghị"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BOILERPLATE))
def test_the_text_read_aloud_is_the_article_and_nothing_around_it(name: str) -> None:
    article = extract_article((PAGES / name).read_bytes(), f"https://tinh.example.vn/{name}")
    spoken = article.text
    left = [s for s in BOILERPLATE[name] if s in spoken]
    assert not left, f"{name}: {left} is read out:\n{spoken}"
    missing = [s for s in KEPT[name] if s not in spoken]
    assert not missing, f"{name}: {missing} is lost:\n{spoken}"
    assert spoken.startswith(article.title + "\n\n") and article.title  # the title, then the body
    assert all(p.strip() == p and p for p in article.paragraphs)


def test_the_sample_article_comes_through_whole_with_its_caption_not_once() -> None:
    """The sample (shared/samples/, as scraped from Báo Yên Bái) made into its page: every paragraph of its
    body is read, in order, and the caption it repeats twice is heard neither time."""
    article = extract_article((PAGES / "baoyenbai-au-lau.html").read_bytes(), "https://baoyenbai.com.vn/12/1.aspx")
    assert article.title == 'Âu Lâu phát huy mô hình "Chính quyền thân thiện"'
    caption = "Đại biểu các huyện, thị xã thăm quan mô hình “Chính quyền thân thiện” xã Âu Lâu."
    assert caption not in article.text
    lines = [line.strip() for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    body = [line for line in lines[lines.index(caption) + 2 : lines.index("Trần Ngọc")] if line]
    assert len(body) >= 10
    spoken = [" ".join(p.split()) for p in article.paragraphs]
    assert spoken[1:] == [" ".join(p.split()) for p in body]
    assert lines.count(caption) == 2  # the sample does repeat it


def test_a_category_page_is_not_an_article() -> None:
    with pytest.raises(LoaError) as refused:
        extract_article((PAGES / "chuyenmuc-tin-trong-tinh.html").read_bytes(), "https://laocai.example.vn/tin")
    assert refused.value.code == "feed_not_article"
    assert "không phải một bài báo" in refused.value.message()


@pytest.mark.parametrize(
    "page",
    [
        b"",
        b"<html><body><h1>404</h1><p>Kh\xc3\xb4ng t\xc3\xacm th\xe1\xba\xa5y trang.</p></body></html>",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"<html><body><video src='/v.mp4'></video><p>Xem video.</p></body></html>",
    ],
)
def test_a_page_with_nothing_to_read_is_refused(page: bytes) -> None:
    with pytest.raises(LoaError) as refused:
        extract_article(page, "https://tinh.example.vn/x")
    assert refused.value.code == "feed_not_article"


def test_the_same_words_have_the_same_fingerprint_whatever_the_markup() -> None:
    assert content_sha256("Xã Âu Lâu  tổ chức\n\nhọp “dân”.") == content_sha256("xã âu lâu tổ chức họp dân")
    assert content_sha256("Xã Âu Lâu tổ chức họp") != content_sha256("Xã Âu Lâu tổ chức hội nghị")
