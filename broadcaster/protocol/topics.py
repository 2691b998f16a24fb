"""Where each message of the device protocol travels (docs/protocol.md, "Topics")."""

from __future__ import annotations

from dataclasses import dataclass

from broadcaster.protocol.version import DEFAULT_PREFIX


@dataclass(frozen=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    def cmd(self, device_id: str) -> str:
        return f"{self.prefix}/dev/{device_id}/cmd"

    def ack(self, device_id: str) -> str:
        return f"{self.prefix}/dev/{device_id}/ack"

    def status(self, device_id: str) -> str:
        return f"{self.prefix}/dev/{device_id}/status"

    def tele(self, device_id: str) -> str:
        return f"{self.prefix}/dev/{device_id}/tele"

    def time(self, device_id: str) -> str:
        """Where a device asks the daemon's time (docs/protocol.md, *Clock offset*)."""
        return f"{self.prefix}/dev/{device_id}/time"

    def clock(self, device_id: str) -> str:
        """Where the daemon answers a device's time request, signed."""
        return f"{self.prefix}/dev/{device_id}/clock"

    def group_cmd(self, zone_id: str) -> str:
        return f"{self.prefix}/zone/{zone_id}/cmd"

    def all_acks(self) -> str:
        return f"{self.prefix}/dev/+/ack"

    def all_status(self) -> str:
        return f"{self.prefix}/dev/+/status"

    def all_tele(self) -> str:
        return f"{self.prefix}/dev/+/tele"

    def all_time(self) -> str:
        return f"{self.prefix}/dev/+/time"

    def device_of(self, topic: str) -> tuple[str, str] | None:
        """('device-id', 'ack') for a device topic under this prefix, else None."""
        head = f"{self.prefix}/dev/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 2 or not parts[0]:
            return None
        return parts[0], parts[1]
