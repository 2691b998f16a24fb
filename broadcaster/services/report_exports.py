"""The period report (services/period_report.py) as people take it away: the tables every format shares,
text for the terminal, CSV for anyone, XLSX for the office, SVG charts for the desk and the printed
page, and PNG and PDF from the command line.

Choices, measured (/work/notes/readme-reports.md has the numbers): the desk's charts are SVG written here
by hand — no dependency, microseconds to draw, crisp when printed — because matplotlib costs the daemon
about 0.6–0.9 s to import, 75 MB more memory and 0.25 s per chart, and pygal 0.1 s and 12 MB for SVG
alone. PNG and PDF, asked for at the terminal only (`loa report --format png|pdf`), come from matplotlib,
imported then and only then: it rasterises, paginates and carries its own DejaVu fonts, which have every
Vietnamese mark, so the PDF reads the same on any machine. CSV is UTF-8 with a byte-order mark, which
is how Excel knows it is not in the office's ANSI code page (without it, "Thôn" opens as "ThÃ´n").
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from broadcaster.services.period_report import PeriodReport
from schedules.clock import to_local

NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
FORMATS = ("text", "csv", "xlsx", "png", "pdf")
CHARTS = ("villages", "weeks", "online")

WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "BÁO CÁO HOẠT ĐỘNG ĐÀI TRUYỀN THANH",
        "period": "Từ ngày {first} đến ngày {last}",
        "zone": "Khu vực: {zone}",
        "summary": "Tổng hợp",
        "villages": "Theo thôn",
        "devices": "Theo thiết bị",
        "disconnections": "Mất kết nối",
        "weeks": "Theo tuần",
        "reasons": "Lý do không phát",
        "figure": "Chỉ tiêu",
        "value": "Số liệu",
        "items": "Số tin, bài",
        "airings": "Số lượt phát",
        "relay_airings": "trong đó lượt tiếp sóng",
        "plays": "Lượt phát trên loa (dự kiến)",
        "played": "Đã phát",
        "on_time": "Đúng giờ",
        "late": "Trễ",
        "failed": "Lỗi",
        "missed": "Bỏ lỡ",
        "unconfirmed": "Chưa xác nhận",
        "on_time_rate": "Tỷ lệ đúng giờ (%)",
        "minutes": "Thời lượng phát (phút)",
        "village": "Thôn",
        "speakers": "Số loa",
        "village_airings": "Lượt phát của thôn",
        "village_aired": "Đã phát",
        "missed_airings": "Không gửi được",
        "disconnection_count": "Số lần mất kết nối",
        "offline_hours": "Thời gian mất kết nối (giờ)",
        "device": "Thiết bị",
        "kind": "Loại",
        "longest": "Lâu nhất",
        "online_now": "Hiện trực tuyến",
        "went_offline": "Mất kết nối lúc",
        "came_back": "Có lại lúc",
        "duration": "Thời lượng",
        "still_offline": "vẫn mất kết nối",
        "week_of": "Tuần từ ngày",
        "outcome": "Kết quả",
        "reason": "Lý do",
        "count": "Số lượt",
        "yes": "có",
        "no": "không",
        "speaker": "loa",
        "led": "bảng LED",
        "chart.villages": "Lượt phát trên loa theo thôn",
        "chart.weeks": "Thời lượng phát theo tuần (phút)",
        "chart.online": "Số thiết bị trực tuyến theo ngày",
        "made_at": "Lập lúc {at}",
        "signature": "NGƯỜI LẬP BÁO CÁO",
    },
    "en": {
        "title": "BROADCASTING REPORT",
        "period": "From {first} to {last}",
        "zone": "Zone: {zone}",
        "summary": "Summary",
        "villages": "By village",
        "devices": "By device",
        "disconnections": "Disconnections",
        "weeks": "By week",
        "reasons": "Why plays did not happen",
        "figure": "Figure",
        "value": "Value",
        "items": "Items",
        "airings": "Airings",
        "relay_airings": "of which relays",
        "plays": "Speaker plays (planned)",
        "played": "Played",
        "on_time": "On time",
        "late": "Late",
        "failed": "Failed",
        "missed": "Missed",
        "unconfirmed": "Unconfirmed",
        "on_time_rate": "On-time rate (%)",
        "minutes": "Minutes on air",
        "village": "Village",
        "speakers": "Speakers",
        "village_airings": "Village airings",
        "village_aired": "Aired",
        "missed_airings": "Never sent",
        "disconnection_count": "Disconnections",
        "offline_hours": "Offline (hours)",
        "device": "Device",
        "kind": "Kind",
        "longest": "Longest",
        "online_now": "Online now",
        "went_offline": "Went offline",
        "came_back": "Came back",
        "duration": "Duration",
        "still_offline": "still offline",
        "week_of": "Week of",
        "outcome": "Outcome",
        "reason": "Reason",
        "count": "Plays",
        "yes": "yes",
        "no": "no",
        "speaker": "speaker",
        "led": "LED board",
        "chart.villages": "Speaker plays per village",
        "chart.weeks": "Minutes on air per week",
        "chart.online": "Devices online per day",
        "made_at": "Made at {at}",
        "signature": "PREPARED BY",
    },
}


def words(lang: str) -> dict[str, str]:
    return WORDS.get(lang, WORDS["vi"])


# ---------------------------------------------------------------- the tables every format shares


@dataclass
class ReportTable:
    key: str  # summary | villages | devices | disconnections | weeks | reasons
    title: str
    headings: list[str]
    rows: list[list[Any]]  # numbers stay numbers (XLSX sums them); times are commune-time text


def _rate(value: float | None) -> float | str:
    return "" if value is None else round(value * 100, 1)


def hms(seconds: float) -> str:
    """A duration as vendors' reports give it: 2:05:09, or 3 d 4:00:00 past a day."""
    s = round(seconds)
    days, rest = divmod(s, 86_400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days} d {text}" if days else text


