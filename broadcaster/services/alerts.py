"""Official alerts: what the province's warning systems send, aired or put before an approver by the
commune's policy, with nobody at the desk when it matters most.

Two formats come in through broadcaster/ingest/ (a face, like the API): CAP 1.2 documents (ingest/cap.py:
parsed safely, checked against the OASIS schema and, where a source must sign, its XML signature) and
the bulletins of the provincial source information system of Thông tư 39/2020/TT-BTTTT at its three
levels (normal, priority, emergency). Both become an `Incoming`, and `receive` does the rest:

- the key (sender, identifier, sent) is claimed first, by inserting its row, so a replay is refused
  (`alert_duplicate`) even when the poller and a POST bring the same alert at the same moment;
- an alert that is not `Actual`, has expired, is an Ack or an Error, or names no area of the commune
  (`[alerts] areas`: area names and geocodes to zones) is refused with its reason and airs nothing;
- `[alerts] rules` map severity/urgency/certainty to a priority and an action, the first match winning:
  an emergency airs at once through the emergency path (`announce` with `approved_via="emergency"`, the
  reason in `emergency.confirmed`) under the system identity `cap:<source>` (`tt39:<source>`); anything
  else is planned at once or waits for an approver, as the rule says. The spoken text is the headline,
  the description and the instruction, read like any text; the headline is the title the LED boards show;
- an Update withdraws what it refers to (recalled if planned or on air, sent back if it waits) and is
  then handled as a new alert; a Cancel withdraws and airs nothing.

Every outcome is stored on the alert's row (`aired`, `drafted`, `applied`, `rejected` with a coded reason,
`cancelled`), on its source's row (`ok`, `rejected`, `failing`, and the last reason, for the officer) and
in the audit log. Refusals are LoaErrors, so the API says them in the reader's language.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from broadcaster.config import AlertsConfig, AlertSourceConfig
from broadcaster.db import AlertSource, Announcement, AnnouncementState, ReceivedAlert, audit
from broadcaster.errors import LoaError
from broadcaster.messages import DEFAULT_LANGUAGE, render
from broadcaster.services import Services
from broadcaster.services.announcements import (
    announce,
    announcement_view,
    check_request,
    plan_item,
    rendered_for,
)
from broadcaster.services.approvals import reject, submitted_item
from broadcaster.services.inputs import MAX_TEXT_CHARS, MAX_TITLE_CHARS
from broadcaster.services.recall import recall
from broadcaster.services.speech import render as speak
from schedules.clock import to_local

MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
TT39_LEVELS = ("normal", "priority", "emergency")
MAX_DETAIL = 200  # of a refusal's detail kept in a reason column (a schema error can run long)


@dataclass(frozen=True)
class Area:
    """An alert's area as sent: its description and its geocodes (valueName, value)."""

    desc: str
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reference:
    """An earlier alert an Update or a Cancel names (CAP's `sender,identifier,sent`)."""

    sender: str
    identifier: str
    sent: datetime | None


@dataclass(frozen=True)
class Incoming:
    """One official alert, whatever it came as. `level` is a TT39 bulletin's own level, which the
    province chose (the severity rules then do not apply)."""

    source: str
    sender: str
    identifier: str
    sent: datetime
    msg_type: str = "Alert"
    status: str = "Actual"
    references: tuple[Reference, ...] = ()
    references_text: str = ""
    event: str = ""
    headline: str = ""
    description: str = ""
    instruction: str = ""
    severity: str = "Unknown"
    urgency: str = "Unknown"
    certainty: str = "Unknown"
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    areas: tuple[Area, ...] = ()
    level: str | None = None


@dataclass
class Decision:
    """What the policy makes of an alert: its priority and whether it airs now or waits."""

    priority: str
    action: str  # air, draft
    zones: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- sources


def source_config(svc: Services, name: str | None, kinds: tuple[str, ...]) -> tuple[str, AlertSourceConfig]:
    """The configured source a request names, of one of these kinds; without a name, the only one."""
    sources = {n: s for n, s in svc.config.alerts.sources.items() if s.kind in kinds}
    if name is None:
        if len(sources) == 1:
            return next(iter(sources.items()))
        raise LoaError("alert_source_required", {"known": ", ".join(sorted(sources)) or "-"})
    found = sources.get(name) if isinstance(name, str) else None
    if found is None:
        raise LoaError("alert_unknown_source", {"source": str(name)[:40], "known": ", ".join(sorted(sources)) or "-"},
                       status=404)  # fmt: skip
    return name, found


