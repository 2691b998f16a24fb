"""The dispatcher and the device link against a real broker and database, with a controlled clock."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.config import DispatchConfig
from broadcaster.db import (
    Announcement,
    Broadcast,
    BroadcastStatus,
    Command,
    Database,
    Delivery,
    DeliveryStatus,
    DeviceKind,
)
from broadcaster.dispatch.dispatcher import Dispatcher
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.dispatch.link import DeviceLink
from broadcaster.dispatch.outbox import growing_chunks
from broadcaster.messages import reason_text
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from broadcaster.runtime.path import DevicePath
from broadcaster.services.zones import add_device, add_village, ensure_commune
from schedules.clock import Clock, FakeClock, SystemClock
from tests.broadcaster.conftest import migrated
from tests.broadcaster.harness import wait_for

T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # 07:00 in the commune


@dataclass
class Rig:
    db: Database
    clock: Any
    dispatcher: Dispatcher
    writer: EventWriter
    link: DeviceLink
    metrics: Metrics
    broker: ManagedBroker
    signer: protocol.Signer


@pytest.fixture
def rig(tmp_path: Path, broker: ManagedBroker, database_url: str) -> Iterator[Rig]:
    yield from make_rig(tmp_path, broker, database_url, FakeClock(T0))


def make_rig(tmp_path: Path, broker: ManagedBroker, database_url: str, clock: Clock) -> Iterator[Rig]:
    db = migrated(database_url)
    with db.session() as s:
        ensure_commune(s, "Xã thử")
        for n in (1, 2):
            add_village(s, f"thon-{n}", f"Thôn {n}")
            add_device(s, f"thon-{n}-loa", DeviceKind.SPEAKER, f"thon-{n}")
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    path = DevicePath.build(
        db,
        clock,
        DispatchConfig(lead_s=30, validity_s=600),
        signer,
        BrokerAddress.parse(broker.url),
        lambda sha, ext: f"http://127.0.0.1:1/audio/{sha}.{ext}",
    )
    path.start(dispatch=False)  # the tests drive reconcile and dispatch themselves
    yield Rig(db, clock, path.dispatcher, path.writer, path.link, path.metrics, broker, signer)
    path.stop()
    db.dispose()


def plan(db: Database, start_at: datetime, zone: str = "all") -> int:
    with db.session() as s:
        a = Announcement(
            title="Họp thôn",
            text="Họp thôn",
            created_at=T0,
            created_by="t",
            audio_sha256="a" * 64,
            audio_size=10,
            audio_duration_ms=1000,
        )
        s.add(a)
        s.flush()
        b = Broadcast(
            announcement_id=a.id, zone_id=zone, start_at=start_at, expires_at=start_at + timedelta(minutes=10)
        )
        s.add(b)
        s.flush()
        return b.id


class Listener:
    """A bare MQTT client in a device's place: records what reaches its command topic."""

    def __init__(self, broker: ManagedBroker, device_id: str) -> None:
        self.got: list[dict[str, Any]] = []
        self.subscribed = threading.Event()
        self.client = new_client(device_id)
        self.client.on_connect = lambda c, *_: c.subscribe(protocol.Topics().cmd(device_id), qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.got.append(json.loads(m.payload))
        connect(self.client, BrokerAddress.parse(broker.url), persistent=True)
        self.client.loop_start()
        assert self.subscribed.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _count(db: Database, model: type) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_racing_dispatches_produce_one_set_of_commands(rig: Rig) -> None:
    bid = plan(rig.db, T0 + timedelta(seconds=20))
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(rig.dispatcher.dispatch(bid))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 0, 0, 2]
    assert _count(rig.db, Command) == 2 and _count(rig.db, Delivery) == 2


def test_an_airing_past_its_validity_is_missed_with_a_reason(rig: Rig) -> None:
    bid = plan(rig.db, T0 - timedelta(minutes=11))
    rig.dispatcher.reconcile()
    with rig.db.session() as s:
        b = s.get(Broadcast, bid)
        assert b is not None and b.status is BroadcastStatus.MISSED and "thời hạn" in reason_text(b.reason)
        assert b.reason == "expired_before_dispatch"  # stored as a code, said in the reader's language
    assert _count(rig.db, Command) == 0


