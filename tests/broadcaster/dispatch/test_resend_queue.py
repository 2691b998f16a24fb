"""A command still waiting in the MQTT client's own queue is not re-sent: paho sends it (again after a
reconnect) itself, and re-publishing it every reconcile while a busy link drained the first copies grew
that queue without end (bench/load.py, #15)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.broker.managed import ManagedBroker
from broadcaster.db import Command
from schedules.clock import FakeClock
from tests.broadcaster.dispatch.test_dispatch import T0, Rig, make_rig, plan
from tests.broadcaster.harness import wait_for


@pytest.fixture
def rig(tmp_path: Path, broker: ManagedBroker, sqlite_url: str) -> Iterator[Rig]:
    yield from make_rig(tmp_path, broker, sqlite_url, FakeClock(T0))


def _sent(rig: Rig) -> list[bool]:
    with rig.db.session() as s:
        return [t is not None for t in s.scalars(select(Command.sent_at).order_by(Command.device_id))]


def test_commands_waiting_in_the_client_queue_are_not_published_again(rig: Rig) -> None:
    client = rig.link.client
    client.disconnect()  # the link is down: paho keeps what is published, unconfirmed, for the reconnect
    client.loop_stop()
    rig.dispatcher.dispatch(plan(rig.db, T0 + timedelta(seconds=40)))
    assert rig.writer.flush()
    assert len(rig.link.unconfirmed()) == 2 and _sent(rig) == [False, False]
    queued = len(client._out_messages)
    rig.clock.advance(timedelta(seconds=20))  # past RESEND_AFTER_S: unconfirmed, and no ack
    assert rig.dispatcher.resend_pending(only_unsent=True) == 0
    assert rig.dispatcher.resend_pending(only_unsent=False) == 0
    assert len(client._out_messages) == queued  # nothing added to paho's queue
    client.reconnect()
    client.loop_start()
    wait_for(lambda: _sent(rig) == [True, True], 10, "the queued commands confirmed by the broker")
    assert rig.link.unconfirmed() == set()
