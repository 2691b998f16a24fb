"""A simulated week in a commune of ten villages, through the database, the planner and the dispatcher.

The clock is the test's: it jumps from one due moment to the next. Daily bulletins, a daily relay,
one-offs, two emergencies (one cutting an item on air, one in the night), two hours of downtime and
a daemon restart in the middle of the week. At the end every airing must have gone out exactly
once, inside its window, with no overlap in any village and nothing but emergencies in quiet hours.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Broadcast, BroadcastStatus, Command, DeviceKind
from broadcaster.dispatch.dispatcher import Dispatcher
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.runtime.path import DevicePath
from broadcaster.services import Services
from broadcaster.services.announcements import announce
from broadcaster.services.planning import bulletin_windows
from broadcaster.services.programmes import add_programme, expand_programmes
from broadcaster.services.zones import add_device, add_zone
from schedules.clock import LOCAL_TZ, FakeClock, to_local
from tests.broadcaster.conftest import make_services

pytestmark = pytest.mark.slow

MONDAY = datetime(2026, 11, 23, 4, 0, tzinfo=LOCAL_TZ)
VILLAGES = [f"thon-{n}" for n in range(1, 11)]
LONG_TEXT = " ".join(
    ["Kính thưa bà con, Ủy ban nhân dân xã thông báo lịch tiêm chủng mở rộng cho trẻ em dưới năm tuổi."] * 3
)


class Commune:
    """The daemon's parts, built twice over the same database to act out a restart."""

    def __init__(self, svc: Services, broker: ManagedBroker, signer: protocol.Signer) -> None:
        self.path = DevicePath.build(
            svc.db,
            svc.clock,
            svc.config.dispatch,
            signer,
            BrokerAddress.parse(broker.url),
            lambda sha, ext: f"http://127.0.0.1:1/audio/{sha}.{ext}",
        )
        self.path.start(dispatch=False)  # the test moves the clock and reconciles by hand
        self.dispatcher, self.writer = self.path.dispatcher, self.path.writer

    def stop(self) -> None:
        self.path.stop()


def _next_due(svc: Services, dispatcher: Dispatcher) -> datetime | None:
    """When the dispatcher will next send something (emergencies go out later: less lead)."""
    with svc.db.session() as s:
        rows = s.execute(
            select(Broadcast.priority, Broadcast.start_at)
            .where(Broadcast.status == BroadcastStatus.PLANNED)
            .order_by(Broadcast.start_at)
            .limit(50)
        ).all()
    return min((start - dispatcher.lead_for(priority) for priority, start in rows), default=None)


