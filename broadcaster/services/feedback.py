"""What villagers say about what they heard: the QR codes that open the feedback form, the form's
checks against spam, and the officer's list where each is handled with a reply (docs/villagers.md).

A QR code names a village (`thon`) or one speaker (`loa`) and carries a token: the first 96 bits of an
HMAC-SHA256, keyed by a secret made once in data_dir/keys, over what it names. It cannot be guessed
from a village's or speaker's id, needs no table (a lost sheet is printed again, the same), and all
codes are replaced at once by deleting the secret file. A form without a valid token stores nothing.

People are not identified: their address is kept only as a keyed hash (for the officer to see that
ten complaints came from one phone), a phone number only when they type one, and both go when the
row does, after `[villagers] feedback_retention_days` (`purge_feedback`, a daemon chore). Phone
numbers are shown to officers and admins alone (`may_see_phone`).

Floods are refused by `FeedbackLimiter`: per address and per QR code, per hour, counted in memory
(a restart forgets the counts; one daemon process serves the forms, so memory is enough).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select

from broadcaster.broker.credentials import load_or_create_secret
from broadcaster.config import Config
from broadcaster.db import Device, DeviceKind, Feedback, Role, Zone, ZoneKind, audit
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.inputs import check_text, fits_sql_int
from schedules.clock import Clock

CATEGORIES = ("unclear", "too_loud", "broken", "content")  # không nghe rõ, quá to, loa hỏng, góp ý nội dung
MAX_TEXT_CHARS = 1000
MAX_REPLY_CHARS = 1000
SECRET_FILE = "feedback-qr.secret"
QR_PREFIX = "/y-kien"
Kind = Literal["thon", "loa"]  # a village's QR code, a speaker's
KINDS: tuple[Kind, ...] = ("thon", "loa")
_PHONE = re.compile(r"^\+?\d{8,15}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16}$")
PHONE_ROLES = frozenset({Role.OFFICER, Role.ADMIN})

_secrets: dict[Path, bytes] = {}
_secrets_lock = threading.Lock()


def _secret(config: Config) -> bytes:
    path = (Path(config.general.data_dir) / "keys" / SECRET_FILE).resolve()
    with _secrets_lock:
        if path not in _secrets:
            _secrets[path] = load_or_create_secret(path).encode("utf-8")
        return _secrets[path]


def _mac(config: Config, message: str) -> bytes:
    return hmac.new(_secret(config), message.encode("utf-8"), hashlib.sha256).digest()


def qr_token(config: Config, kind: Kind, target: str) -> str:
    """The token a QR code for `kind`/`target` carries: 16 URL-safe characters (96 bits)."""
    return base64.urlsafe_b64encode(_mac(config, f"feedback-qr:{kind}:{target}")[:12]).decode("ascii")


def address_hash(config: Config, address: str) -> str:
    """An address as the feedback table keeps it: keyed, so the table alone does not give it back."""
    return _mac(config, f"feedback-address:{address}").hex()[:32]


def public_base_url(config: Config) -> str:
    """Where villagers' phones reach the public pages: `[villagers] public_url`, else the audio URL
    devices use, else the audio listener's configured address (the port may differ if it was taken)."""
    url = config.villagers.public_url or config.http.audio_url
    if not url:
        url = f"http://{config.http.audio_host}:{config.http.audio_port}"
    return url.rstrip("/")


def is_loopback(url: str) -> bool:
    """A URL only this server can open: useless in a QR code a villager scans."""
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "0.0.0.0", "::1", "::") or host.startswith("127.")


@dataclass(frozen=True)
class QrTarget:
    """What a QR code names: a village, or one speaker (and its village)."""

    kind: Kind
    id: str
    village_id: str
    village_name: str
    device_id: str | None = None
    device_name: str = ""

    def path(self, config: Config) -> str:
        return f"{QR_PREFIX}/{self.kind}/{self.id}/{qr_token(config, self.kind, self.id)}"


