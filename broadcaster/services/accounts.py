"""The people who may make the speakers talk: accounts and roles, passwords, sign-in sessions and API
tokens, whichever door they come through (the HTTP API, the web desk, `loa user` and `loa token`).

Passwords are kept as argon2id hashes (argon2-cffi's RFC 9106 parameters), because a stolen database
must not give away the officers' passwords, which people reuse. Session and token secrets are 256
random bits, so their SHA-256 is all that is stored: there is nothing to brute-force, and a lookup by
hash is one index probe per request instead of an argon2 run.

`by` names who acts: a `Principal` when a person signed in through the API, or None for the command
line, whose user the operating system has already authenticated (whoever can run `loa` on the
server can read the database anyway); the audit log then names that operating-system account.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from broadcaster.db import ApiToken, Role, User, UserSession, audit
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.inputs import check_text, fits_sql_int
from schedules.clock import Clock

Permission = Literal["read", "compose", "approve", "admin"]

# What each role may do. An admin also composes and approves: in a small commune the chairman is often
# the only one who can, and the approval workflow (next) will keep a person from approving their own item.
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({"read"}),
    Role.OFFICER: frozenset({"read", "compose"}),
    Role.APPROVER: frozenset({"read", "approve"}),
    Role.ADMIN: frozenset({"read", "compose", "approve", "admin"}),
}
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 8  # NIST SP 800-63B's floor for a password a person chooses
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is an attack on the CPU
TOKEN_PREFIX = "loa_"  # so a leaked token is recognisable in logs and secret scanners
# Rights a token may carry beyond its role, given by an admin only: "alerts:ingest" posts official alerts
# (services/alerts.py), which may air an emergency with no person confirming it.
SCOPES = frozenset({"alerts:ingest"})
TOUCH_EVERY = timedelta(seconds=60)  # last-used times are for people, not worth a write per request

_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so a wrong name costs as long as a wrong password and the
    time of an answer does not tell which names exist. Made on first use: every `loa` command imports
    this module, and one argon2 run is a noticeable part of a second."""
    return _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """Who a request acts for, once authenticated; `role` is what they may do through this door (a
    token's cap within its owner's role)."""

    user_id: int
    username: str
    display_name: str
    role: Role
    via: Literal["session", "token"]
    session_id: int | None = None
    csrf_token: str = ""
    token_id: int | None = None
    must_change_password: bool = False
    scopes: frozenset[str] = frozenset()  # a token's rights beyond its role (SCOPES)

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _role(value: str | Role) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        raise LoaError("bad_role", {}) from exc


def _capped(owner: Role, cap: Role) -> Role:
    """What a token with role `cap` may do for an owner who is `owner` now: never more than either."""
    if GRANTS[cap] <= GRANTS[owner]:
        return cap
    if GRANTS[owner] <= GRANTS[cap]:
        return owner
    return Role.VIEWER


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise LoaError("password_too_short", {"min": MIN_PASSWORD})
    if len(password) > MAX_PASSWORD:
        raise LoaError("password_too_long", {"max": MAX_PASSWORD})
    check_text(password, "password", MAX_PASSWORD)
    return password


def generate_password() -> str:
    """A password to be read off a screen and typed once: 16 characters of letters and digits."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I to misread
    return "".join(secrets.choice(alphabet) for _ in range(16))


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise LoaError("not_found.user", {"user": username}, status=404)
    return user


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "active": user.active,
        "must_change_password": user.must_change_password,
        "created_at": user.created_at.isoformat(),
    }


# ---------------------------------------------------------------- users


def account(svc: Services, principal: Principal) -> dict[str, Any]:
    """The signed-in person's own account, as it is now."""
    with svc.db.session() as session:
        user = session.get(User, principal.user_id)
        if user is None:
            raise LoaError("not_found.user", {"user": principal.username}, status=404)
        return user_view(user)


def create_user(
    svc: Services,
    username: str,
    role: str | Role,
    password: str,
    *,
    actor: str,
    display_name: str = "",
    must_change_password: bool = False,
    by: Principal | None = None,
) -> dict[str, Any]:
    """A new account; `must_change_password` for a generated password someone else has seen."""
    _require(by, "admin")
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise LoaError("bad_username", {})
    the_role = _role(role)
    check_text(display_name, "display_name", 200)
    hashed = _HASHER.hash(_check_password(password))
    now = svc.clock.now()
    with svc.db.session() as session:
        if session.scalar(select(User.id).where(User.username == name)) is not None:
            raise LoaError("user_exists", {"user": name}, status=409)
        user = User(
            username=name,
            display_name=display_name.strip() or name,
            role=the_role,
            password_hash=hashed,
            must_change_password=must_change_password,
            active=True,
            created_at=now,
            updated_at=now,
        )
        session.add(user)
        session.flush()
        audit(session, now, actor, "user.add", user=name, role=the_role.value)
        return user_view(user)


