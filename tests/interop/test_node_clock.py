"""Firmware in another language can trust the daemon's clock answers (docs/protocol.md, *Clock offset*): an
answer the daemon's own link really sent, taken off a real broker, verifies in Node's independent verifier
(verify_commands.mjs), and an edited one does not."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt

from broadcaster import protocol
from broadcaster.broker.managed import ManagedBroker
from broadcaster.protocol.mqtt import BrokerAddress, connect, new_client
from tests.interop.test_node_verifier import SPEAKER, Daemon, _node, daemon, node

__all__ = ["daemon", "node"]  # fixtures, shared with test_node_verifier


def test_node_verifies_the_daemons_clock_answer_and_refuses_an_edited_one(
    node: str, broker: ManagedBroker, daemon: Daemon
) -> None:
    topics = protocol.Topics()
    answers: list[bytes] = []
    got = threading.Event()
    subscribed = threading.Event()
    client = new_client("interop-clock")
    client.on_connect = lambda c, *_: c.subscribe(topics.clock(SPEAKER), qos=0)
    client.on_subscribe = lambda *_: subscribed.set()

    def keep(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        answers.append(bytes(m.payload))
        got.set()

    client.on_message = keep
    connect(client, BrokerAddress.parse(broker.url), persistent=False)
    client.loop_start()
    try:
        assert subscribed.wait(5), "no SUBACK from the broker"
        client.publish(topics.time(SPEAKER), protocol.encode(protocol.make_time_request(1_795_600_800_000_000)))
        assert got.wait(10), "the daemon did not answer the time request"
    finally:
        client.disconnect()
        client.loop_stop()
    (answer,) = answers
    reply = json.loads(answer)
    assert (reply["type"], reply["to"], reply["t1"]) == ("time", SPEAKER, 1_795_600_800_000_000)
    edited = protocol.encode({**reply, "t3": reply["t3"] + 2_000_000})  # two seconds moved: a shifted clock
    keys = {daemon.signer.kid: daemon.signer.public_b64}
    assert _node(node, [answer, edited], keys) == ["ok", "bad_signature"]
