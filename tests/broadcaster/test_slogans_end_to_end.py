"""The commune's slogans on its LED boards, the whole way: the daemon process sends them in turn through
the signed outbox, real Mosquitto carries them, and two LED-board agent processes show them in order;
an announcement's title is never covered by one.

What each board showed is read from its agent's log, one line per text it put up (`[thon-1-led] ...`,
and `(trống)` when it went blank).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.config import load_config
from broadcaster.db import Broadcast, Command, Database, Device
from broadcaster.services.build import build_services
from broadcaster.services.slogans import add_slogan
from schedules.clock import SystemClock
from tests.broadcaster.harness import DaemonProcess, village_fleet, wait_for, write_config

pytestmark = pytest.mark.slow

SLOGANS = ("Toàn dân đoàn kết xây dựng nông thôn mới", "Giữ gìn vệ sinh đường làng ngõ xóm", "Phòng chống cháy rừng")


def _shown(tmp_path: Path, board: str) -> list[str]:
    """Every text the board put up, in order, marks stripped (a board without them strips them too)."""
    log = tmp_path / "fleet" / "logs" / f"{board}.log"
    prefix = f"[{board}] "
    if not log.exists():
        return []
    return [
        protocol.strip_diacritics(line[len(prefix) :])
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.startswith(prefix)
    ]


def _slogans_only(lines: list[str]) -> list[str]:
    plain = [protocol.strip_diacritics(s) for s in SLOGANS]
    return [line for line in lines if line in plain]


def test_led_boards_show_the_slogans_in_turn_and_never_over_an_announcement(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str
) -> None:
    agents, _ = village_fleet(tmp_path, sqlite_url, broker.url)
    config = write_config(tmp_path / "loa.toml", tmp_path / "data", sqlite_url, broker.url, lead_s=2, reconcile_s=0.2)
    with config.open("a", encoding="utf-8") as f:
        f.write("[led]\nslogan_every_s = 1.0\n")
    svc = build_services(load_config(config, environ={}), SystemClock(), migrate=False)
    for text in SLOGANS:
        add_slogan(svc, text, actor="test")
    daemon = DaemonProcess(config, tmp_path / "data", tmp_path / "daemon.log").start()
    db = Database(sqlite_url)
    try:
        wait_for(lambda: _online(db) == 4, 20, "four devices online")
        plain = [protocol.strip_diacritics(s) for s in SLOGANS]
        for board in ("thon-1-led", "thon-2-led"):
            wait_for(lambda b=board: len(_slogans_only(_shown(tmp_path, b))) >= 4, 20, f"four slogans on {board}")
            shown = _slogans_only(_shown(tmp_path, board))
            first = plain.index(shown[0])
            assert shown[:4] == [plain[(first + i) % 3] for i in range(4)], shown  # in order, round and round

        start_at = datetime.now(UTC) + timedelta(seconds=4)
        resp = daemon.post(
            "/api/v1/announcements",
            {"text": "Mời bà con thôn 1 họp lúc 19h.", "zones": ["thon-1"], "at": start_at.isoformat(),
             "title": "Họp thôn một"},
        )  # fmt: skip
        assert resp.status_code == 201, resp.text
        title = "Hop thon mot"
        wait_for(lambda: title in _shown(tmp_path, "thon-1-led"), 30, "the announcement's title on thôn 1's board")
        with db.session() as s:
            shown_at, duration_ms = s.execute(
                select(Broadcast.start_at, Broadcast.duration_ms).where(Broadcast.announcement_id == resp.json()["id"])
            ).one()
        title_on = (shown_at, shown_at + max(timedelta(seconds=5), timedelta(milliseconds=duration_ms)))
        wait_for(lambda: datetime.now(UTC) > title_on[1] + timedelta(seconds=3), 30, "the title's show to end")
        def after_title() -> list[str]:
            lines = _shown(tmp_path, "thon-1-led")
            return lines[lines.index(title) :] if title in lines else []

        wait_for(lambda: _slogans_only(after_title()), 20, "slogans back on thôn 1 after the title")
        during = [board for board, at in _slogans_sent(db) if title_on[0] <= at <= title_on[1]]
        assert "thon-1-led" not in during, (title_on, _slogans_sent(db))  # none while its title was on
        assert "thon-2-led" in during  # thôn 2's board, which the announcement was not for, kept its turns
        lines = _shown(tmp_path, "thon-1-led")
        assert lines.index(title) < len(lines) - 1 and _slogans_only(lines[lines.index(title) :])  # and after it
    finally:
        daemon.stop()
        agents.stop()
        db.dispose()
        svc.db.dispose()


def _slogans_sent(db: Database) -> list[tuple[str, datetime]]:
    """The slogans' commands in the outbox: signed `led.show`s of their own, with no delivery."""
    with db.session() as s:
        return [
            (device, at)
            for device, at in s.execute(
                select(Command.device_id, Command.created_at)
                .where(Command.type == "led.show", Command.delivery_id.is_(None))
                .order_by(Command.created_at)
            )
        ]


def _online(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Device).where(Device.online.is_(True))) or 0