def test_an_airing_still_valid_after_downtime_plays_late_and_says_so(rig: Rig) -> None:
    listener = Listener(rig.broker, "thon-1-loa")
    try:
        bid = plan(rig.db, T0 - timedelta(minutes=2))
        rig.dispatcher.reconcile()
        wait_for(lambda: listener.got, 5, "the late command")
        cmd = listener.got[0]
        assert protocol.parse_time(cmd["start_at"]) == T0 + timedelta(seconds=3)
        with rig.db.session() as s:
            b = s.get(Broadcast, bid)
            assert b is not None and b.late and b.status is BroadcastStatus.DISPATCHED
            assert "trễ" in reason_text(b.reason)
            assert reason_text(b.reason, "en") == f"Aired {b.reason.split(':')[1].strip()} s late"
    finally:
        listener.close()


def test_future_airings_wait_for_their_lead_time(rig: Rig) -> None:
    bid = plan(rig.db, T0 + timedelta(minutes=5))
    rig.dispatcher.reconcile()
    assert _count(rig.db, Command) == 0
    assert f"dispatch:{bid}" in rig.dispatcher.timer.scheduled_ids()
    rig.clock.advance(timedelta(minutes=4, seconds=31))
    rig.dispatcher.reconcile()
    assert _count(rig.db, Command) == 2


def test_commands_reach_devices_signed_and_are_marked_sent(rig: Rig) -> None:
    listener = Listener(rig.broker, "thon-2-loa")
    try:
        bid = plan(rig.db, T0 + timedelta(seconds=10), zone="thon-2")
        assert rig.dispatcher.dispatch(bid) == 1
        wait_for(lambda: listener.got, 5, "the command")
        keys = {rig.signer.kid: rig.signer.private.public_key()}
        protocol.check_command(listener.got[0], keys, T0, seen=set())
        assert rig.writer.flush()
        wait_for(lambda: _delivery_status(rig.db) == [DeliveryStatus.SENT], 5, "delivery sent")
    finally:
        listener.close()


def _delivery_status(db: Database) -> list[DeliveryStatus]:
    with db.session() as s:
        return list(s.scalars(select(Delivery.status).order_by(Delivery.id)))


def test_an_offline_device_gets_its_pending_command_when_it_comes_back(rig: Rig) -> None:
    bid = plan(rig.db, T0 + timedelta(seconds=10), zone="thon-1")
    rig.dispatcher.dispatch(bid)  # nobody listening, and no session at the broker for this device yet
    listener = Listener(rig.broker, "thon-1-loa")
    try:
        assert listener.got == []
        status = protocol.encode(protocol.make_status(True, T0))
        listener.client.publish(protocol.Topics().status("thon-1-loa"), status, qos=1, retain=True)
        wait_for(lambda: listener.got, 5, "the re-sent command")
        assert listener.got[0]["type"] == "play"
    finally:
        listener.close()


def test_acks_move_deliveries_forward_only_and_bad_messages_are_counted(rig: Rig) -> None:
    listener = Listener(rig.broker, "thon-1-loa")
    try:
        bid = plan(rig.db, T0 + timedelta(seconds=10), zone="thon-1")
        rig.dispatcher.dispatch(bid)
        wait_for(lambda: listener.got, 5, "the command")
        cid = listener.got[0]["id"]
        ack_topic = protocol.Topics().ack("thon-1-loa")
        pub = listener.client.publish
        for state, extra in (("playing", {"start_error_ms": 1.5}), ("received", {}), ("done", {})):
            pub(ack_topic, protocol.encode(protocol.make_ack(cid, state, T0, **extra)), qos=1).wait_for_publish()
        pub(ack_topic, b"{not json", qos=1).wait_for_publish()
        pub(ack_topic, protocol.encode(protocol.make_ack("no-such-command", "done", T0)), qos=1).wait_for_publish()
        pub(protocol.Topics().ack("intruder"), protocol.encode(protocol.make_ack(cid, "failed", T0)), qos=1)
        pub(ack_topic, b"x" * (protocol.MAX_PAYLOAD_BYTES + 1), qos=1).wait_for_publish()
        expected = {"malformed_json": 1, "ack_for_unknown_command": 2, "oversized_payload": 1}
        wait_for(lambda: rig.metrics.snapshot() == expected, 5, f"bad messages counted {rig.metrics.snapshot()}")
        assert rig.writer.flush()
        with rig.db.session() as s:
            d = s.scalars(select(Delivery)).one()
            assert d.status is DeliveryStatus.DONE and d.start_error_ms == 1.5
            b = s.get(Broadcast, bid)
            assert b is not None and b.status is BroadcastStatus.DONE
    finally:
        listener.close()