def resolve_qr(svc: Services, kind: str, target: str, token: str) -> QrTarget:
    """The village or speaker a scanned code names, once its token is checked (in constant time);
    a wrong token, or a village or speaker that is gone, is `not_found.feedback_qr` (404)."""
    refused = LoaError("not_found.feedback_qr", {}, status=404)
    if kind not in KINDS or not _TOKEN.match(token) or len(target) > 64:
        raise refused
    if not hmac.compare_digest(token, qr_token(svc.config, kind, target)):
        raise refused
    with svc.db.session() as session:
        if kind == "thon":
            zone = session.get(Zone, target)
            if zone is None or zone.kind is not ZoneKind.VILLAGE:
                raise refused
            return QrTarget("thon", zone.id, zone.id, zone.name)
        device = session.get(Device, target)
        if device is None or device.kind is not DeviceKind.SPEAKER:
            raise refused
        village = session.get(Zone, device.village_id)
        village_name = village.name if village else device.village_id
        return QrTarget("loa", device.id, device.village_id, village_name, device.id, device.name or device.id)


def qr_sheet(svc: Services) -> list[dict[str, Any]]:
    """Every village and its speakers with their feedback QR's path, for the technician's sheet."""
    with svc.db.session() as session:
        villages = session.scalars(select(Zone).where(Zone.kind == ZoneKind.VILLAGE).order_by(Zone.id)).all()
        speakers = session.scalars(
            select(Device).where(Device.kind == DeviceKind.SPEAKER).order_by(Device.village_id, Device.id)
        ).all()
        out = []
        for v in villages:
            target = QrTarget("thon", v.id, v.id, v.name)
            out.append(
                {
                    "id": v.id,
                    "name": v.name,
                    "path": target.path(svc.config),
                    "speakers": [
                        {
                            "id": d.id,
                            "name": d.name or d.id,
                            "path": QrTarget("loa", d.id, v.id, v.name, d.id).path(svc.config),
                        }
                        for d in speakers
                        if d.village_id == v.id
                    ],
                }
            )
        return out


# ---------------------------------------------------------------- floods