def list_users(svc: Services, *, by: Principal | None = None) -> list[dict[str, Any]]:
    _require(by, "admin")
    with svc.db.session() as session:
        return [user_view(u) for u in session.scalars(select(User).order_by(User.username))]


def has_users(svc: Services) -> bool:
    with svc.db.session() as session:
        return bool(session.scalar(select(func.count()).select_from(User)))


def set_password(
    svc: Services, username: str, password: str, *, actor: str, must_change_password: bool = False
) -> None:
    """A new password (the command line's `loa user passwd`); every session of the user ends, so a
    password changed because it leaked shuts out whoever used it."""
    hashed = _HASHER.hash(_check_password(password))
    now = svc.clock.now()
    with svc.db.session() as session:
        user = _user(session, username)
        user.password_hash = hashed
        user.must_change_password = must_change_password
        user.updated_at = now
        session.execute(delete(UserSession).where(UserSession.user_id == user.id))
        audit(session, now, actor, "user.passwd", user=user.username)


def change_own_password(
    svc: Services, throttle: LoginThrottle, principal: Principal, old: str, new: str, address: str
) -> None:
    """A signed-in person replaces their password (the one-time one, or any): the old one must match,
    so a session left open on the office computer cannot lock its owner out, nor be used to guess the
    password (the guesses count with the sign-in's, per name)."""
    key = f"user:{principal.username}"
    if wait := throttle.wait_s(key, f"address:{address}"):
        raise LoaError("too_many_attempts", {"retry_after_s": wait}, status=429)
    with svc.db.session() as session:
        user = session.get(User, principal.user_id)
        known = user.password_hash if user is not None else _dummy_hash()
    if user is None or not _verify(known, old):
        throttle.failed(key, f"address:{address}")
        with svc.db.session() as session:
            audit(session, svc.clock.now(), principal.username, "login.failed", user=principal.username,
                  address=address, to="change the password")  # fmt: skip
        raise LoaError("bad_credentials", {}, status=403)
    hashed = _HASHER.hash(_check_password(new))
    now = svc.clock.now()
    with svc.db.session() as session:
        user = session.get(User, principal.user_id)
        assert user is not None
        user.password_hash = hashed
        user.must_change_password = False
        user.updated_at = now
        # other sessions end; this one goes on
        session.execute(
            delete(UserSession).where(UserSession.user_id == user.id, UserSession.id != principal.session_id)
        )
        audit(session, now, principal.username, "user.passwd", user=user.username)


def disable_user(svc: Services, username: str, *, actor: str) -> None:
    """No more sign-ins, sessions or tokens for this person; the rows stay for the audit trail."""
    now = svc.clock.now()
    with svc.db.session() as session:
        user = _user(session, username)
        user.active = False
        user.updated_at = now
        session.execute(delete(UserSession).where(UserSession.user_id == user.id))
        audit(session, now, actor, "user.disable", user=user.username)


def ensure_demo_admin(svc: Services, *, actor: str = "make run") -> str | None:
    """The simulated commune's first admin, `admin`, with a generated password to be shown once and
    changed at the first sign-in; None when anyone has an account already (a real commune creates its
    first admin with `loa user add`)."""
    if has_users(svc):
        return None
    password = generate_password()
    create_user(
        svc, "admin", Role.ADMIN, password, actor=actor, display_name="Quản trị (mô phỏng)", must_change_password=True
    )
    return password


