"""The daemon's way to the devices and back, built in one place (daemon, tests and the fan-out bench):
the writer records what the link hears, the dispatcher sends through the link, a device coming online
makes it re-send, and the loop keeps re-reading the database."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from broadcaster import protocol
from broadcaster.config import DispatchConfig
from broadcaster.db import Database
from broadcaster.dispatch.bodies import AudioUrl
from broadcaster.dispatch.dispatcher import Dispatcher
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.dispatch.link import DeviceLink
from broadcaster.protocol.mqtt import BrokerAddress
from broadcaster.runtime.loop import ReconcileLoop
from broadcaster.runtime.timer import Timer
from schedules.clock import Clock

log = logging.getLogger(__name__)


@dataclass
class DevicePath:
    writer: EventWriter
    link: DeviceLink
    dispatcher: Dispatcher
    metrics: Metrics
    loop: ReconcileLoop

    @classmethod
    def build(
        cls,
        db: Database,
        clock: Clock,
        settings: DispatchConfig,
        signer: protocol.Signer,
        address: BrokerAddress,
        audio_url: AudioUrl,
        *,
        topics: protocol.Topics | None = None,
        client_id: str = "loa-daemon",
        chores: Sequence[Callable[[], object]] = (),
        writer: EventWriter | None = None,
    ) -> DevicePath:
        metrics = writer.metrics if writer is not None else Metrics()
        writer = writer or EventWriter(db, clock, metrics)
        link = DeviceLink(address, topics or protocol.Topics(), writer, metrics, client_id=client_id)
        dispatcher = Dispatcher(db, clock, settings, signer, link, Timer(clock), audio_url)
        writer.on_devices_online = dispatcher.on_devices_online
        loop = ReconcileLoop(dispatcher.reconcile, settings.reconcile_s, chores)
        return cls(writer, link, dispatcher, metrics, loop)

    def start(self, *, dispatch: bool = True) -> None:
        """`dispatch=False` leaves the dispatcher and its loop off, for callers that drive it by hand."""
        self.writer.start()
        self.link.start()
        if dispatch:
            self.dispatcher.start()
            self.loop.start()

    def stop(self) -> None:
        for part in (self.loop, self.dispatcher, self.link, self.writer):
            try:
                part.stop()
            except Exception:
                log.exception("while stopping %s", type(part).__name__)
