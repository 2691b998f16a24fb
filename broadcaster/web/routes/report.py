"""What was broadcast in a period: the counts `loa report` gives, and the airings behind them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import Query, Response

from broadcaster.errors import LoaError
from broadcaster.services.airings import list_airings
from broadcaster.services.reports import report
from broadcaster.web.page import Reader, day_start, local_day
from broadcaster.web.routes import page_router

router = page_router()
SHOWN = 200


@router.get("/report")
def report_page(
    page: Reader,
    first: Annotated[str, Query(alias="from")] = "",
    last: Annotated[str, Query(alias="to")] = "",
) -> Response:
    """Commune days, both included; by default this quarter so far, as `loa report` counts."""
    today = page.today
    quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    start_day, end_day = local_day(first, quarter), local_day(last, today)
    if end_day < start_day:
        raise LoaError("end_before_start.range", {})
    start, end = day_start(start_day), day_start(end_day + timedelta(days=1))
    airings = list_airings(page.svc, start=start, end=end, limit=SHOWN, lang=page.lang)
    return page.render(
        "report.html",
        result=report(page.svc, start, end),
        airings=airings,
        more=len(airings) == SHOWN,
        shown=SHOWN,
        first=start_day.isoformat(),
        last=end_day.isoformat(),
        start=start,
        end=day_start(end_day),
    )