# ---------------------------------------------------------------- signing in


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class LoginThrottle:
    """Failed sign-ins per user name and per client address: `failures` within `window_s` and that name
    or address must wait until the oldest of them is out of the window. Kept in memory (one daemon per
    data folder), bounded in size, so an attack costs it nothing more than an ordinary day."""

    MAX_KEYS = 10_000

    def __init__(self, clock: Clock, failures: int, window_s: float) -> None:
        self.clock = clock
        self.failures = failures
        self.window = timedelta(seconds=window_s)
        self._seen: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._seen.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def wait_s(self, *keys: str) -> int:
        """Seconds until these keys may try again; 0 if they may now."""
        now = self.clock.now()
        with self._lock:
            waits = [
                (times[-self.failures] + self.window - now).total_seconds()
                for key in keys
                if len(times := self._recent(key, now)) >= self.failures
            ]
        return max([0, *(int(w) + 1 for w in waits)])

    def failed(self, *keys: str) -> None:
        now = self.clock.now()
        with self._lock:
            if len(self._seen) >= self.MAX_KEYS:  # forget the quietest keys first
                for stale in [k for k, t in self._seen.items() if not self._recent(k, now)]:
                    del self._seen[stale]
                while len(self._seen) >= self.MAX_KEYS:
                    del self._seen[next(iter(self._seen))]
            for key in keys:
                times = self._recent(key, now)
                times.append(now)
                self._seen[key] = times

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)


@dataclass(frozen=True)
class SignedIn:
    secret: str  # for the cookie; never stored
    principal: Principal
    expires_at: datetime


def sign_in(svc: Services, throttle: LoginThrottle, username: str, password: str, address: str) -> SignedIn:
    """Check the password and open a session. Every failure is audited with the name tried and the
    address; after too many, that name and that address wait (429) without their passwords being
    checked, so guessing is slow whichever of the two an attacker varies."""
    name = username.strip().lower()[:64]
    keys = (f"user:{name}", f"address:{address}")
    now = svc.clock.now()
    wait = throttle.wait_s(*keys)
    if wait:  # not audited one by one: the failures that paused it were, and a flood must cost no writes
        raise LoaError("too_many_attempts", {"retry_after_s": wait}, status=429)
    with svc.db.session() as session:
        user = session.scalar(select(User).where(User.username == name))
        hashed = user.password_hash if user is not None and user.active else ""
    if not _verify(hashed, password) or user is None:
        throttle.failed(*keys)
        with svc.db.session() as session:
            audit(session, now, "anonymous", "login.failed", user=name, address=address)
        raise LoaError("bad_credentials", {}, status=401)
    throttle.succeeded(keys[0])
    if _HASHER.check_needs_rehash(hashed):  # argon2's parameters were raised since it was hashed
        with svc.db.session() as session:
            stored = session.get(User, user.id)
            if stored is not None:
                stored.password_hash = _HASHER.hash(password)
    return _open_session(svc, user, address)


def _open_session(svc: Services, user: User, address: str) -> SignedIn:
    sec = svc.config.security
    now = svc.clock.now()
    secret = secrets.token_urlsafe(32)
    row = UserSession(
        secret_sha256=_digest(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(hours=sec.session_hours),
        last_seen_at=now,
    )
    with svc.db.session() as session:
        session.execute(delete(UserSession).where(UserSession.expires_at <= now))  # housekeeping
        session.add(row)
        session.flush()
        audit(session, now, user.username, "login", address=address)
        principal = _session_principal(user, row)
    return SignedIn(secret, principal, row.expires_at)


def _session_principal(user: User, row: UserSession) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        via="session",
        session_id=row.id,
        csrf_token=row.csrf_token,
        must_change_password=user.must_change_password,
    )


def session_principal(svc: Services, secret: str) -> Principal | None:
    """Who holds this session cookie, if the session is still open: not past its end, not idle too
    long, its user still active."""
    if not secret or len(secret) > 200:
        return None
    now = svc.clock.now()
    idle = timedelta(minutes=svc.config.security.session_idle_minutes)
    with svc.db.session() as session:
        found = session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.secret_sha256 == _digest(secret))
        ).one_or_none()
        if found is None:
            return None
        row, user = found
        if not user.active or row.expires_at <= now or row.last_seen_at + idle <= now:
            session.delete(row)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
        return _session_principal(user, row)


def sign_out(svc: Services, principal: Principal) -> None:
    now = svc.clock.now()
    with svc.db.session() as session:
        session.execute(delete(UserSession).where(UserSession.id == principal.session_id))
        audit(session, now, principal.username, "logout")


def same_secret(given: str, expected: str) -> bool:
    """A comparison whose time does not tell how much of the guess was right."""
    return bool(expected) and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


# ---------------------------------------------------------------- API tokens


def _require(by: Principal | None, permission: Permission) -> None:
    if by is not None and not by.may(permission):
        raise LoaError("forbidden", {"role": by.role.value}, status=403)