def _local(when: datetime) -> str:
    return f"{to_local(when):%H:%M:%S %d/%m/%Y}"


def tables(r: PeriodReport, lang: str = "vi") -> list[ReportTable]:
    w = words(lang)
    t = r.totals
    summary: list[list[Any]] = [
        [w["items"], r.items],
        [w["airings"], r.airings],
        [w["relay_airings"], r.relay_airings],
        [w["plays"], t.plays],
        [w["played"], t.played],
        [w["on_time"], t.on_time],
        [w["late"], t.late],
        [w["failed"], t.failed],
        [w["missed"], t.missed],
        [w["unconfirmed"], t.unconfirmed],
        [w["on_time_rate"], _rate(t.on_time_rate)],
        [w["minutes"], round(r.minutes, 1)],
        [w["disconnection_count"], len(r.disconnections)],
    ]
    extra_keys = list(r.extra_labels)
    villages: list[list[Any]] = [
        [
            v.name, v.speakers, v.airings, v.aired, v.missed_airings, v.outcomes.plays, v.outcomes.played,
            v.outcomes.on_time, v.outcomes.late, v.outcomes.failed, v.outcomes.missed, v.outcomes.unconfirmed,
            _rate(v.outcomes.on_time_rate), round(v.airtime_ms / 60_000, 1), v.disconnections,
            round(v.offline_s / 3600, 1), *(v.extra.get(k, 0) for k in extra_keys),
        ]
        for v in r.villages
    ]  # fmt: skip
    village_names = {v.id: v.name for v in r.villages}
    devices = [
        [
            d.id, w.get(d.kind, d.kind), village_names.get(d.village_id, d.village_id), d.outcomes.plays,
            d.outcomes.played, d.outcomes.on_time, d.outcomes.late, d.outcomes.failed, d.outcomes.missed,
            d.outcomes.unconfirmed, _rate(d.outcomes.on_time_rate), round(d.outcomes.minutes, 1),
            d.disconnections, hms(d.offline_s), hms(d.longest_offline_s), w["yes"] if d.online_now else w["no"],
        ]
        for d in r.devices
    ]  # fmt: skip
    gone = [
        [d.device_id, village_names.get(d.village_id, d.village_id), _local(d.start),
         w["still_offline"] if d.ongoing else _local(d.end), hms(d.seconds)]
        for d in r.disconnections
    ]  # fmt: skip
    weeks = [[f"{wk.monday:%d/%m/%Y}", wk.airings, wk.plays, round(wk.airtime_ms / 60_000, 1)] for wk in r.weeks]
    reasons = [[w[outcome], words_, n] for outcome, words_, n in r.reason_rows(lang)]
    plays_heads = [w["plays"], w["played"], w["on_time"], w["late"], w["failed"], w["missed"], w["unconfirmed"],
                   w["on_time_rate"], w["minutes"]]  # fmt: skip
    return [
        ReportTable("summary", w["summary"], [w["figure"], w["value"]], summary),
        ReportTable(
            "villages",
            w["villages"],
            [
                w["village"],
                w["speakers"],
                w["village_airings"],
                w["village_aired"],
                w["missed_airings"],
                *plays_heads,
                w["disconnection_count"],
                w["offline_hours"],
                *(r.extra_labels[k].get(lang, k) for k in extra_keys),
            ],
            villages,
        ),
        ReportTable(
            "devices",
            w["devices"],
            [
                w["device"],
                w["kind"],
                w["village"],
                *plays_heads,
                w["disconnection_count"],
                w["duration"],
                w["longest"],
                w["online_now"],
            ],
            devices,
        ),
        ReportTable(
            "disconnections",
            w["disconnections"],
            [w["device"], w["village"], w["went_offline"], w["came_back"], w["duration"]],
            gone,
        ),
        ReportTable("weeks", w["weeks"], [w["week_of"], w["airings"], w["played"], w["minutes"]], weeks),
        ReportTable("reasons", w["reasons"], [w["outcome"], w["reason"], w["count"]], reasons),
    ]


