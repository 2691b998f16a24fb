"""Reading the audit log: who did what and when, newest first, a page at a time.

Writing it is `broadcaster.db.audit`, called by every service in the transaction of the action it
records; this is only the reading, for the desk and anyone who must answer for what was aired.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from broadcaster.db import AuditEntry
from broadcaster.services import Services

MAX_PER_PAGE = 200


def _detail(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text or "{}")
    except ValueError:  # written by hand, or by an older version: shown as it is
        return {"text": text}
    return found if isinstance(found, dict) else {"value": found}


def audit_log(svc: Services, *, page: int = 1, per_page: int = 50, actor: str | None = None) -> dict[str, Any]:
    """One page of the log, newest first, optionally of one person (`actor`, as the log names them),
    with the number of pages and the people named in the whole log (for choosing one)."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    with svc.db.session() as session:
        q = select(AuditEntry)
        counted = select(func.count()).select_from(AuditEntry)
        if actor:
            q = q.where(AuditEntry.actor == actor)
            counted = counted.where(AuditEntry.actor == actor)
        total = session.scalar(counted) or 0
        pages = max(1, -(-total // per_page))
        page = max(1, min(page, pages))
        rows = session.scalars(q.order_by(AuditEntry.id.desc()).offset((page - 1) * per_page).limit(per_page))
        entries = [
            {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "detail": _detail(e.detail)}
            for e in rows
        ]
        actors = list(session.scalars(select(AuditEntry.actor).distinct().order_by(AuditEntry.actor)))
    return {"entries": entries, "page": page, "pages": pages, "total": total, "actors": actors}
