"""The period report on the desk (#14): the commune's sentence, the tables per village and per device,
the reasons, the charts, the downloads (CSV, XLSX) and the page printed for the district; below them the
airings of the period. The figures are services/period_report.py's, the tables and charts
services/report_exports.py's, so the desk, `loa report` and the files say the same.

Charts are SVG from their own route (`<img src>`): the desk's Content-Security-Policy allows images from
this server and no inline anything, and an image is also what the printed page needs.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query, Response

from broadcaster.services.airings import list_airings
from broadcaster.services.period_report import PeriodReport, period, period_report
from broadcaster.services.report_exports import CHARTS, MOTTO, NATION, chart_series, tables, to_csv, to_svg, to_xlsx
from broadcaster.services.zones import list_zones
from broadcaster.web.page import Page, Reader, local_day
from broadcaster.web.routes import page_router
from schedules.clock import to_local

router = page_router()
SHOWN = 200
DISCONNECTIONS_SHOWN = 100
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
From = Annotated[str, Query(alias="from")]
To = Annotated[str, Query(alias="to")]


def _period(page: Page, first: str, last: str) -> tuple[date, date]:
    """Commune days, both included; by default this quarter so far, as `loa report` counts."""
    today = page.today
    quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    return local_day(first, quarter), local_day(last, today)


def _report(page: Page, first: str, last: str, zone: str) -> PeriodReport:
    start_day, end_day = _period(page, first, last)
    return period_report(page.svc, start_day, end_day, zone or "all")


def _query(r: PeriodReport) -> str:
    return f"from={r.first_day.isoformat()}&to={r.last_day.isoformat()}&zone={r.zone_id}"


def _file_name(r: PeriodReport, ext: str) -> str:
    zone = "" if r.zone_id == "all" else f"-{r.zone_id}"
    return f"bao-cao{zone}-{r.first_day.isoformat()}-{r.last_day.isoformat()}.{ext}"


@router.get("/report")
def report_page(page: Reader, first: From = "", last: To = "", zone: str = "all") -> Response:
    r = _report(page, first, last, zone)
    start, end = period(r.first_day, r.last_day)
    airings = list_airings(page.svc, start=start, end=end, limit=SHOWN, lang=page.lang)
    by_key = {t.key: t for t in tables(r, page.lang)}
    return page.render(
        "report.html",
        r=r,
        sentence=r.sentence(page.lang),
        tables=by_key,
        zones=list_zones(page.svc),
        charts=[(name, chart_series(r, name, page.lang).title) for name in CHARTS],
        query=_query(r),
        disconnections_shown=DISCONNECTIONS_SHOWN,
        airings=airings,
        more=len(airings) == SHOWN,
        shown=SHOWN,
        first=r.first_day.isoformat(),
        last=r.last_day.isoformat(),
    )


@router.get("/report/chart/{name}.svg")
def report_chart(page: Reader, name: str, first: From = "", last: To = "", zone: str = "all") -> Response:
    if name not in CHARTS:
        return Response(status_code=404)
    r = _report(page, first, last, zone)
    return Response(to_svg(chart_series(r, name, page.lang)), media_type="image/svg+xml")


@router.get("/report/export.csv")
def report_csv(page: Reader, first: From = "", last: To = "", zone: str = "all") -> Response:
    r = _report(page, first, last, zone)
    return Response(
        to_csv(r, page.lang),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_file_name(r, "csv")}"'},
    )


@router.get("/report/export.xlsx")
def report_xlsx(page: Reader, first: From = "", last: To = "", zone: str = "all") -> Response:
    r = _report(page, first, last, zone)
    return Response(
        to_xlsx(r, page.lang),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{_file_name(r, "xlsx")}"'},
    )


@router.get("/report/print")
def report_print(page: Reader, first: From = "", last: To = "", zone: str = "all") -> Response:
    """The report to the district on A4, the nation's heading and the commune's (print it, or save it
    as PDF from the browser's print)."""
    r = _report(page, first, last, zone)
    by_key = {t.key: t for t in tables(r, page.lang)}
    return page.render(
        "report_print.html",
        r=r,
        sentence=r.sentence(page.lang),
        tables=by_key,
        charts=[(name, chart_series(r, name, page.lang).title) for name in CHARTS],
        query=_query(r),
        nation=NATION,
        motto=MOTTO,
        made=to_local(page.svc.clock.now()).date(),
    )
