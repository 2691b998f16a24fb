"""What was broadcast in a period, as the commune reports it upwards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from broadcaster.api.deps import Svc, instant
from broadcaster.api.schemas import ReportOut, refusals
from broadcaster.errors import LoaError
from broadcaster.services.reports import report

router = APIRouter(tags=["reports"])


@router.get("/report", response_model=ReportOut, responses=refusals(400, 422))
def read_report(
    svc: Svc, start: Annotated[str, Query(alias="from")], end: Annotated[str, Query(alias="to")]
) -> dict[str, Any]:
    first, last = instant(start), instant(end)
    if first is None or last is None or last <= first:
        raise LoaError("end_before_start.range", {})
    return report(svc, first, last)
