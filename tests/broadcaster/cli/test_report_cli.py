"""`loa report` (#14): a period and a zone, as text, CSV, XLSX, PNG or PDF, into a file written whole or not
at all; a bad day is refused in Vietnamese with its English code, and nothing is written."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

from openpyxl import load_workbook

from broadcaster.db import Database
from broadcaster.simulation.history import generate
from tests.broadcaster.cli.test_cli import loa


def _commune(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'data' / 'loa.sqlite3'}")
    db.upgrade()
    generate(db, date(2026, 10, 28), 10, villages=3, speakers=2, items_per_day=2, seed=5)
    db.dispose()


def test_the_report_as_text_csv_xlsx_png_and_pdf(tmp_path: Path) -> None:
    _commune(tmp_path)
    period = ("--from", "01/11/2026", "--to", "2026-11-05")
    text = loa(tmp_path, "report", *period)
    assert text.returncode == 0, text.stderr
    assert "Từ ngày 01/11/2026 đến ngày 05/11/2026, đã thực hiện " in text.stdout and "Thôn 3" in text.stdout
    csv = tmp_path / "bao-cao.csv"
    assert loa(tmp_path, "report", *period, "--zone", "thon-2", "--format", "csv", "--output", str(csv)).returncode == 0
    body = csv.read_bytes()
    assert body.startswith(b"\xef\xbb\xbf") and "Theo thiết bị" in body.decode("utf-8-sig")
    assert "Khu vực: Thôn 2" in body.decode("utf-8-sig") and "Thôn 3" not in body.decode("utf-8-sig")
    xlsx = tmp_path / "bao-cao.xlsx"
    assert loa(tmp_path, "report", *period, "--format", "xlsx", "--output", str(xlsx)).returncode == 0
    book = load_workbook(io.BytesIO(xlsx.read_bytes()))
    assert book["Theo thôn"]["A2"].value == "Thôn 1"
    assert book["Tổng hợp"]["A1"].value == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    for fmt, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        out = tmp_path / f"bao-cao.{fmt}"
        r = loa(tmp_path, "report", *period, "--format", fmt, "--output", str(out))
        assert r.returncode == 0, r.stderr
        assert out.read_bytes().startswith(magic) and out.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".bao-cao")) == []  # no temp left


def test_bad_input_is_refused_and_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    _commune(tmp_path)
    out = tmp_path / "bao-cao.xlsx"
    out.write_bytes(b"last month's")
    xlsx = ("--format", "xlsx", "--output", str(out))
    bad = loa(tmp_path, "report", "--from", "31/02/2026", "--to", "2026-11-05", *xlsx)
    assert bad.returncode == 2 and "Lỗi: Không hiểu ngày '31/02/2026'" in bad.stderr
    assert "(bad_report_day)" in bad.stderr
    backwards = loa(tmp_path, "report", "--from", "2026-11-05", "--to", "2026-11-01", *xlsx, LOA_LANG="en")
    assert backwards.returncode == 2 and "(end_before_start)" in backwards.stderr
    unknown = loa(tmp_path, "report", "--zone", "thon-9", "--format", "csv", "--output", str(out))
    assert unknown.returncode == 2 and "(unknown_zone)" in unknown.stderr
    assert out.read_bytes() == b"last month's"
    needs_file = loa(tmp_path, "report", "--format", "pdf")
    assert needs_file.returncode == 2 and "(report_output_missing)" in needs_file.stderr
    nowhere = loa(tmp_path, "report", "--format", "csv", "--output", str(tmp_path / "no" / "such.csv"))
    assert nowhere.returncode == 2 and "(report_output_dir)" in nowhere.stderr
