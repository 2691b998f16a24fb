"""Recalling an announcement: a false alarm stopped in seconds, whichever door the officer comes through.

An announcement is one item with one or more airings (an emergency repeats, three times by default; a
recurring notice is a programme's), and each airing is a broadcast row per village. Recalling the
announcement recalls all of it: every broadcast that has not ended becomes CANCELLED with the coded
reason `recalled`, a programme that repeats it stops, and the audit log says who, when and why, all in
one transaction. That is everything a person's action writes. The running daemon learns of it the way
it learns of any change, by re-reading the database (at once when the API pokes it, within its
reconcile interval after the CLI), and `broadcaster.dispatch.recall` sends a signed `stop` to every
device that may still hold one of its plays; a planned broadcast that is cancelled is never claimed.

Recalling twice is not an error: the second call cancels whatever is still live (usually nothing),
is audited like the first, and reports the first recall (who, when, why) with `already_recalled`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from broadcaster.db import (
    FINAL_DELIVERY,
    Announcement,
    AnnouncementState,
    AuditEntry,
    Broadcast,
    BroadcastStatus,
    Command,
    Delivery,
    Programme,
    audit,
)
from broadcaster.errors import LoaError
from broadcaster.messages import DEFAULT_LANGUAGE, coded_reason, render
from broadcaster.services import Services
from broadcaster.services.inputs import check_text, fits_sql_int
from schedules.clock import to_local

ACTION = "announcement.recall"
MAX_REASON_CHARS = 500  # a sentence or two for the record; the audit detail is unbounded text


@dataclass(frozen=True)
class RecallRecord:
    """The first recall of an announcement, as the audit log keeps it."""

    by: str
    at: datetime
    reason: str

    def view(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "at": self.at.isoformat(),
            "at_local": to_local(self.at).strftime("%H:%M:%S %d/%m/%Y"),
            "reason": self.reason,
        }


def recall(
    svc: Services, announcement_id: int, *, actor: str, reason: str = "", lang: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    """Cancel every broadcast of the announcement that has not ended, in one transaction, and say what
    that did: broadcasts cancelled before their commands went out, broadcasts already sent, and the
    devices the daemon will tell to stop (those with a play of it they have not finished)."""
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_CHARS:
        raise LoaError("reason_too_long", {"max": MAX_REASON_CHARS})
    check_text(reason, "reason", MAX_REASON_CHARS)
    if not fits_sql_int(announcement_id):
        raise LoaError("not_found.announcement", {"id": announcement_id}, status=404)
    now = svc.clock.now()
    with svc.db.session() as session:
        item = session.get(Announcement, announcement_id)
        if item is None:
            raise LoaError("not_found.announcement", {"id": announcement_id}, status=404)
        if item.state is not AnnouncementState.APPROVED:
            # Nothing of it is planned: a draft is its author's, what waits is the approver's to reject.
            raise LoaError("bad_state.recall", {"id": announcement_id, "state": item.state.value}, status=409)
        first = recall_record(session, announcement_id)
        planned = _cancel(session, announcement_id, BroadcastStatus.PLANNED)
        dispatched = _cancel(session, announcement_id, BroadcastStatus.DISPATCHED)
        devices = _devices_holding(session, dispatched, now)
        programmes = session.execute(
            update(Programme)
            .where(Programme.announcement_id == announcement_id, Programme.active.is_(True))
            .values(active=False)
            .returning(Programme.id)
            .execution_options(synchronize_session=False)
        ).all()
        audit(
            session,
            now,
            actor,
            ACTION,
            announcement=announcement_id,
            reason=reason,
            cancelled_before_dispatch=len(planned),
            cancelled_after_dispatch=len(dispatched),
            devices_to_stop=devices,
            programmes_stopped=len(programmes),
        )
        title = item.title
    record = first or RecallRecord(actor, now, reason)
    changed = bool(planned or dispatched or programmes)
    if first is not None and not changed:
        summary = render("recall.again", {"id": announcement_id, **_who(record)}, lang)
    else:
        counts = {"planned": len(planned), "dispatched": len(dispatched), "devices": devices}
        summary = render("recall.done", {"id": announcement_id, **counts}, lang)
    return {
        "id": announcement_id,
        "title": title,
        "recall": record.view(),
        "already_recalled": first is not None,
        "cancelled_before_dispatch": len(planned),
        "cancelled_after_dispatch": len(dispatched),
        "devices_to_stop": devices,
        "programmes_stopped": len(programmes),
        "summary": summary,
    }


def _who(record: RecallRecord) -> dict[str, str]:
    return {"by": record.by, "at": to_local(record.at).strftime("%H:%M:%S %d/%m/%Y")}


def _cancel(session: Session, announcement_id: int, status: BroadcastStatus) -> list[int]:
    """The announcement's broadcasts in `status` that this call cancelled: a conditional UPDATE, so a
    dispatch racing the recall either claims a row first (and it is cancelled as DISPATCHED, its plays
    stopped) or finds it cancelled (and never sends it)."""
    return list(
        session.scalars(
            update(Broadcast)
            .where(Broadcast.announcement_id == announcement_id, Broadcast.status == status)
            .values(status=BroadcastStatus.CANCELLED, reason=coded_reason("recalled"))
            .returning(Broadcast.id)
            .execution_options(synchronize_session=False)
        )
    )


def _devices_holding(session: Session, broadcast_ids: list[int], now: datetime) -> int:
    """Devices with a play of these broadcasts that they have not finished and that has not expired:
    the ones broadcaster.dispatch.recall sends a stop."""
    if not broadcast_ids:
        return 0
    return (
        session.scalar(
            select(func.count(func.distinct(Command.device_id)))
            .join(Delivery, Command.delivery_id == Delivery.id)
            .where(
                Delivery.broadcast_id.in_(broadcast_ids),
                Delivery.status.not_in(list(FINAL_DELIVERY)),
                Command.expires_at > now,
            )
        )
        or 0
    )


def _recall_entries(session: Session, since: datetime | None = None) -> list[tuple[AuditEntry, dict[str, Any]]]:
    """Recall entries of the audit log, oldest first, with their details. A commune recalls a handful
    of items a year, so reading them all is cheaper than a column for it."""
    q = select(AuditEntry).where(AuditEntry.action == ACTION).order_by(AuditEntry.id)
    if since is not None:
        q = q.where(AuditEntry.at >= since)
    out: list[tuple[AuditEntry, dict[str, Any]]] = []
    for entry in session.scalars(q):
        try:
            detail = json.loads(entry.detail)
        except ValueError:
            continue
        if isinstance(detail, dict):
            out.append((entry, detail))
    return out


def recall_record(session: Session, announcement_id: int) -> RecallRecord | None:
    """Who first recalled the announcement, when and why; None if nobody has."""
    for entry, detail in _recall_entries(session):
        if detail.get("announcement") == announcement_id:
            return RecallRecord(entry.actor, entry.at, str(detail.get("reason") or ""))
    return None


def recall_view(session: Session, announcement_id: int) -> dict[str, Any] | None:
    """The record of an announcement's recall as the API and the CLI show it."""
    record = recall_record(session, announcement_id)
    return None if record is None else record.view()


def recent_recalls(svc: Services, since: datetime) -> list[dict[str, Any]]:
    """Recalls since `since`, newest first, for `loa status`: which item, who, when, why."""
    with svc.db.session() as session:
        entries = _recall_entries(session, since)
        ids = {d["announcement"] for _, d in entries if isinstance(d.get("announcement"), int)}
        titles = dict(
            session.execute(select(Announcement.id, Announcement.title).where(Announcement.id.in_(ids))).all()
        )
    return [
        {
            "announcement": detail.get("announcement"),
            "title": titles.get(detail.get("announcement"), ""),
            **RecallRecord(entry.actor, entry.at, str(detail.get("reason") or "")).view(),
            "devices_to_stop": detail.get("devices_to_stop", 0),
        }
        for entry, detail in reversed(entries)
    ]