def heading_lines(r: PeriodReport, lang: str = "vi") -> list[str]:
    w = words(lang)
    lines = [r.commune.upper(), w["title"], w["period"].format(first=f"{r.first_day:%d/%m/%Y}",
                                                                   last=f"{r.last_day:%d/%m/%Y}")]  # fmt: skip
    if r.zone_id != "all":
        lines.append(w["zone"].format(zone=r.zone_name))
    return lines


# ---------------------------------------------------------------- text, CSV, XLSX


def to_text(r: PeriodReport, lang: str = "vi") -> str:
    """For the terminal: the sentence, the summary, the reasons and the villages."""
    out = [*heading_lines(r, lang), "", r.sentence(lang), ""]
    for table in tables(r, lang):
        if table.key not in ("summary", "reasons", "villages"):
            continue
        out.append(f"{table.title}:")
        keep = list(range(len(table.headings))) if table.key != "villages" else [0, 2, 6, 7, 12, 13, 14]
        rows = [[row[i] for i in keep] for row in table.rows]
        heads = [table.headings[i] for i in keep]
        out += _columns([heads, *rows]) if table.key != "summary" else [f"  {a}: {b}" for a, b in rows]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _columns(rows: list[list[Any]]) -> list[str]:
    texts = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in texts) for i in range(len(texts[0]))]
    return [
        "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in texts
    ]


