"""A final outcome lost on its way (a broker killed with the `done` in it) is said again after a reconnect.

docs/protocol.md, "Final outcomes, said again": after each (re)connect a device publishes again the final
ack of every command whose expiry has not passed by REPEAT_FINAL_S; the daemon ignores one it has.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.device.core import REPEAT_FINAL_S, Ack, DeviceCore, Resend, SeenCommands
from broadcaster.device.sinks import NullSink
from broadcaster.device.speaker import SpeakerAgent
from tests.broadcaster.device.test_agent import Daemonish, agent_config
from tests.broadcaster.device.test_core import T0, acks, cid_of, cmd, ready, speaker
from tests.broadcaster.harness import wait_for


@pytest.fixture
def daemon(broker: ManagedBroker) -> Iterator[Daemonish]:
    d = Daemonish(broker)
    yield d
    d.close()


@pytest.fixture
def signer(tmp_path: Path) -> protocol.Signer:
    return protocol.load_or_create_signer(tmp_path / "k.pem")


def said_again(core: DeviceCore, now: float) -> list[tuple[str, str]]:
    out = core.reconnected(now)
    assert all(isinstance(a, Resend) for a in out)
    return [(a.message["cmd"], a.message["state"]) for a in out if isinstance(a, Resend)]


def test_a_reconnect_says_again_the_final_outcomes_not_yet_past_expiry(signer: protocol.Signer) -> None:
    core = speaker(signer)
    played = ready(core, cmd(signer, start=30, valid=60))  # expires at T0 + 90
    core.wake(played, T0 + 30)
    (done,) = core.ended(played, T0 + 34)
    assert isinstance(done, Ack) and done.state == "done"
    waiting = ready(core, cmd(signer, start=300, valid=600))  # downloaded, not final: nothing to say again
    broken_payload = cmd(signer, start=30, valid=600)  # expires at T0 + 630
    broken = cid_of(broken_payload)
    core.receive(broken_payload, T0 + 2)
    assert acks(core.fetched(broken, "download_failed: HTTP 404", T0 + 3))[0][1] == "failed"

    assert said_again(core, T0 + 40) == [(played, "done"), (broken, "failed")]
    out = core.reconnected(T0 + 40)
    assert isinstance(out[0], Resend) and out[0].message == done.message()  # the ack as it was, time and all
    assert waiting not in [c for c, _ in said_again(core, T0 + 40)]
    assert said_again(core, T0 + 90 + REPEAT_FINAL_S - 1) == [(played, "done"), (broken, "failed")]
    assert said_again(core, T0 + 90 + REPEAT_FINAL_S) == [(broken, "failed")]  # past its expiry and the grace
    assert said_again(core, T0 + 630 + REPEAT_FINAL_S) == []

    # across a reboot: the memory of ids (seen.json) holds the last acks, read back as messages
    seen = SeenCommands()
    seen.restore(core.seen.export())
    rebooted = speaker(signer, seen=seen)
    assert said_again(rebooted, T0 + 40) == [(played, "done"), (broken, "failed")]
    assert said_again(rebooted, T0 + 630 + REPEAT_FINAL_S) == []


def test_a_finished_command_sent_again_after_its_expiry_keeps_its_outcome(signer: protocol.Signer) -> None:
    """A re-send that arrives late (a device clock behind, a slow broker) is answered with the outcome,
    which it must not overwrite: an `expired` in its place would be said again after the next reconnect."""
    core = speaker(signer)
    payload = cmd(signer, start=30, valid=60)
    cid = ready(core, payload)
    core.wake(cid, T0 + 30)
    (done,) = core.ended(cid, T0 + 34)
    out = core.receive(payload, T0 + 95)
    assert isinstance(done, Ack) and Resend(done.message()) in out
    assert core.seen.last_message(cid) == done.message()
    assert said_again(core, T0 + 100) == [(cid, "done")]
    fresh = cmd(signer, start=30, valid=60)  # never taken: acked `expired` as before
    assert acks(core.receive(fresh, T0 + 95)) == [(cid_of(fresh)[:8], "expired", "expired")]


def test_a_real_agent_says_its_outcome_again_after_its_link_is_lost(
    tmp_path: Path, broker: ManagedBroker, daemon: Daemonish
) -> None:
    """The reference agent wires `reconnected` to every connect: a link lost under it (as a killed broker
    or a cut network does) is followed by the final ack again, as it was."""
    signer = protocol.load_or_create_signer(tmp_path / "k.pem")
    agent = SpeakerAgent(agent_config(tmp_path, broker, signer, sink="null"), sink=NullSink())
    agent.start()
    try:
        wait_for(lambda: daemon.status.get("thon-1-loa", {}).get("online"), 5, "the speaker online")
        now = datetime.now(UTC)
        ping = protocol.make_command(
            signer, "ping", {}, to="thon-1-loa", issued_at=now, start_at=now, expires_at=now + timedelta(minutes=5)
        )
        cid = daemon.send("thon-1-loa", ping)
        wait_for(lambda: daemon.states(cid) == ["done"], 5, "the ping answered")
        sock = agent.client.socket()
        assert isinstance(sock, socket.socket)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # paho reads EOF: the link is lost, and it reconnects
        wait_for(lambda: daemon.states(cid) == ["done", "done"], 15, "the outcome said again")
        assert daemon.acks[cid][1] == daemon.acks[cid][0]
    finally:
        agent.stop()