def system_actor(source: str, kind: str) -> str:
    """Who an alert acts as in the announcements and the audit log: its source, never a person."""
    return f"{'tt39' if kind == 'tt39' else 'cap'}:{source}"


def stored_reason(exc: LoaError) -> str:
    """A refusal as a reason column keeps it: its key and params, said later in the reader's language."""
    params = {k: (v[:MAX_DETAIL] if isinstance(v, str) else v) for k, v in exc.params.items()}
    return json.dumps({"key": exc.key, "params": params}, ensure_ascii=False)[:500]


def said(stored: str, lang: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """A stored reason's code and its sentence ("", "" for none)."""
    if not stored:
        return "", ""
    try:
        data = json.loads(stored)
        key, params = str(data["key"]), dict(data["params"])
        sentence = render(key, params, lang)
    except (ValueError, KeyError, TypeError, IndexError):
        return "", stored
    return key.split(".", 1)[0], sentence if sentence is not None else key


def note_source(svc: Services, name: str, status: str, error: LoaError | None = None) -> None:
    """Record how a source's last delivery went: `ok`, `rejected` (what it sent was refused) or
    `failing` (it could not be fetched), with the reason for the officer."""
    source = svc.config.alerts.sources.get(name)
    now = svc.clock.now()
    with svc.db.session() as session:
        row = session.scalar(select(AlertSource).where(AlertSource.name == name))
        if row is None:
            row = AlertSource(name=name, kind=source.kind if source else "", url=source.url if source else "")
            session.add(row)
        row.status = status
        row.last_error = stored_reason(error) if error is not None else ""
        row.last_seen_at = now
        if status == "ok":
            row.last_ok_at = now


def refuse(svc: Services, name: str, error: LoaError, *, actor: str) -> LoaError:
    """A delivery refused before it could be read as an alert (malformed, failing the schema, unsigned):
    the source's status says why, the audit log too; the caller raises what this returns."""
    note_source(svc, name, "rejected", error)
    with svc.db.session() as session:
        audit(session, svc.clock.now(), actor, "alert.rejected", source=name, code=error.code,
              params=dict(error.params))  # fmt: skip
    return error


def sources_view(svc: Services, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    """Every configured source with how its last delivery went."""
    with svc.db.session() as session:
        rows = {r.name: r for r in session.scalars(select(AlertSource))}
        out = []
        for name, source in sorted(svc.config.alerts.sources.items()):
            row = rows.get(name)
            code, message = said(row.last_error if row else "", lang)
            out.append({
                "name": name, "kind": source.kind, "url": source.url, "require_signature": source.require_signature,
                "status": row.status if row else "new", "reason_code": code, "reason": message,
                "last_seen_at": _iso(row.last_seen_at if row else None),
                "last_ok_at": _iso(row.last_ok_at if row else None),
            })  # fmt: skip
        return out


# ---------------------------------------------------------------- policy


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def zones_for(cfg: AlertsConfig, areas: Iterable[Area]) -> list[str]:
    """The zones an alert's areas mean by `[alerts] areas`: an area name (case and spacing aside) or a
    geocode (`valueName=value`, or a bare value matching whatever the valueName)."""
    by_name: dict[str, str] = {}
    by_code: dict[tuple[str, str], str] = {}
    for a in cfg.areas:
        for n in a.names:
            by_name.setdefault(_norm(n), a.zone)
        for g in a.geocodes:
            name, sep, value = g.partition("=")
            key = (_norm(name), value.strip()) if sep else ("", g.strip())
            by_code.setdefault(key, a.zone)
    zones: list[str] = []
    for area in areas:
        hit = by_name.get(_norm(area.desc))
        if hit:
            zones.append(hit)
        for name, value in area.geocodes:
            hit = by_code.get((_norm(name), value.strip())) or by_code.get(("", value.strip()))
            if hit:
                zones.append(hit)
    return list(dict.fromkeys(zones))


def decide(cfg: AlertsConfig, incoming: Incoming) -> Decision:
    """The priority and the action: a TT39 bulletin's level, or the first rule its severity, urgency and
    certainty match. Without `auto_air`, an emergency waits for an approver as a priority item."""
    if incoming.level is not None:
        if incoming.level == "emergency":
            decision = Decision("emergency", "air")
        elif incoming.level == "priority":
            decision = Decision("priority", cfg.tt39_priority)
        else:
            decision = Decision("normal", "draft")
    else:
        decision = Decision("normal", "draft")
        for rule in cfg.rules:
            if (
                (not rule.severity or incoming.severity in rule.severity)
                and (not rule.urgency or incoming.urgency in rule.urgency)
                and (not rule.certainty or incoming.certainty in rule.certainty)
            ):
                decision = Decision(rule.priority, rule.action)
                break
    if decision.priority == "emergency" and not cfg.auto_air:
        decision = Decision("priority", "draft")
    return decision


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text[-1] in ".!?…:;" else text + "."


def spoken_text(incoming: Incoming) -> str:
    """What the speakers say: the headline (or the event), the description, the instruction."""
    parts = [_sentence(p) for p in (incoming.headline or incoming.event, incoming.description, incoming.instruction)]
    text = "\n".join(p for p in parts if p)
    return text[:MAX_TEXT_CHARS]


def title_of(incoming: Incoming) -> str:
    """What the LED boards show: the headline, or the event."""
    title = " ".join((incoming.headline or incoming.event or incoming.identifier).split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"


# ---------------------------------------------------------------- receiving


def receive(
    svc: Services, incoming: Incoming, *, posted_by: str, replay_ok: bool = False, lang: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    """Act on an alert once: refuse it with a reason, withdraw what it cancels, air it or put it before
    an approver (module docstring). `posted_by` is who delivered it (the token's person, or the poller);
    with `replay_ok` (a polled URL serves the same document until it changes) a replay is answered with
    what became of the first delivery instead of being refused."""
    source = svc.config.alerts.sources[incoming.source]
    actor = system_actor(incoming.source, source.kind)
    now = svc.clock.now()
    row_id = _claim(svc, incoming, now)
    if row_id is None:
        if replay_ok:
            with svc.db.session() as session:
                row = session.scalar(_key(incoming))
                return {**_row_view(row, lang), "replay": True} if row else {"replay": True}
        error = LoaError("alert_duplicate", {"identifier": incoming.identifier[:MAX_DETAIL], "sender":
                         incoming.sender[:MAX_DETAIL]}, status=409)  # fmt: skip
        raise refuse(svc, incoming.source, error, actor=posted_by)
    try:
        outcome = _act(svc, incoming, actor, now)
    except LoaError as exc:
        _finish(svc, row_id, "rejected", stored_reason(exc))
        note_source(svc, incoming.source, "rejected", exc)
        with svc.db.session() as session:
            audit(session, svc.clock.now(), posted_by, "alert.rejected", source=incoming.source, alert=row_id,
                  identifier=incoming.identifier, code=exc.code, params=dict(exc.params))  # fmt: skip
        raise
    _finish(svc, row_id, outcome["status"], "", outcome.get("announcement"))
    note_source(svc, incoming.source, "ok")
    with svc.db.session() as session:
        audit(session, svc.clock.now(), posted_by, f"alert.{outcome['status']}", source=incoming.source,
              alert=row_id, identifier=incoming.identifier, msg_type=incoming.msg_type,
              announcement=outcome.get("announcement"), priority=outcome.get("priority"),
              zones=outcome.get("zones", []), withdrawn=outcome.get("withdrawn", []))  # fmt: skip
        row = session.get(ReceivedAlert, row_id)
        assert row is not None
        view = _row_view(row, lang)
        item = session.get(Announcement, row.announcement_id) if row.announcement_id else None
        announcement = announcement_view(session, item, svc.clock.now(), lang) if item else None
    return {
        **view,
        "priority": outcome.get("priority"),
        "zones": outcome.get("zones", []),
        "withdrawn": outcome.get("withdrawn", []),
        "item": announcement,
    }


def _key(incoming: Incoming) -> Any:
    return select(ReceivedAlert).where(
        ReceivedAlert.sender == incoming.sender[:300],
        ReceivedAlert.identifier == incoming.identifier[:300],
        ReceivedAlert.sent == incoming.sent,
    )


def _claim(svc: Services, incoming: Incoming, now: datetime) -> int | None:
    """The alert's row, inserted `processing`; None when its key is taken (a replay). The unique key
    decides between two deliveries at once: the second insert fails."""
    try:
        with svc.db.session() as session:
            row = ReceivedAlert(
                source=incoming.source, sender=incoming.sender[:300], identifier=incoming.identifier[:300],
                sent=incoming.sent, msg_type=incoming.msg_type, references=incoming.references_text,
                severity=incoming.severity, urgency=incoming.urgency, certainty=incoming.certainty,
                headline=" ".join((incoming.headline or incoming.event).split())[:300], expires=incoming.expires,
                received_at=now, status="processing", reason="",
            )  # fmt: skip
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


def _finish(svc: Services, row_id: int, status: str, reason: str, announcement: int | None = None) -> None:
    with svc.db.session() as session:
        row = session.get(ReceivedAlert, row_id)
        assert row is not None
        row.status, row.reason, row.announcement_id = status, reason, announcement


def _act(svc: Services, incoming: Incoming, actor: str, now: datetime) -> dict[str, Any]:
    if incoming.msg_type not in ("Alert", "Update", "Cancel"):
        raise LoaError("alert_msg_type", {"msg_type": incoming.msg_type})
    if incoming.status != "Actual":
        raise LoaError("alert_not_actual", {"status": incoming.status})
    if incoming.expires is not None and incoming.expires <= now:
        raise LoaError("alert_expired", {"expires": _local(incoming.expires)})
    if incoming.msg_type == "Cancel":
        referred = _referred(svc, incoming)
        if not referred:
            raise LoaError("alert_unknown_reference", {"references": incoming.references_text[:MAX_DETAIL] or "-"})
        gone = _withdraw(svc, referred, actor, f"CAP Cancel {incoming.identifier}"[:500])
        return {"status": "applied", "withdrawn": gone}
    decision = decide(svc.config.alerts, incoming)
    decision.zones = zones_for(svc.config.alerts, incoming.areas)
    if not decision.zones:
        names = ", ".join(a.desc for a in incoming.areas)[:MAX_DETAIL]
        raise LoaError("alert_no_zone", {"areas": names or "-"})
    start = incoming.effective if incoming.effective is not None and incoming.effective > now else None
    if start is not None and incoming.expires is not None and start >= incoming.expires:
        raise LoaError("alert_expired", {"expires": _local(incoming.expires)})
    text, title = spoken_text(incoming), title_of(incoming)
    # Everything is checked before what it replaces is withdrawn: a bad Update leaves the old alert on air.
    check_request(svc, text, decision.zones, start, title=title, priority=decision.priority, order=None)
    withdrawn: list[int] = []
    if incoming.msg_type == "Update":
        withdrawn = _withdraw(svc, _referred(svc, incoming), actor, f"CAP Update {incoming.identifier}"[:500])
    why = f"{incoming.sender} {incoming.identifier} ({incoming.severity}/{incoming.urgency}/{incoming.certainty})"
    if decision.action == "air":
        via = "emergency" if decision.priority == "emergency" else "alert"
        item = announce(
            svc, text, decision.zones, start, title=title, priority=decision.priority, actor=actor,
            reason=why[:500] if decision.priority == "emergency" else "", approved_via=via,
        )  # fmt: skip
        status = "aired"
    else:
        item = _submit(svc, text, decision.zones, start, title=title, priority=decision.priority, actor=actor)
        status = "drafted"
    return {"status": status, "announcement": item["id"], "priority": decision.priority, "zones": decision.zones,
            "withdrawn": withdrawn}  # fmt: skip


def _submit(
    svc: Services, text: str, zones: list[str], start: datetime | None, *, title: str, priority: str, actor: str
) -> dict[str, Any]:
    """An item that waits for an approver whatever `[security] require_approval` says: nobody chose to
    send it. Rendered now, so the approver hears what would air; one the planner cannot place now (quiet
    hours, a full timeline) is kept as a draft for an officer to mend, rather than lost."""
    request = check_request(svc, text, zones, start, title=title, priority=priority, order=None)
    stored = speak(svc, request.text, request.voice)  # the commune's voice, recorded with the item
    with rendered_for(svc, stored.sha256, keep=False):
        now = svc.clock.now()
        with svc.db.session() as session:
            item = submitted_item(session, stored, request, actor=actor, now=now)
            try:
                plan_item(svc, session, item, now)
            except LoaError as exc:
                item.state, item.submitted_at, item.submitted_by = AnnouncementState.DRAFT, None, ""
                item.decision_reason = stored_reason(exc)[:500]
            audit(session, now, actor, "announcement.submit" if item.submitted_at else "announcement.draft",
                  announcement=item.id, zones=request.zone_ids, priority=priority)  # fmt: skip
            session.flush()
            return {"id": item.id}


def _referred(svc: Services, incoming: Incoming) -> list[ReceivedAlert]:
    """The earlier alerts an Update or a Cancel names that were taken (aired or waiting), from the same
    source only: a source that need not sign must not withdraw what a signing source aired."""
    found: list[ReceivedAlert] = []
    with svc.db.session() as session:
        for ref in incoming.references:
            q = select(ReceivedAlert).where(
                ReceivedAlert.source == incoming.source,
                ReceivedAlert.sender == ref.sender[:300],
                ReceivedAlert.identifier == ref.identifier[:300],
                ReceivedAlert.status.in_(("aired", "drafted")),
            )
            if ref.sent is not None:
                q = q.where(ReceivedAlert.sent == ref.sent)
            found.extend(session.scalars(q))
        session.expunge_all()
    return found


def _withdraw(svc: Services, rows: list[ReceivedAlert], actor: str, reason: str) -> list[int]:
    """Recall what of these alerts is planned or on air, send back what waits for an approver; mark
    them `cancelled`. The announcements withdrawn, by id."""
    done: list[int] = []
    for row in rows:
        if row.announcement_id is not None:
            with svc.db.session() as session:
                item = session.get(Announcement, row.announcement_id)
                state = item.state if item else None
            if state is AnnouncementState.APPROVED:
                recall(svc, row.announcement_id, actor=actor, reason=reason)
                done.append(row.announcement_id)
            elif state is AnnouncementState.AWAITING_APPROVAL:
                reject(svc, row.announcement_id, reason, actor=actor)
                done.append(row.announcement_id)
        cancelled = LoaError("alert_cancelled", {"by": reason[:MAX_DETAIL]})
        with svc.db.session() as session:
            stored = session.get(ReceivedAlert, row.id)
            if stored is not None:
                stored.status, stored.reason = "cancelled", stored_reason(cancelled)
    return done


# ---------------------------------------------------------------- TT39 bulletins


def tt39_bulletin(
    source: str,
    *,
    identifier: str,
    level: str,
    title: str,
    text: str,
    areas: list[str],
    sent: datetime,
    effective: datetime | None = None,
    expires: datetime | None = None,
) -> Incoming:
    """A bulletin of the provincial source information system (Thông tư 39/2020/TT-BTTTT) as an alert:
    its level is the province's choice; its areas are names or geocodes of `[alerts] areas`."""
    if level not in TT39_LEVELS:
        raise LoaError("bad_priority", {})
    codes = tuple(("", a) for a in areas)
    return Incoming(
        source=source, sender=f"tt39:{source}", identifier=identifier, sent=sent.astimezone(UTC), headline=title,
        description=text, effective=effective.astimezone(UTC) if effective else None,
        expires=expires.astimezone(UTC) if expires else None,
        areas=tuple(Area(a, codes[i : i + 1]) for i, a in enumerate(areas)),
        level=level, severity="Unknown", urgency="Unknown", certainty="Unknown",
    )  # fmt: skip


# ---------------------------------------------------------------- what people read


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _local(at: datetime) -> str:
    return to_local(at).strftime("%H:%M %d/%m/%Y")


def _row_view(row: ReceivedAlert, lang: str) -> dict[str, Any]:
    code, message = said(row.reason, lang)
    return {
        "id": row.id, "source": row.source, "sender": row.sender, "identifier": row.identifier,
        "sent": row.sent.isoformat(), "msg_type": row.msg_type, "references": row.references,
        "severity": row.severity, "urgency": row.urgency, "certainty": row.certainty, "headline": row.headline,
        "expires": _iso(row.expires), "received_at": row.received_at.isoformat(), "status": row.status,
        "reason_code": code, "reason": message, "announcement": row.announcement_id,
    }  # fmt: skip


def list_alerts(svc: Services, *, limit: int = 50, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    """The latest alerts received, newest first, with what became of each and why."""
    limit = max(1, min(limit, 500))
    with svc.db.session() as session:
        rows = session.scalars(select(ReceivedAlert).order_by(ReceivedAlert.id.desc()).limit(limit))
        return [_row_view(r, lang) for r in rows]
