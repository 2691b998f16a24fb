"""What the daemon prints once it is up: where to reach it, and how to try it at once."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from broadcaster.config import Config
from schedules import QuietHours
from schedules.clock import Clock, to_local


def quiet_hours_note(config: Config, clock: Clock) -> str | None:
    """Why the banner's example would be refused right now, and what to do instead."""
    s = config.schedule
    quiet = QuietHours(time.fromisoformat(s.quiet_start), time.fromisoformat(s.quiet_end))
    if not quiet.contains(to_local(clock.now()).time()):
        return None
    return (
        f"Lưu ý: đang trong giờ yên tĩnh ({s.quiet_start}–{s.quiet_end}): thông báo thường sẽ bị từ chối và chỉ "
        f"tin khẩn cấp được phát; hãy hẹn giờ sau {s.quiet_end} (--at), hoặc đổi [schedule] trong cấu hình."
    )


def banner(
    config: Config, clock: Clock, *, api_url: str, broker_url: str, managed_broker: bool, simulated: bool
) -> str:
    data = Path(config.general.data_dir).resolve()
    lines = [
        f"loa đang chạy — xã {config.general.commune}",
        f"  API:        {api_url}/api/v1/health",
        f"  Âm thanh:   {api_url}/audio/<sha256>.mp3",
        f"  Broker:     {broker_url}{' (do loa quản lý)' if managed_broker else ''}",
        f"  Dữ liệu:    {data}",
    ]
    if simulated:
        lines.append(
            f"  Mô phỏng:   {config.simulation.villages} thôn (loa + bảng LED), tệp đã phát trong {data / 'sim'}"
        )
    note = quiet_hours_note(config, clock)
    if note:
        lines.append(f"  {note}")
    lines += [
        "Thử ngay / try it:",
        f"  curl -s -X POST {api_url}/api/v1/announcements -H 'Content-Type: application/json' "
        '-d \'{"text": "UBND xã thông báo: 7h30 sáng mai họp thôn.", "zones": ["all"], "at": "+10s"}\'',
        "  .venv/bin/loa status",
    ]
    return "\n".join(lines)
