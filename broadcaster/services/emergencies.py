"""Emergencies need a second look: an emergency sounds in every village it names, at night too, three
times over, and pre-empts whatever is on air, so a slip of the finger or a stolen officer's session
must not be enough to send one.

Only the roles in `[security] emergency_roles` (admin and approver by default) may send one, and only
in two steps: the first request is answered with what would happen (the villages, the repeats) and a
short-lived confirmation code bound to that person and that exact request; the same request with the
code and a reason sends it. Every step is in the audit log with who and why: `emergency.asked`,
`emergency.refused`, and `emergency.confirmed` in the same transaction as the announcement it sends.
The command line asks on its terminal instead (broadcaster/cli/commands.py); its person is the
operating-system account, authenticated by the server's own login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broadcaster.db import audit, villages_of
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import Principal
from broadcaster.services.inputs import check_text
from broadcaster.services.zones import resolve_zones, zone_names
from schedules.clock import Clock

MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Reach:
    """What an emergency to these zones would do, as the person confirming it must see it."""

    villages: tuple[str, ...]  # names people know, in order
    repeats: int


def reach(svc: Services, zones: list[str]) -> Reach:
    with svc.db.session() as session:
        ids = dict.fromkeys(v for z in resolve_zones(session, zones) for v in villages_of(session, z))
        names = zone_names(session)
    return Reach(tuple(names.get(v, v) for v in ids), svc.config.schedule.emergency_repeats)


def may_send(svc: Services, principal: Principal) -> bool:
    return principal.role.value in svc.config.security.emergency_roles


def fingerprint(**request: Any) -> str:
    """The request a confirmation is for: the same fields give the same print, any change another."""
    canonical = json.dumps(request, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Confirmations:
    """Confirmation codes: an expiry and an HMAC over (person, request, expiry) with a key that lives
    only in this process, each accepted once. Nothing is stored: a restart simply asks again."""

    def __init__(self, clock: Clock, ttl_s: float) -> None:
        self.clock = clock
        self.ttl = timedelta(seconds=ttl_s)
        self._key = secrets.token_bytes(32)
        self._used: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def _mac(self, user_id: int, print_: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{user_id}|{print_}|{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, user_id: int, print_: str) -> str:
        expires = int((self.clock.now() + self.ttl).timestamp())
        return f"{expires}.{self._mac(user_id, print_, expires)}"

    def accept(self, code: str, user_id: int, print_: str) -> bool:
        """True once for a code issued to this person for this request and not yet expired."""
        expires_text, _, mac = code.partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12:
            return False
        expires = int(expires_text)
        now = self.clock.now()
        if expires < now.timestamp() or not hmac.compare_digest(mac, self._mac(user_id, print_, expires)):
            return False
        with self._lock:
            for old in [c for c, until in self._used.items() if until < now]:
                del self._used[old]
            if code in self._used:
                return False
            self._used[code] = now + self.ttl
        return True


def check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise LoaError("reason_required", {})
    check_text(text, "reason", MAX_REASON_CHARS)
    return text


def check_sender(svc: Services, principal: Principal, zones: list[str], *, title: str = "") -> None:
    """Refused (403, and in the log) unless this person's role may send an emergency at all."""
    if may_send(svc, principal):
        return
    with svc.db.session() as session:
        audit(session, svc.clock.now(), principal.username, "emergency.refused", why="role",
              role=principal.role.value, zones=zones, title=title)  # fmt: skip
    roles = ", ".join(svc.config.security.emergency_roles)
    raise LoaError("forbidden.emergency", {"roles": roles, "role": principal.role.value}, status=403)


def confirm(
    svc: Services,
    confirmations: Confirmations,
    principal: Principal,
    zones: list[str],
    print_: str,
    confirmation: str | None,
    reason: str | None,
    *,
    title: str = "",
) -> str:
    """The API's gate for one emergency request: refused (403) to roles that may not send one, asked
    to confirm (409, with the villages, the repeats and a code), or let through with its reason, which
    the caller hands to `announce` so that `emergency.confirmed` is written with the announcement."""
    check_sender(svc, principal, zones, title=title)
    now = svc.clock.now()
    where = reach(svc, zones)
    expires_s = int(confirmations.ttl.total_seconds())
    if not confirmation:
        with svc.db.session() as session:
            audit(session, now, principal.username, "emergency.asked", zones=zones, title=title,
                  villages=list(where.villages), repeats=where.repeats)  # fmt: skip
        code = confirmations.issue(principal.user_id, print_)
        villages, repeats = ", ".join(where.villages), where.repeats
        raise LoaError(
            "confirm_emergency",
            {"villages": villages, "repeats": repeats, "confirmation": code, "expires_s": expires_s},
            status=409,
        )
    text = check_reason(reason)  # before the code is spent: a forgotten reason is not a second attempt
    if not confirmations.accept(confirmation, principal.user_id, print_):
        with svc.db.session() as session:
            audit(session, now, principal.username, "emergency.refused", why="confirmation", zones=zones,
                  title=title, reason=text)  # fmt: skip
        code = confirmations.issue(principal.user_id, print_)
        villages, repeats = ", ".join(where.villages), where.repeats
        raise LoaError(
            "confirm_emergency.again",
            {"villages": villages, "repeats": repeats, "confirmation": code, "expires_s": expires_s},
            status=409,
        )
    return text


def refused_after_confirming(svc: Services, actor: str, zones: list[str], reason: str, exc: LoaError) -> None:
    """A confirmed emergency that could not be stored (no room, bad audio): the log says so."""
    with svc.db.session() as session:
        audit(session, svc.clock.now(), actor, "emergency.refused", why=exc.code, zones=zones, reason=reason)


def note(svc: Services, actor: str, action: str, **detail: Any) -> None:
    """An emergency step the command line took on its terminal (asked, refused), in the audit log."""
    with svc.db.session() as session:
        audit(session, svc.clock.now(), actor, action, **detail)
