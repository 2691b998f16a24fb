"""Is the daemon up, and which version does it speak.

A daemon whose MQTT loop or event writer has stopped still answers HTTP, and once answered `ok` here
while it heard no device and re-sent every command each second. So the daemon hands its parts' state
in (`create_app(health=...)`), and a stopped part makes the answer 503 with the part named, for
whatever watches it (systemd, a monitoring script, the officer's desk).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from broadcaster.api import API_VERSION
from broadcaster.api.deps import Parts
from broadcaster.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(parts: Parts, response: Response) -> dict[str, Any]:
    failing = parts.health()
    if failing:
        response.status_code = 503
    return {"ok": not failing, "version": API_VERSION, "failing": failing}