def test_the_writer_commits_acks_in_batches(rig: Rig) -> None:
    bid = plan(rig.db, T0 + timedelta(seconds=10))
    rig.dispatcher.dispatch(bid)
    assert rig.writer.flush()
    with rig.db.session() as s:
        commands = list(s.scalars(select(Command)))
    before = rig.writer.batches
    for _ in range(50):
        for c in commands:
            rig.writer.put("ack", c.device_id, protocol.make_ack(c.id, "received", T0))
    assert rig.writer.flush()
    assert rig.writer.batches - before <= 3  # 100 acks in a burst: the writer lingers and takes them together


def test_each_kind_of_device_gets_its_own_signed_body(rig: Rig) -> None:
    with rig.db.session() as s:
        add_device(s, "thon-1-led", DeviceKind.LED, "thon-1")
        add_device(s, "thon-2-led", DeviceKind.LED, "thon-2").diacritics = False
    bid = plan(rig.db, T0 + timedelta(seconds=10))
    with rig.db.session() as s:
        s.get(Broadcast, bid).title = "Họp thôn"  # type: ignore[union-attr]  # what LED boards show
    assert rig.dispatcher.dispatch(bid) == 4
    with rig.db.session() as s:
        sent = {c.device_id: json.loads(c.payload) for c in s.scalars(select(Command))}
        assert {d.device_id for d in s.scalars(select(Delivery))} == set(sent)
    keys = {rig.signer.kid: rig.signer.private.public_key()}
    for command in sent.values():
        protocol.check_command(command, keys, T0)  # every one verifies on a device
    assert {sent[d]["type"] for d in ("thon-1-loa", "thon-2-loa")} == {"play"}
    assert sent["thon-1-loa"]["body"]["audio"]["sha256"] == "a" * 64
    assert sent["thon-1-led"]["body"]["text"] == "Họp thôn" and sent["thon-1-led"]["body"]["diacritics"]
    assert sent["thon-2-led"]["body"]["text"] == "Hop thon" and not sent["thon-2-led"]["body"]["diacritics"]
    assert len({c["id"] for c in sent.values()}) == 4


def test_a_relay_plays_the_stream_on_a_real_speaker_for_its_duration(
    tmp_path: Path, broker: ManagedBroker, sqlite_url: str
) -> None:
    """A relay command carries a stream URL and a duration; the speaker records what it aired."""
    import functools
    import http.server
    import subprocess

    from broadcaster.db import Programme
    from broadcaster.device.agent import AgentConfig
    from broadcaster.device.speaker import SpeakerAgent

    media = tmp_path / "www"
    media.mkdir()
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=5", str(media / "vov1.mp3")],
        check=True,
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(media))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stream_url = f"http://127.0.0.1:{server.server_address[1]}/vov1.mp3"

    rig_iter = make_rig(tmp_path, broker, sqlite_url, SystemClock())
    rig = next(rig_iter)
    agent = SpeakerAgent(
        AgentConfig(
            device_id="thon-1-loa",
            kind="speaker",
            broker_url=broker.url,
            public_keys={rig.signer.kid: rig.signer.public_b64},
            state_dir=str(tmp_path / "agent"),
            sink="file",
        )
    )
    agent.start()
    try:
        now = datetime.now(UTC)
        with rig.db.session() as s:
            prog = Programme(
                kind="relay",
                title="Thời sự VOV1",
                targets='["thon-1"]',
                recurrence="06:00",
                starts_on="2026-11-25",
                duration_ms=2000,
                stream_url=stream_url,
                priority="background",
                created_at=now,
                created_by="t",
            )
            s.add(prog)
            s.flush()
            b = Broadcast(
                programme_id=prog.id,
                title=prog.title,
                zone_id="thon-1",
                start_at=now + timedelta(seconds=2),
                expires_at=now + timedelta(seconds=60),
                airing_id="p1@x",
                kind="relay",
                priority="background",
                duration_ms=2000,
            )
            s.add(b)
            s.flush()
            bid = b.id
        assert rig.dispatcher.dispatch(bid) == 1
        wait_for(lambda: _delivery_status(rig.db) == [DeliveryStatus.DONE], 20, "relay delivery done")
        log = (tmp_path / "agent" / "played" / "played.jsonl").read_text()
        entry = json.loads(log.splitlines()[-1])
        assert entry["stream"] == stream_url and entry["duration_s"] == 2.0
        recorded = tmp_path / "agent" / "played" / entry["file"]
        assert recorded.stat().st_size > 1000
    finally:
        agent.stop()
        server.shutdown()
        with contextlib.suppress(StopIteration):
            next(rig_iter)


