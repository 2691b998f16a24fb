"""Fixtures for the broadcaster: the shared parts built from a real config, on a real database."""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

from broadcaster.config import load_config
from broadcaster.db import Database, Role, User
from broadcaster.services import Services
from broadcaster.services.accounts import create_user, issue_token
from broadcaster.services.build import build_services
from schedules.clock import Clock


def make_services(tmp_path: Path, database_url: str, clock: Clock, **env: str) -> Services:
    """Services as the daemon builds them; chimes off to keep renders short, `env` as LOA_* overrides.
    Approval off unless a test asks (`LOA_SECURITY_REQUIRE_APPROVAL="true"`): most tests are about what
    happens to an item once it is planned; tests/broadcaster/services/test_approvals.py and
    tests/broadcaster/api/test_approvals.py are about the way there."""
    environ = {
        "LOA_GENERAL_DATA_DIR": str(tmp_path / "data"),
        "LOA_DATABASE_URL": database_url,
        "LOA_SPEECH_CHIMES": "false",
        "LOA_SECURITY_REQUIRE_APPROVAL": "false",
        **env,
    }
    if database_url.startswith("sqlite:///"):
        _from_template(Path(database_url.removeprefix("sqlite:///")))
    return build_services(load_config(None, environ=environ), clock)


@cache
def _migrated_template() -> Path:
    """One SQLite file per test process taken through every migration, as `build_services` would: a
    thousand tests each walking the chain cost minutes of the suite. Migrations have tests of their own
    (tests/broadcaster/db/), which build their databases the long way."""
    path = Path(tempfile.mkdtemp(prefix="loa-template-")) / "loa.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.prepare(upgrade=True)
    db.dispose()  # the last connection checkpoints the WAL into the file
    return path


def migrated(database_url: str) -> Database:
    """The database at the latest schema, as the daemon would prepare it (from the template on SQLite)."""
    if database_url.startswith("sqlite:///"):
        _from_template(Path(database_url.removeprefix("sqlite:///")))
    db = Database(database_url)
    db.prepare(upgrade=True)
    return db


def _from_template(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated_template(), path)
    os.chmod(path, 0o600)


PASSWORD = "mật khẩu thử nghiệm"


def make_user(svc: Services, username: str, role: str | Role, password: str = PASSWORD) -> str:
    """An account, as `loa user add` makes it (once: a second call for the same name changes nothing)."""
    with svc.db.session() as s:
        exists = s.query(User).filter(User.username == username).count()
    if not exists:
        create_user(svc, username, role, password, actor="test")
    return username


def make_token(svc: Services, username: str, role: str | Role = Role.ADMIN) -> str:
    """The secret of a new API token of `username` (made with `role` if it has no account yet)."""
    make_user(svc, username, role)
    secret: str = issue_token(svc, username, "test", actor="test")["secret"]
    return secret
