"""What an operator's tools ask, outside the versioned API: is the process there (`/healthz`), may it take
work (`/readyz`), and its Prometheus metrics (`/metrics`). docs/api.md, *Operations*.

`/healthz` and `/readyz` are open, like /api/v1/health: they say only whether the daemon and which of its
parts are up, which systemd, a load balancer or a monitoring script must learn without a secret. `/metrics`
counts what the commune airs, so it is for people of the commune's server: a signed-in reader, in practice
Prometheus with a viewer's token (`authorization: credentials_file` in its scrape config).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from sqlalchemy import text

from broadcaster.api.auth import require
from broadcaster.api.deps import Parts

# Outside /api/v1 and its OpenAPI document: operators' tools call these, at paths those tools expect.
router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    """Liveness: the process answers HTTP. Nothing else is asked, so a slow database never gets the daemon
    restarted by whatever watches this."""
    return {"ok": True}


@router.get("/readyz", responses={503: {"description": "A part is not ready; `failing` names it."}})
def readyz(parts: Parts, response: Response) -> dict[str, Any]:
    """Readiness: the database answers, the MQTT link is connected and the event writer runs. A failing
    part is named (`database`, `mqtt_link`, `mqtt_loop`, `event_writer`) with 503."""
    failing: list[str] = []
    try:
        with parts.svc.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # any reason is the same answer: the database cannot be used now
        failing.append("database")
    failing += parts.ready()
    if failing:
        response.status_code = 503
    return {"ready": not failing, "failing": failing}


@router.get("/metrics", dependencies=[Depends(require("read"))], response_class=Response)
def metrics(parts: Parts) -> Response:
    """The Prometheus text format (docs/operations.md lists the metrics)."""
    body, content_type = parts.exposition()
    return Response(body, media_type=content_type)
