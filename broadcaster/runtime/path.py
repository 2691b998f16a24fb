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
from broadcaster.dispatch.bodies import AudioUrl, LiveUrl
from broadcaster.dispatch.dispatcher import Dispatcher
from broadcaster.dispatch.events import EventWriter, Metrics
from broadcaster.dispatch.link import DeviceLink, share_group
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
        live_url: LiveUrl | None = None,
        persistent: bool = True,
    ) -> DevicePath:
        metrics = writer.metrics if writer is not None else Metrics()
        writer = writer or EventWriter(db, clock, metrics)
        # The shared-subscription group must be secret (see share_group): the broker password is, and so,
        # for a broker without passwords, is the signing key.
        group = share_group(address.password or signer.private.private_bytes_raw())
        link = DeviceLink(
            address,
            topics or protocol.Topics(),
            writer,
            metrics,
            client_id=client_id,
            group=group,
            signer=signer,
            clock=clock,
            persistent=persistent,  # False in a cluster: see DeviceLink
        )
        dispatcher = Dispatcher(db, clock, settings, signer, link, Timer(clock), audio_url, live_url)
        writer.on_devices_online = dispatcher.on_devices_online
        loop = ReconcileLoop(dispatcher.reconcile, settings.reconcile_s, chores)
        return cls(writer, link, dispatcher, metrics, loop)

    def start(self, *, dispatch: bool = True) -> None:
        """`dispatch=False` leaves the dispatcher and its loop off, for callers that drive it by hand and
        for a daemon that does not lead (it records what devices report, and `lead` starts the rest)."""
        self.writer.start()
        self.link.start()
        if dispatch:
            self.lead()

    def lead(self) -> None:
        """Start firing: the timer, catching up with the database, and the reconcile loop with its
        chores. Again after `follow`: a daemon that lost the lead and took it back."""
        self.dispatcher.start()
        if self.loop.started:
            self.loop = self.loop.fresh()
        self.loop.start()

    def follow(self) -> None:
        """Stop firing (the lead went to another daemon); what devices report is still recorded."""
        for part in (self.loop, self.dispatcher):
            try:
                part.stop()
            except Exception:
                log.exception("while stopping %s", type(part).__name__)

    def failing(self) -> list[str]:
        """The parts whose thread has stopped, for the health check: either one means what devices report
        is no longer recorded, and the outbox re-sends every command forever."""
        parts = {"mqtt_loop": self.link.running, "event_writer": self.writer.running}
        return [name for name, running in parts.items() if not running]

    def stop(self) -> None:
        for part in (self.loop, self.dispatcher, self.link, self.writer):
            try:
                part.stop()
            except Exception:
                log.exception("while stopping %s", type(part).__name__)