def require(by: Principal | None, permission: Permission) -> None:
    """Refused (403 `forbidden`) unless `by` may do `permission`; None is the command line, whose
    person the server's own login has authenticated (see the module)."""
    _require(by, permission)


def token_view(token: ApiToken, owner: str) -> dict[str, Any]:
    return {
        "id": token.id,
        "user": owner,
        "name": token.name,
        "role": token.role.value,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        "scopes": _scopes(token.scopes),
    }


def _scopes(stored: str) -> list[str]:
    return sorted(s for s in stored.split(",") if s)


def issue_token(
    svc: Services,
    username: str,
    name: str,
    role: str | Role | None = None,
    *,
    actor: str,
    by: Principal | None = None,
    scopes: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """A new token for `username`, acting at most as `role` (default: the owner's role). The secret is
    in the answer and nowhere else: only its SHA-256 is stored. `scopes` (SCOPES) are rights beyond the
    role that only an admin gives (or the server's operator)."""
    if not name.strip():
        raise LoaError("empty_name.token", {})
    unknown = sorted(set(scopes) - SCOPES)
    if unknown:
        raise LoaError("bad_scope", {"scope": ", ".join(unknown), "known": ", ".join(sorted(SCOPES))})
    if scopes and by is not None and not by.may("admin"):
        raise LoaError("forbidden.token_scope", {}, status=403)
    check_text(name, "name", 100)
    with svc.db.session() as session:
        owner = _user(session, username)
        if by is not None and by.user_id != owner.id and not by.may("admin"):
            raise LoaError("forbidden.other_user", {}, status=403)
        cap = owner.role if role is None else _role(role)
        ceiling = owner.role if by is None else _capped(owner.role, by.role) if by.user_id == owner.id else owner.role
        if not GRANTS[cap] <= GRANTS[ceiling] or not owner.active:
            raise LoaError("forbidden.token_role", {"role": ceiling.value}, status=403)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = svc.clock.now()
        token = ApiToken(user_id=owner.id, name=name.strip(), role=cap, secret_sha256=_digest(secret), created_at=now,
                         scopes=",".join(sorted(set(scopes))))  # fmt: skip
        session.add(token)
        session.flush()
        audit(session, now, actor, "token.add", token=token.id, user=owner.username, name=token.name, role=cap.value,
              **({"scopes": _scopes(token.scopes)} if scopes else {}))  # fmt: skip
        return {**token_view(token, owner.username), "secret": secret}


def list_tokens(svc: Services, username: str | None = None, *, by: Principal | None = None) -> list[dict[str, Any]]:
    """Tokens, newest first: a person's own, or (for an admin or the command line) anyone's."""
    with svc.db.session() as session:
        query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
        if by is not None and not by.may("admin"):
            query = query.where(ApiToken.user_id == by.user_id)
        if username:
            query = query.where(User.id == _user(session, username).id)
        return [token_view(t, owner) for t, owner in session.execute(query.order_by(ApiToken.id.desc()))]


def revoke_token(svc: Services, token_id: int, *, actor: str, by: Principal | None = None) -> dict[str, Any]:
    """From now on the token is refused, whoever holds a copy of it."""
    now = svc.clock.now()
    with svc.db.session() as session:
        token = session.get(ApiToken, token_id) if fits_sql_int(token_id) else None
        if token is None or (by is not None and token.user_id != by.user_id and not by.may("admin")):
            raise LoaError("not_found.token", {"id": token_id}, status=404)  # others' tokens are not even named
        owner = session.get(User, token.user_id)
        assert owner is not None
        if token.revoked_at is None:
            token.revoked_at = now
            audit(session, now, actor, "token.revoke", token=token.id, user=owner.username)
        return token_view(token, owner.username)


def token_principal(svc: Services, secret: str) -> Principal | None:
    """Who an `Authorization: Bearer` token acts for, if it is known, not revoked and its owner active."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    now = svc.clock.now()
    with svc.db.session() as session:
        found = session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.secret_sha256 == _digest(secret))
        ).one_or_none()
        if found is None:
            return None
        token, user = found
        if token.revoked_at is not None or not user.active:
            return None
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
            token.last_used_at = now
        return Principal(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=_capped(user.role, token.role),
            via="token",
            token_id=token.id,
            scopes=frozenset(_scopes(token.scopes)),
        )