def test_a_week_airs_everything_once_in_its_place(tmp_path: Path, broker: ManagedBroker) -> None:
    clock = FakeClock(MONDAY)
    svc = make_services(
        tmp_path,
        f"sqlite:///{tmp_path / 'loa.sqlite3'}",
        clock,
        LOA_DISPATCH_LEAD_S="30",
        LOA_SCHEDULE_EMERGENCY_REPEATS="2",
    )
    cfg = svc.config
    for v in VILLAGES:
        add_zone(svc, v, v.replace("thon-", "Thôn "), "village", [], actor="t")
        with svc.db.session() as s:
            add_device(s, f"{v}-loa", DeviceKind.SPEAKER, v)
    add_zone(svc, "phia-nam", "Các thôn phía nam", "group", VILLAGES[5:], actor="t")
    bulletin = add_programme(svc, "bulletin", "Bản tin", ["all"], "06:00 và 17:00", duration_s=1800)["id"]
    add_programme(svc, "relay", "Thời sự VOV1", ["all"], "05:30", stream_url="http://127.0.0.1:9/vov1", duration_s=1200)

    def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
        return MONDAY.replace(hour=hh, minute=mm, second=ss) + timedelta(days=day)

    events: list[tuple[datetime, str, Callable[[], object]]] = []
    for day in range(7):
        events.append(
            (
                at(day, 5, 0),
                "queue",
                lambda d=day: [
                    announce(svc, f"Tin số {n} ngày {d}.", ["all"], title=f"Tin {d}.{n}", bulletin=bulletin)
                    for n in (1, 2)
                ],
            )
        )
        events.append(
            (
                at(day, 8, 0),
                "one-off",
                lambda d=day: announce(
                    svc, "Thông báo thu gom rác.", [VILLAGES[d % 10]], at(d, 9, 0).isoformat(), title=f"Rác {d}"
                ),
            )
        )
    # Tuesday 09:00: a long item in thôn 6, cut after ten seconds by an emergency for the south.
    events.append(
        (
            at(1, 8, 30),
            "long",
            lambda: announce(svc, LONG_TEXT, ["thon-6"], at(1, 9, 30).isoformat(), title="Tiêm chủng"),
        )
    )
    events.append(
        (
            at(1, 9, 30, 10),
            "emergency",
            lambda: announce(
                svc,
                "Khẩn cấp: lũ quét, bà con di chuyển ngay.",
                ["phia-nam"],
                None,
                priority="emergency",
                title="Lũ quét",
            ),
        )
    )
    # Friday 23:00, quiet hours: only an emergency may sound.
    events.append(
        (
            at(4, 23, 0),
            "night emergency",
            lambda: announce(svc, "Khẩn cấp: đê sắp vỡ.", ["all"], None, priority="emergency", title="Đê"),
        )
    )
    # Thursday: items planned before two hours of downtime (10:00-12:00); one misses, one airs late.
    events.append(
        (
            at(3, 9, 0),
            "before downtime",
            lambda: [
                announce(svc, "Họp tổ hòa giải.", ["thon-3"], at(3, 11, 0).isoformat(), title="Hòa giải"),
                announce(svc, "Họp phụ nữ.", ["thon-4"], at(3, 12, 5).isoformat(), title="Phụ nữ"),
            ],
        )
    )
    events.sort(key=lambda e: e[0])

    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    commune = Commune(svc, broker, signer)
    lead = timedelta(seconds=cfg.dispatch.lead_s)
    end = MONDAY + timedelta(days=7)
    restarted = down = False
    try:
        expand_programmes(svc)
        steps = 0
        while clock.now() < end:
            steps += 1
            assert steps < 3000, "the simulation stopped advancing"
            due = _next_due(svc, commune.dispatcher)
            nxt = min(t for t in (due, events[0][0] if events else None, end) if t is not None)
            if not down and clock.now() < at(3, 10, 0) <= nxt:  # Thursday 10:00, the daemon dies
                clock.set(at(3, 12, 0))
                commune.stop()
                commune = Commune(svc, broker, signer)  # ...and comes back two hours later
                down = restarted = True
                commune.dispatcher.resend_pending(only_unsent=False)
            else:
                clock.set(max(nxt, clock.now()))
            while events and events[0][0] <= clock.now():
                events.pop(0)[2]()
            expand_programmes(svc)
            commune.dispatcher.reconcile()
        assert commune.writer.flush()
    finally:
        commune.stop()
    assert restarted

    with svc.db.session() as s:
        rows = list(s.scalars(select(Broadcast).where(Broadcast.status != BroadcastStatus.CANCELLED)))
        sent = dict(s.execute(select(Command.delivery_id, func.count()).group_by(Command.delivery_id)).all())
    assert all(n == 1 for n in sent.values())  # no delivery ever got a second command
    aired = [b for b in rows if b.status in (BroadcastStatus.DISPATCHED, BroadcastStatus.DONE)]
    missed = [b for b in rows if b.status is BroadcastStatus.MISSED]
    still_planned = [b for b in rows if b.status is BroadcastStatus.PLANNED and b.start_at < end - lead]
    assert not still_planned, [(b.title, to_local(b.start_at)) for b in still_planned]
    with svc.db.session() as s:
        counts = dict(s.execute(select(Command.device_id, func.count()).group_by(Command.device_id)).all())
    assert sum(counts.values()) == len(aired)  # one speaker per village: one command per airing

    # Downtime: the 11:00 item passed its validity and is missed with a reason; 12:05 still aired.
    assert [b.title for b in missed] == ["Hòa giải"] and missed[0].reason
    assert any(b.title == "Phụ nữ" for b in aired)

    # The emergency cut the long item on air in thôn 6, which aired again after it.
    long_rows = sorted((b for b in rows if b.title == "Tiêm chủng"), key=lambda b: b.start_at)
    assert [b.code for b in long_rows] == ["cut_by_emergency", "replayed_after_emergency"]

    for village in VILLAGES:
        mine = sorted((b for b in aired if b.zone_id == village), key=lambda b: b.start_at)
        for a, b in itertools.pairwise(mine):
            assert a.start_at + timedelta(milliseconds=a.duration_ms) <= b.start_at, (village, a.title, b.title)
        for b in mine:
            local = to_local(b.start_at).time()
            in_quiet = (
                local >= datetime.strptime("21:30", "%H:%M").time()
                or local < datetime.strptime("05:00", "%H:%M").time()
            )
            assert b.priority == "emergency" or not in_quiet, (village, b.title, local)
    with svc.db.session() as s:
        windows = {w.id: w for w in bulletin_windows(s, MONDAY - timedelta(days=1), end)}
    queued = [b for b in aired if b.window_id]
    assert len({b.title for b in queued if b.kind == "notice"}) == 14  # two items a day, every day
    for b in queued:
        w = windows[b.window_id]
        assert w.start <= b.start_at and b.start_at + timedelta(milliseconds=b.duration_ms) <= w.end
    night = [b for b in aired if b.title == "Đê"]
    assert len(night) == 2 * len(VILLAGES)  # two repeats, every village
    svc.db.dispose()