def to_csv(r: PeriodReport, lang: str = "vi") -> bytes:
    """Every table one after the other, each under its title, a blank line between: one file that opens
    in Excel or LibreOffice with its Vietnamese intact (UTF-8 with BOM)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for line in heading_lines(r, lang):
        writer.writerow([line])
    writer.writerow([r.sentence(lang)])
    for table in tables(r, lang):
        writer.writerow([])
        writer.writerow([table.title])
        writer.writerow(table.headings)
        writer.writerows(table.rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(r: PeriodReport, lang: str = "vi") -> bytes:
    """One sheet per table, the heading row bold and frozen, columns as wide as their text."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    first = True
    for table in tables(r, lang):
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        first = False
        sheet.title = table.title[:31]
        top = 1
        if table.key == "summary":
            for line in [NATION, MOTTO, *heading_lines(r, lang), r.sentence(lang)]:
                sheet.cell(row=top, column=1, value=line).font = Font(bold=top <= 4)
                top += 1
            top += 1
        for col, heading in enumerate(table.headings, start=1):
            cell = sheet.cell(row=top, column=col, value=heading)
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for i, row in enumerate(table.rows, start=top + 1):
            for col, value in enumerate(row, start=1):
                sheet.cell(row=i, column=col, value=value)
        sheet.freeze_panes = sheet.cell(row=top + 1, column=1)
        for col, heading in enumerate(table.headings, start=1):
            longest = max([len(str(row[col - 1])) for row in table.rows] + [min(len(heading), 18), 6])
            sheet.column_dimensions[sheet.cell(row=top, column=col).column_letter].width = min(longest + 2, 60)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


# ---------------------------------------------------------------- charts: SVG by hand

_INK, _BAR, _GRID, _LINE = "#1f2937", "#1d4ed8", "#d1d5db", "#047857"


@dataclass
class Series:
    title: str
    labels: list[str]
    values: list[float]
    kind: str  # "hbar" | "bar" | "line"
    floor_zero_max: float | None = None  # the line chart's top (devices in the zone)


def chart_series(r: PeriodReport, name: str, lang: str = "vi") -> Series:
    w = words(lang)
    if name == "villages":
        return Series(w["chart.villages"], [v.name for v in r.villages], [v.outcomes.played for v in r.villages],
                      "hbar")  # fmt: skip
    if name == "weeks":
        return Series(w["chart.weeks"], [f"{wk.monday:%d/%m}" for wk in r.weeks],
                      [round(wk.airtime_ms / 60_000, 1) for wk in r.weeks], "bar")  # fmt: skip
    if name == "online":
        return Series(w["chart.online"], [f"{d:%d/%m}" for d, _ in r.online], [round(n, 2) for _, n in r.online],
                      "line", float(len(r.devices)))  # fmt: skip
    raise ValueError(f"no chart {name!r}")


