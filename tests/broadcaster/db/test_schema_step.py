"""Migrating is one deliberate step (`loa db upgrade`), not something every CLI call or every daemon of a
cluster does on the side; and a cluster is refused where it cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.cli.main import main
from broadcaster.config import load_config
from broadcaster.db import Database
from broadcaster.db.migrations import current_revision, head_revision, upgrade
from broadcaster.errors import LoaError
from daemon import Daemon


def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("LOA_DATABASE_URL", "LOA_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOA_GENERAL_DATA_DIR", str(tmp_path / "data"))
    return f"sqlite:///{tmp_path / 'data' / 'loa.sqlite3'}"


def test_the_cli_creates_a_new_database_but_migrates_an_old_one_only_when_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _env(tmp_path, monkeypatch)
    (tmp_path / "data").mkdir()
    db = Database(url)
    upgrade(db.engine, "0012")  # a database left by the previous release

    assert main(["zone", "list"]) != 0
    said = capsys.readouterr().err
    assert "loa db upgrade" in said and "0012" in said and head_revision() in said
    assert current_revision(db.engine) == "0012"  # untouched

    assert main(["db", "upgrade"]) == 0
    assert f"0012 → {head_revision()}" in capsys.readouterr().out
    assert current_revision(db.engine) == head_revision()
    assert main(["zone", "list"]) == 0
    db.dispose()


def test_a_database_loa_never_wrote_to_is_created_by_the_first_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _env(tmp_path, monkeypatch)
    assert main(["zone", "list"]) == 0
    db = Database(url)
    assert current_revision(db.engine) == head_revision()
    db.dispose()


def test_a_single_daemon_migrates_at_start_and_a_clusters_does_not(tmp_path: Path) -> None:
    config = load_config(None, environ={"LOA_GENERAL_DATA_DIR": str(tmp_path)})
    assert config.upgrade_on_start
    clustered = load_config(None, environ={"LOA_GENERAL_DATA_DIR": str(tmp_path), "LOA_CLUSTER_ENABLED": "true"})
    assert not clustered.upgrade_on_start
    forced = load_config(
        None,
        environ={"LOA_CLUSTER_ENABLED": "true", "LOA_DATABASE_UPGRADE_ON_START": "yes"},
    )
    assert forced.upgrade_on_start


@pytest.mark.parametrize(
    ("environ", "code"),
    [
        ({}, "cluster_needs_postgres"),  # SQLite: one daemon only
        ({"LOA_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/x"}, "cluster_needs_broker"),
    ],
)
def test_a_cluster_is_refused_on_sqlite_and_with_a_managed_broker(
    tmp_path: Path, environ: dict[str, str], code: str
) -> None:
    config = load_config(
        None, environ={"LOA_GENERAL_DATA_DIR": str(tmp_path), "LOA_CLUSTER_ENABLED": "true", **environ}
    )
    daemon = Daemon(config)
    try:
        with pytest.raises(LoaError) as refused:
            daemon.start()
        assert refused.value.code == code
    finally:
        daemon.stop()
