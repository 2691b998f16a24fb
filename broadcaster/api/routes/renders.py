"""Turning a long text into speech in the background, with progress, before announcing it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from broadcaster.api.deps import Jobs, Lang
from broadcaster.api.schemas import RenderIn, RenderOut, refusals
from broadcaster.errors import LoaError

router = APIRouter(tags=["renders"])


@router.post(
    "/renders",
    status_code=202,
    response_model=RenderOut,
    response_model_exclude_unset=True,
    responses=refusals(400, 422),
)
def start_render(body: RenderIn, jobs: Jobs) -> dict[str, Any]:
    """Render a long text in the background; poll its progress, then announce it (a cache hit)."""
    if not body.text.strip():
        raise LoaError("empty_text", {})
    return jobs.start(body.text)


@router.get(
    "/renders/{render_id}", response_model=RenderOut, response_model_exclude_unset=True, responses=refusals(404, 422)
)
def read_render(render_id: str, jobs: Jobs, lang: Lang) -> dict[str, Any]:
    return jobs.get(render_id, lang)