def _nice_top(value: float) -> tuple[float, float]:
    """A round top for the axis and its step (4–5 grid lines)."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 4
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step >= raw:
            break
    top = step * -(-value // step)
    return top, step


def _num(value: float) -> str:
    return f"{value:,.0f}".replace(",", ".") if value >= 1000 else f"{value:g}"


def to_svg(series: Series) -> str:
    """A self-contained SVG (presentation attributes only, no style or script: it passes the desk's
    Content-Security-Policy and prints sharp), with a <title> for screen readers."""
    if series.kind == "hbar":
        return _hbar_svg(series)
    return _columns_svg(series)


def _svg_open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" font-family="DejaVu Sans, Arial, sans-serif" font-size="12" fill="{_INK}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]


def _hbar_svg(s: Series) -> str:
    width, left, right, row, top = 640, 110, 50, 18, 34
    height = top + row * max(len(s.values), 1) + 30
    peak, step = _nice_top(max(s.values, default=0))
    span = width - left - right
    out = _svg_open(width, height, s.title)
    tick = 0.0
    while tick <= peak + 1e-9:
        x = left + span * tick / peak
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 26}" stroke="{_GRID}"/>')
        out.append(f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" font-size="11">{_num(tick)}</text>')
        tick += step
    for i, (label, value) in enumerate(zip(s.labels, s.values, strict=True)):
        y = top + i * row
        bar = span * value / peak
        out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 2}" width="{bar:.1f}" height="{row - 5}" fill="{_BAR}"/>')
        out.append(f'<text x="{left + bar + 4:.1f}" y="{y + 13}" font-size="11">{_num(value)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _columns_svg(s: Series) -> str:
    width, height, left, right, top, bottom = 640, 300, 50, 16, 34, 46
    peak_value = s.floor_zero_max if s.floor_zero_max else max(s.values, default=0)
    peak, step = _nice_top(max(peak_value, max(s.values, default=0)))
    span_x, span_y = width - left - right, height - top - bottom
    n = max(len(s.values), 1)
    out = _svg_open(width, height, s.title)
    tick = 0.0
    while tick <= peak + 1e-9:
        y = top + span_y * (1 - tick / peak)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{_GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_num(tick)}</text>')
        tick += step
    every = max(1, -(-n // 12))  # at most a dozen labels under the axis
    slot = span_x / n
    if s.kind == "bar":
        for i, value in enumerate(s.values):
            h = span_y * value / peak
            x = left + i * slot
            tip = f"<title>{escape(s.labels[i])}: {_num(value)}</title>"
            out.append(f'<rect x="{x + slot * 0.15:.1f}" y="{top + span_y - h:.1f}" width="{slot * 0.7:.1f}" '
                       f'height="{h:.1f}" fill="{_BAR}">{tip}</rect>')  # fmt: skip
    else:
        points = " ".join(
            f"{left + (i + 0.5) * slot:.1f},{top + span_y * (1 - v / peak):.1f}" for i, v in enumerate(s.values)
        )
        if points:
            out.append(f'<polyline points="{points}" fill="none" stroke="{_LINE}" stroke-width="2"/>')
    for i in range(0, n if s.values else 0, every):
        x = left + (i + 0.5) * slot
        out.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">'
                   f"{escape(s.labels[i])}</text>")  # fmt: skip
    out.append(f'<line x1="{left}" y1="{top + span_y}" x2="{width - right}" y2="{top + span_y}" stroke="{_INK}"/>')
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------- PNG and PDF, at the terminal only


def _figure_of(series: Series, ax: Any) -> None:
    if series.kind == "hbar":
        ax.barh(series.labels[::-1], series.values[::-1], color=_BAR)
        ax.tick_params(axis="y", labelsize=7)
    elif series.kind == "bar":
        ax.bar(series.labels, series.values, color=_BAR)
    else:
        ax.plot(series.labels, series.values, color=_LINE)
        ax.set_ylim(bottom=0, top=max([series.floor_zero_max or 0, *series.values, 1]) * 1.05)
    if series.kind != "hbar":
        n = len(series.labels)
        ax.set_xticks(range(0, n, max(1, -(-n // 12))))
        ax.tick_params(axis="x", labelsize=7, rotation=45)
    ax.set_title(series.title, fontsize=10)
    ax.grid(axis="x" if series.kind == "hbar" else "y", color=_GRID)


def to_png(r: PeriodReport, lang: str = "vi") -> bytes:
    """The three charts, one under the other, in one PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 4 + 0.16 * len(r.villages) + 6), dpi=120, layout="constrained")
    heights = [max(3.0, 0.16 * len(r.villages)), 3, 3]
    axes = fig.subplots(3, 1, height_ratios=heights)
    for ax, name in zip(axes, CHARTS, strict=True):
        _figure_of(chart_series(r, name, lang), ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def to_pdf(r: PeriodReport, lang: str = "vi", made_at: datetime | None = None) -> bytes:
    """The monthly report to the district on A4: the nation's heading, the commune, the period and its
    sentence, the summary and the reasons; the villages; the charts. (The devices and every disconnection
    are in the XLSX and CSV: dozens of pages nobody prints.)"""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    w = words(lang)
    buf = io.BytesIO()
    a4 = (8.27, 11.69)
    by_key = {t.key: t for t in tables(r, lang)}
    with PdfPages(buf, metadata={"Title": f"{w['title']} {r.first_day:%m/%Y}", "Creator": "loa"}) as pdf:
        fig = Figure(figsize=a4)
        fig.text(0.27, 0.95, r.commune.upper(), ha="center", fontsize=11, weight="bold")
        fig.text(0.70, 0.95, NATION, ha="center", fontsize=10, weight="bold")
        fig.text(0.70, 0.93, MOTTO, ha="center", fontsize=10, weight="bold")
        if made_at is not None:
            fig.text(0.70, 0.905, w["made_at"].format(at=f"{to_local(made_at):%H:%M %d/%m/%Y}"), ha="center",
                     fontsize=9, style="italic")  # fmt: skip
        for i, line in enumerate(heading_lines(r, lang)[1:]):
            fig.text(0.5, 0.85 - i * 0.025, line, ha="center", fontsize=13 if i == 0 else 10, weight="bold")
        fig.text(0.08, 0.76, _wrap(r.sentence(lang), 95), fontsize=10, va="top")
        _pdf_table(fig, by_key["summary"], [0.08, 0.36, 0.5, 0.32])
        if by_key["reasons"].rows:
            _pdf_table(fig, by_key["reasons"], [0.08, 0.08, 0.84, 0.24])
        pdf.savefig(fig)
        villages = by_key["villages"]
        keep = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14]  # the village page's columns (fits A4's width)
        narrowed = ReportTable(villages.key, villages.title, [villages.headings[i] for i in keep],
                               [[row[i] for i in keep] for row in villages.rows])  # fmt: skip
        for page_rows in _pages(narrowed.rows, 32):
            fig = Figure(figsize=a4)
            fig.text(0.5, 0.96, narrowed.title, ha="center", fontsize=12, weight="bold")
            height = min(0.9, 0.04 + 0.026 * (len(page_rows) + 3))
            _pdf_table(fig, ReportTable("", "", narrowed.headings, page_rows), [0.03, 0.94 - height, 0.94, height])
            pdf.savefig(fig)
        fig = Figure(figsize=a4, layout="constrained")
        axes = fig.subplots(3, 1, height_ratios=[2.2, 1, 1])
        for ax, name in zip(axes, CHARTS, strict=True):
            _figure_of(chart_series(r, name, lang), ax)
        pdf.savefig(fig)
    return buf.getvalue()