def _half_dispatched(rig: Rig, start_at: datetime) -> int:
    """A broadcast claimed, with its deliveries stored but no commands (as a crash could leave it)."""
    bid = plan(rig.db, start_at)
    with rig.db.session() as s:
        b = s.get(Broadcast, bid)
        assert b is not None
        b.status = BroadcastStatus.DISPATCHED
        for device in ("thon-1-loa", "thon-2-loa"):
            s.add(Delivery(broadcast_id=bid, device_id=device, updated_at=T0))
    return bid


def test_a_dispatch_interrupted_after_its_deliveries_is_finished_once(rig: Rig) -> None:
    """A crash between storing the deliveries and issuing their commands: reconcile completes it."""
    bid = _half_dispatched(rig, T0 + timedelta(minutes=2))
    rig.dispatcher.reconcile()
    assert _count(rig.db, Command) == 0  # fresh: may still be in progress elsewhere
    rig.clock.advance(timedelta(seconds=11))
    threads = [threading.Thread(target=rig.dispatcher.reconcile) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with rig.db.session() as s:
        per_delivery = s.execute(select(Command.delivery_id, func.count()).group_by(Command.delivery_id)).all()
    assert sorted(n for _, n in per_delivery) == [1, 1]
    assert rig.dispatcher.issue_commands(bid) == 0  # nothing left to issue


def test_a_restarted_daemon_finishes_an_interrupted_dispatch_at_once(rig: Rig) -> None:
    """After a crash no one else can be issuing those commands: start() does not wait ISSUE_STALE_S."""
    _half_dispatched(rig, T0 + timedelta(seconds=40))
    rig.dispatcher.start()  # the clock has not moved: the deliveries are seconds old at most
    assert _count(rig.db, Command) == 2  # the rig's teardown stops the dispatcher's loop


def test_a_delivery_finished_elsewhere_is_never_moved_back_by_a_late_ack(rig: Rig) -> None:
    """The writer remembers the rows it wrote; another daemon instance (or expiry) may have moved them on
    since. The database's own guard keeps a final delivery final and a first ack time first."""
    bid = plan(rig.db, T0 + timedelta(seconds=10))
    rig.dispatcher.dispatch(bid)
    assert rig.writer.flush()
    with rig.db.session() as s:
        cmd = s.scalars(select(Command).where(Command.device_id == "thon-1-loa")).one()
    rig.writer.put("ack", cmd.device_id, protocol.make_ack(cmd.id, "received", T0))
    assert rig.writer.flush()
    with rig.db.session() as s:  # meanwhile, elsewhere: the delivery ends
        d = s.scalars(select(Delivery).where(Delivery.device_id == "thon-1-loa")).one()
        assert d.status is DeliveryStatus.RECEIVED
        d.status = DeliveryStatus.DONE
        first_ack = s.get(Command, cmd.id).acked_at  # type: ignore[union-attr]
    rig.clock.advance(timedelta(seconds=5))
    for state in ("downloaded", "playing"):
        rig.writer.put("ack", cmd.device_id, protocol.make_ack(cmd.id, state, T0))
    assert rig.writer.flush()
    with rig.db.session() as s:
        assert s.scalars(select(Delivery.status).where(Delivery.device_id == "thon-1-loa")).one() is DeliveryStatus.DONE
        assert s.get(Command, cmd.id).acked_at == first_ack  # type: ignore[union-attr]


def test_chunks_start_small_and_double_up_to_the_largest() -> None:
    rows = list(range(20))
    chunks = growing_chunks(rows, first=2, largest=8)
    assert [len(c) for c in chunks] == [2, 4, 8, 6]
    assert [r for c in chunks for r in c] == rows
    assert growing_chunks([], first=2) == [[]]


def _add_speakers(db: Database, n: int) -> list[str]:
    ids = [f"thon-1-loa-{i}" for i in range(n)]
    with db.session() as s:
        for device_id in ids:
            add_device(s, device_id, DeviceKind.SPEAKER, "thon-1")
    return ids


def test_a_dispatch_in_chunks_gives_every_device_one_command_on_the_wire(rig: Rig) -> None:
    devices = ["thon-1-loa", *_add_speakers(rig.db, 5)]
    listeners = [Listener(rig.broker, d) for d in devices]
    try:
        rig.dispatcher.first_chunk = 1  # chunks of 1, 2 and 3 commands
        bid = plan(rig.db, T0 + timedelta(seconds=10), zone="thon-1")
        assert rig.dispatcher.dispatch(bid) == 6
        wait_for(lambda: all(len(x.got) == 1 for x in listeners), 5, "a command for every device")
        with rig.db.session() as s:
            per_delivery = s.execute(select(Command.delivery_id, func.count()).group_by(Command.delivery_id)).all()
            assert len(per_delivery) == 6 and {n for _, n in per_delivery} == {1}
        assert rig.writer.flush()
        wait_for(lambda: _delivery_status(rig.db) == [DeliveryStatus.SENT] * 6, 5, "every delivery sent")
    finally:
        for x in listeners:
            x.close()


@pytest.fixture
def sqlite_rig(tmp_path: Path, broker: ManagedBroker, sqlite_url: str) -> Iterator[Rig]:
    yield from make_rig(tmp_path, broker, sqlite_url, FakeClock(T0))


def test_a_dispatch_cut_off_after_its_first_chunk_is_finished_on_restart(sqlite_rig: Rig) -> None:
    """The database refuses the second chunk: the first chunk is out, the deliveries of the rest wait
    without commands, and a restarted dispatcher issues them at once. (A SQLite trigger does the
    refusing; the recovery from a half-dispatched broadcast is tested on both backends above.)"""
    rig = sqlite_rig
    _add_speakers(rig.db, 3)
    rig.dispatcher.first_chunk = 1
    bid = plan(rig.db, T0 + timedelta(seconds=40), zone="thon-1")
    with rig.db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER full_disk BEFORE INSERT ON commands WHEN (SELECT count(*) FROM commands) >= 1 "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    assert rig.dispatcher.dispatch(bid) == 1
    assert (_count(rig.db, Delivery), _count(rig.db, Command)) == (4, 1)
    with rig.db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER full_disk")
    rig.dispatcher.start()
    assert _count(rig.db, Command) == 4
    with rig.db.session() as s:
        assert s.scalar(select(func.count(func.distinct(Command.delivery_id)))) == 4


def test_the_writer_lags_until_what_was_put_is_committed(rig: Rig) -> None:
    """`lagging` holds back the dispatcher's re-sends while acks wait in the writer's queue."""
    bid = plan(rig.db, T0 + timedelta(seconds=10), zone="thon-1")
    rig.dispatcher.dispatch(bid)
    assert rig.writer.flush() and not rig.writer.lagging
    with rig.db.session() as s:
        cmd = s.scalars(select(Command)).one()
    rig.writer.put("ack", cmd.device_id, protocol.make_ack(cmd.id, "received", T0))
    assert rig.writer.lagging  # the writer lingers 50 ms before it takes a batch
    assert rig.writer.flush() and not rig.writer.lagging
    assert _delivery_status(rig.db) == [DeliveryStatus.RECEIVED]


def _placement(db: Database, start_at: datetime, villages: list[str], airing_id: str) -> list[int]:
    """One airing placed in several villages, as the planner stores a commune-wide item: a row each."""
    bid = plan(db, start_at, zone=villages[0])
    with db.session() as s:
        first = s.get(Broadcast, bid)
        assert first is not None
        first.airing_id = airing_id
        rows = [
            Broadcast(
                announcement_id=first.announcement_id, zone_id=v, start_at=start_at, expires_at=first.expires_at,
                airing_id=airing_id,
            )
            for v in villages[1:]
        ]  # fmt: skip
        s.add_all(rows)
        s.flush()
        return [bid, *(r.id for r in rows)]


def test_the_first_dispatch_of_a_placement_takes_every_village_of_it(rig: Rig) -> None:
    """The timer fires every village's row of a commune-wide item at once: one call issues them all,
    the others find nothing left, and a later airing of the same item is not touched."""
    start = T0 + timedelta(seconds=20)
    bids = _placement(rig.db, start, ["thon-1", "thon-2"], "a1@20261125T000020Z")
    later = _placement(rig.db, start + timedelta(hours=1), ["thon-1"], "a1@20261125T000020Z")
    results: list[int] = []
    threads = [threading.Thread(target=lambda b=b: results.append(rig.dispatcher.dispatch(b))) for b in bids * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 0, 0, 2]
    with rig.db.session() as s:
        statuses = dict(s.execute(select(Broadcast.id, Broadcast.status)).all())
        per_broadcast = dict(
            s.execute(select(Delivery.broadcast_id, func.count()).group_by(Delivery.broadcast_id)).all()
        )
    assert [statuses[b] for b in bids] == [BroadcastStatus.DISPATCHED] * 2
    assert statuses[later[0]] is BroadcastStatus.PLANNED
    assert per_broadcast == {bids[0]: 1, bids[1]: 1}
    assert _count(rig.db, Command) == 2


def _ack_through_refused_writes(rig: Rig, caplog: pytest.LogCaptureFixture, failed_writes: int) -> None:
    """An ack sent while a trigger refuses every write to deliveries (a locked, restarting or absent
    database), the trigger dropped after `failed_writes` retries: the ack is written, not dropped."""
    bid = plan(rig.db, T0 + timedelta(seconds=10), zone="thon-1")
    rig.dispatcher.dispatch(bid)
    assert rig.writer.flush()
    with rig.db.session() as s:
        cmd = s.scalars(select(Command)).one()
    with rig.db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE UPDATE ON deliveries BEGIN SELECT RAISE(ABORT, 'database is busy'); END"
        )
    caplog.set_level(logging.WARNING, logger="broadcaster.dispatch.events")
    rig.writer.put("ack", cmd.device_id, protocol.make_ack(cmd.id, "received", T0))
    wait_for(lambda: sum("retrying" in r.getMessage() for r in caplog.records) >= failed_writes, 10, "failed writes")
    with rig.db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse")
    assert rig.writer.flush(timeout=15)
    assert _delivery_status(rig.db) == [DeliveryStatus.RECEIVED]


def test_acks_survive_a_database_away_for_longer_than_a_few_retries(
    sqlite_rig: Rig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database away for ten seconds (bench/faults.py's outage) once cost the final acks that came
    meanwhile: the writer gave up after 7.5 s, and a command acknowledged once is never asked again. The
    pauses now add up to about a minute; here they are a tenth as long, and the outage outlasts the
    first three."""
    from broadcaster.dispatch import events

    assert sum(events.WRITE_RETRY_S) >= 60  # a 10-s outage, with room for a failover
    monkeypatch.setattr(events, "WRITE_RETRY_S", tuple(p / 10 for p in events.WRITE_RETRY_S))
    _ack_through_refused_writes(sqlite_rig, caplog, failed_writes=4)


def test_acks_survive_a_database_that_refuses_a_write_for_a_moment(
    sqlite_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer's batch fails (a trigger refuses it, as a locked or restarting database would): it is
    written again, not dropped."""
    _ack_through_refused_writes(sqlite_rig, caplog, failed_writes=1)
