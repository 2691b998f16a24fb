"""Accounts, judged by what is stored: a stolen database gives away no password and no usable secret,
and every refusal leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from broadcaster.db import ApiToken, AuditEntry, Role, User, UserSession
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import (
    LoginThrottle,
    Principal,
    create_user,
    ensure_demo_admin,
    issue_token,
    list_tokens,
    session_principal,
    set_password,
    sign_in,
    token_principal,
)
from schedules.clock import FakeClock
from tests.broadcaster.conftest import PASSWORD, make_services

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def svc(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = make_services(tmp_path, database_url, FakeClock(T0))
    yield services
    services.db.dispose()


def _dump(svc: Services) -> str:
    """Everything the account tables hold, as an attacker with a copy of the database reads it."""
    with svc.db.engine.connect() as conn:
        return repr([conn.execute(text(f"SELECT * FROM {t}")).all() for t in ("users", "api_tokens", "user_sessions")])


def test_a_stolen_database_holds_no_password_and_no_usable_secret(svc: Services) -> None:
    create_user(svc, "can-bo", Role.OFFICER, PASSWORD, actor="root")
    token = issue_token(svc, "can-bo", "kịch bản", actor="root")["secret"]
    signed = sign_in(svc, LoginThrottle(svc.clock, 5, 300), "can-bo", PASSWORD, "10.0.0.5")
    dump = _dump(svc)
    for secret in (PASSWORD, token, signed.secret, token.removeprefix("loa_")):
        assert secret not in dump
    with svc.db.session() as s:
        assert s.scalars(select(User.password_hash)).one().startswith("$argon2id$")
    # ...and what is stored does not open the door: a hash given as the secret is nobody
    with svc.db.session() as s:
        stored_token = s.scalars(select(ApiToken.secret_sha256)).one()
        stored_session = s.scalars(select(UserSession.secret_sha256)).one()
    assert token_principal(svc, "loa_" + stored_token) is None and token_principal(svc, stored_token) is None
    assert session_principal(svc, stored_session) is None
    assert token_principal(svc, token) is not None and session_principal(svc, signed.secret) is not None


@pytest.mark.parametrize(
    ("username", "role", "password", "code"),
    [
        ("Cán Bộ", "officer", PASSWORD, "bad_username"),
        ("can bo", "officer", PASSWORD, "bad_username"),
        ("-can-bo", "officer", PASSWORD, "bad_username"),
        ("a" * 65, "officer", PASSWORD, "bad_username"),
        ("can-bo", "boss", PASSWORD, "bad_role"),
        ("can-bo", "officer", "ngắn", "password_too_short"),
        ("can-bo", "officer", "x" * 2000, "password_too_long"),
        ("can-bo", "officer", "mật khẩu \ud800 dài", "bad_text"),
    ],
)
def test_a_bad_account_is_refused_and_nothing_is_written(
    svc: Services, username: str, role: str, password: str, code: str
) -> None:
    with pytest.raises(LoaError) as refused:
        create_user(svc, username, role, password, actor="root")
    assert refused.value.code == code
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_names_are_one_account_whatever_their_case(svc: Services) -> None:
    create_user(svc, "Can-Bo", Role.OFFICER, PASSWORD, actor="root")
    with pytest.raises(LoaError, match="user_exists"):
        create_user(svc, "can-bo", Role.ADMIN, PASSWORD, actor="root")
    assert sign_in(svc, LoginThrottle(svc.clock, 5, 300), "CAN-BO", PASSWORD, "x").principal.username == "can-bo"


def test_a_new_password_ends_every_session(svc: Services) -> None:
    create_user(svc, "can-bo", Role.OFFICER, PASSWORD, actor="root")
    throttle = LoginThrottle(svc.clock, 5, 300)
    laptop = sign_in(svc, throttle, "can-bo", PASSWORD, "a").secret
    phone = sign_in(svc, throttle, "can-bo", PASSWORD, "b").secret
    set_password(svc, "can-bo", "mật khẩu mới hẳn", actor="root")
    assert session_principal(svc, laptop) is None and session_principal(svc, phone) is None
    with pytest.raises(LoaError, match="bad_credentials"):
        sign_in(svc, throttle, "can-bo", PASSWORD, "a")
    assert sign_in(svc, throttle, "can-bo", "mật khẩu mới hẳn", "a").principal.username == "can-bo"


def test_a_token_follows_its_owners_role_down(svc: Services) -> None:
    """An admin demoted to viewer: their admin token reads, and nothing more."""
    create_user(svc, "quan-tri", Role.ADMIN, PASSWORD, actor="root")
    admin_token = issue_token(svc, "quan-tri", "script", actor="root")["secret"]
    approver_token = issue_token(svc, "quan-tri", "duyet", "approver", actor="root")["secret"]
    with svc.db.session() as s:
        s.scalars(select(User)).one().role = Role.OFFICER
    as_admin, as_approver = token_principal(svc, admin_token), token_principal(svc, approver_token)
    assert as_admin is not None and as_admin.role is Role.OFFICER
    assert as_approver is not None and as_approver.role is Role.VIEWER  # neither covers the other: reading
    with pytest.raises(LoaError, match="forbidden"):
        issue_token(svc, "quan-tri", "leo thang", "admin", actor="root")


def test_only_an_admin_or_the_owner_sees_or_revokes_a_token(svc: Services) -> None:
    for name, role in (("quan-tri", Role.ADMIN), ("can-bo", Role.OFFICER), ("xem", Role.VIEWER)):
        create_user(svc, name, role, PASSWORD, actor="root")
    mine = issue_token(svc, "can-bo", "mine", actor="root")
    issue_token(svc, "xem", "theirs", actor="root")
    officer = token_principal(svc, mine["secret"])
    assert officer is not None
    assert [t["user"] for t in list_tokens(svc, by=officer)] == ["can-bo"]
    assert len(list_tokens(svc)) == 2  # the command line: the operating system's own admin


def test_the_demo_admin_is_made_once_and_only_where_nobody_has_an_account(svc: Services) -> None:
    password = ensure_demo_admin(svc)
    assert password and len(password) == 16
    assert ensure_demo_admin(svc) is None  # a restart of `make run` shows no password again
    signed = sign_in(svc, LoginThrottle(svc.clock, 5, 300), "admin", password, "x").principal
    assert signed.role is Role.ADMIN and signed.must_change_password


def test_the_throttle_counts_per_key_within_its_window() -> None:
    clock = FakeClock(T0)
    throttle = LoginThrottle(clock, 3, 60)
    for _ in range(2):
        throttle.failed("user:a", "address:1")
    assert throttle.wait_s("user:a") == 0
    clock.advance(timedelta(seconds=30))
    throttle.failed("user:a", "address:1")
    assert throttle.wait_s("user:a") == 31  # until the first of the three is a minute old
    assert throttle.wait_s("user:b", "address:1") == 31  # the address has had its three too
    assert throttle.wait_s("user:b", "address:2") == 0
    clock.advance(timedelta(seconds=31))
    assert throttle.wait_s("user:a", "address:1") == 0
    throttle.failed("user:a")
    throttle.succeeded("user:a")
    assert throttle.wait_s("user:a") == 0


def test_the_throttle_stays_small_under_a_flood_of_names() -> None:
    clock = FakeClock(T0)
    throttle = LoginThrottle(clock, 5, 300)
    for n in range(LoginThrottle.MAX_KEYS + 500):
        throttle.failed(f"user:{n}")
    assert len(throttle._seen) <= LoginThrottle.MAX_KEYS


def test_a_principal_may_what_its_role_grants() -> None:
    def who(role: Role) -> Principal:
        return Principal(1, "x", "x", role, "token")

    assert [r.value for r in Role if who(r).may("compose")] == ["admin", "officer"]
    assert [r.value for r in Role if who(r).may("approve")] == ["admin", "approver"]
    assert [r.value for r in Role if who(r).may("admin")] == ["admin"]
    assert all(who(r).may("read") for r in Role)


def test_an_unknown_name_costs_the_same_check_as_a_wrong_password(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So the time of an answer does not tell which names exist: counted, not timed."""
    import broadcaster.services.accounts as accounts

    checked: list[str] = []

    class Counting(type(accounts._HASHER)):  # type: ignore[misc]
        def verify(self, hash: str, password: str) -> bool:
            checked.append(hash)
            return bool(super().verify(hash, password))

    create_user(svc, "can-bo", Role.OFFICER, PASSWORD, actor="root")
    monkeypatch.setattr(accounts, "_HASHER", Counting())
    throttle = LoginThrottle(svc.clock, 100, 300)
    for name in ("can-bo", "khong-co-ai"):
        with pytest.raises(LoaError, match="bad_credentials"):
            sign_in(svc, throttle, name, "sai mật khẩu", "x")
    assert len(checked) == 2 and all(h.startswith("$argon2id$") for h in checked)