class FeedbackLimiter:
    """At most `per_address` forms an hour from one address and `per_qr` through one QR code. In
    memory: what a flood costs is bounded (at most `max_keys` keys, the oldest forgotten first), and
    a restart forgets the counts, which a flood cannot use to any end but a few more rows."""

    def __init__(
        self,
        clock: Clock,
        per_address: int,
        per_qr: int,
        window: timedelta = timedelta(hours=1),
        max_keys: int = 10_000,
    ) -> None:
        self.clock = clock
        self.limits = {"address": per_address, "qr": per_qr}
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    def take(self, address: str, qr: str | None) -> None:
        """Count one form from `address` (through the code `qr`, if it was valid), or refuse it with
        `too_many_feedback` (429) and count nothing."""
        now = self.clock.now()
        keys = [("address", address)] + ([("qr", qr)] if qr else [])
        with self._lock:
            waits = []
            for key in keys:
                hits = self._hits.get(key)
                if hits is None:
                    continue
                while hits and hits[0] <= now - self.window:
                    hits.popleft()
                if len(hits) >= self.limits[key[0]]:
                    waits.append((hits[0] + self.window - now).total_seconds())
            if waits:
                wait = max(1, math.ceil(max(waits)))
                raise LoaError("too_many_feedback", {"minutes": -(-wait // 60)}, status=429)
            for key in keys:
                self._hits.setdefault(key, deque()).append(now)
            while len(self._hits) > self.max_keys:
                del self._hits[next(iter(self._hits))]


# ---------------------------------------------------------------- a villager's form


def clean_phone(phone: str) -> str:
    """A phone number as people write it (0912 345 678, 0912.345.678, +84 912-345-678), kept as its
    digits; empty when none was given."""
    compact = re.sub(r"[\s.\-()]", "", phone or "")
    if not compact:
        return ""
    if not _PHONE.match(compact):
        raise LoaError("bad_phone", {})
    return compact


def submit_feedback(
    svc: Services,
    target: QrTarget,
    category: str,
    text: str = "",
    phone: str = "",
    *,
    client_hash: str = "",
    honeypot: str = "",
) -> int:
    """Store a villager's feedback about `target` (a resolved QR code); its id. A filled honeypot field
    (people never see it; robots fill every field) is refused like bad input: nothing is stored."""
    if honeypot.strip():
        raise LoaError("feedback_refused", {}, status=400)
    if category not in CATEGORIES:
        raise LoaError("feedback_category", {}, status=400)
    text = check_text((text or "").strip(), "text", MAX_TEXT_CHARS)
    phone = clean_phone(phone)
    with svc.db.session() as session:
        row = Feedback(
            village_id=target.village_id,
            device_id=target.device_id,
            category=category,
            text=text,
            phone=phone,
            created_at=svc.clock.now(),
            client_hash=client_hash[:32],
        )
        session.add(row)
        session.flush()
        return row.id


# ---------------------------------------------------------------- the officer's side


def may_see_phone(who: Principal | None) -> bool:
    """Officers and admins call people back; viewers and approvers do not need their numbers."""
    return who is not None and who.role in PHONE_ROLES


def _view(row: Feedback, names: dict[str, str], show_phone: bool) -> dict[str, Any]:
    return {
        "id": row.id,
        "village": row.village_id,
        "village_name": names.get(row.village_id, row.village_id),
        "device": row.device_id,
        "category": row.category,
        "text": row.text,
        "phone": row.phone if show_phone else None,
        "has_phone": bool(row.phone),
        "created_at": row.created_at.isoformat(),
        "handled_at": row.handled_at.isoformat() if row.handled_at else None,
        "handled_by": row.handled_by,
        "reply": row.reply,
        "same_sender": row.client_hash,
    }


def list_feedback(
    svc: Services, *, state: str = "open", show_phone: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    """Feedback newest first: `open` (not handled yet), `handled` or `all`. Phone numbers only with
    `show_phone` (the route decides, by `may_see_phone`)."""
    if state not in ("open", "handled", "all"):
        raise LoaError("invalid_request", {"fields": "state"}, status=422)
    q = select(Feedback).order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(limit)
    if state == "open":
        q = q.where(Feedback.handled_at.is_(None))
    elif state == "handled":
        q = q.where(Feedback.handled_at.is_not(None))
    with svc.db.session() as session:
        names = dict(session.execute(select(Zone.id, Zone.name)).all())
        return [_view(row, names, show_phone) for row in session.scalars(q)]


def open_feedback_by_device(svc: Services) -> dict[str | None, dict[str, list[dict[str, Any]]]]:
    """What is not handled yet, for the device board: {village: {device or "": [feedback]}}, newest
    first, without phone numbers (the board is every reader's)."""
    out: dict[str | None, dict[str, list[dict[str, Any]]]] = {}
    for item in list_feedback(svc, state="open", show_phone=False, limit=500):
        out.setdefault(item["village"], {}).setdefault(item["device"] or "", []).append(item)
    return out


def handle_feedback(svc: Services, feedback_id: int, reply: str, *, actor: str) -> None:
    """Mark feedback handled with the officer's reply (required: what was done, for the record), audited
    under the person. Handling it again replaces the reply, audited too."""
    reply = check_text((reply or "").strip(), "reply", MAX_REPLY_CHARS)
    if not reply:
        raise LoaError("reply_required", {}, status=400)
    if not fits_sql_int(feedback_id):
        raise LoaError("not_found.feedback", {"id": feedback_id}, status=404)
    now = svc.clock.now()
    with svc.db.session() as session:
        row = session.get(Feedback, feedback_id)
        if row is None:
            raise LoaError("not_found.feedback", {"id": feedback_id}, status=404)
        again = row.handled_at is not None
        row.handled_at, row.handled_by, row.reply = now, actor, reply
        audit(session, now, actor, "feedback.handle", feedback=feedback_id, village=row.village_id,
              device=row.device_id, again=again, reply=reply)  # fmt: skip


def count_by_village(svc: Services, start: datetime, end: datetime) -> dict[str, int]:
    """Feedback received in [start, end) per village id, every village listed (0 when none): for the
    commune's report."""
    with svc.db.session() as session:
        counts = dict(
            session.execute(
                select(Feedback.village_id, func.count())
                .where(Feedback.created_at >= start, Feedback.created_at < end)
                .group_by(Feedback.village_id)
            ).all()
        )
        villages = session.scalars(select(Zone.id).where(Zone.kind == ZoneKind.VILLAGE).order_by(Zone.id)).all()
    return {v: int(counts.get(v, 0)) for v in [*villages, *sorted(set(counts) - set(villages))]}


def purge_feedback(svc: Services) -> int:
    """Delete feedback older than `[villagers] feedback_retention_days` (phone numbers and address hashes
    with it); how many rows went. A daemon chore."""
    cutoff = svc.clock.now() - timedelta(days=svc.config.villagers.feedback_retention_days)
    with svc.db.session() as session:
        result = session.execute(delete(Feedback).where(Feedback.created_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)