def _pages(rows: list[list[Any]], size: int) -> list[list[list[Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)] or [[]]


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _pdf_table(fig: Any, table: ReportTable, box: Sequence[float]) -> None:
    ax = fig.add_axes(box)
    ax.axis("off")
    if table.title:
        ax.set_title(table.title, fontsize=10, loc="left")
    heads = [_wrap(h, 12) for h in table.headings]
    cells = [[str(c) for c in row] for row in table.rows] or [["" for _ in heads]]
    t = ax.table(cellText=cells, colLabels=heads, loc="upper center", cellLoc="right", colLoc="center")
    t.auto_set_font_size(False)
    t.set_fontsize(7 if len(heads) > 4 else 9)
    t.scale(1, 1.3)
    for (row, _col), cell in t.get_celld().items():
        if row == 0:
            cell.set_height(cell.get_height() * 2.2)
            cell.set_text_props(weight="bold")


# ---------------------------------------------------------------- writing a file


def write_atomically(path: Path, data: bytes) -> None:
    """The whole file or nothing: written beside its place, then renamed over it (a reader never sees
    half a report, and a failure leaves what was there)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render(r: PeriodReport, fmt: str, lang: str = "vi", made_at: datetime | None = None) -> bytes:
    """The report in one of FORMATS, as bytes."""
    if fmt == "text":
        return to_text(r, lang).encode("utf-8")
    if fmt == "csv":
        return to_csv(r, lang)
    if fmt == "xlsx":
        return to_xlsx(r, lang)
    if fmt == "png":
        return to_png(r, lang)
    if fmt == "pdf":
        return to_pdf(r, lang, made_at)
    raise ValueError(f"no format {fmt!r}")
