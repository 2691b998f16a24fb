"""What the daemon prints once it is up: where to reach it, and how to try it at once."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from broadcaster.config import Config
from schedules import QuietHours
from schedules.clock import Clock, to_local

# What a commune-level unit is called: a name may already say which it is ("Xã mẫu", "Phường 3").
_UNITS = ("xã", "phường", "thị trấn")


def commune_label(name: str) -> str:
    """ "xã Tân Lập" for "Tân Lập", but "Xã mẫu" as it is, not "xã Xã mẫu"."""
    name = " ".join(name.split())
    if any(name.lower() == unit or name.lower().startswith(unit + " ") for unit in _UNITS):
        return name
    return f"xã {name}"


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
    config: Config,
    clock: Clock,
    *,
    api_url: str,
    broker_url: str,
    managed_broker: bool,
    simulated: bool,
    audio_url: str = "",
    demo_password: str | None = None,
    accounts: bool | None = None,
) -> str:
    """`demo_password`: the simulated commune's admin was just created, and this is the only time its
    password is shown. `accounts`: whether anyone can sign in yet (None: not known)."""
    data = Path(config.general.data_dir).resolve()
    lines = [
        f"loa đang chạy — {commune_label(config.general.commune)}",
        f"  Trang web:  {api_url}/ (bàn làm việc của cán bộ)",
        f"  API:        {api_url}/api/v1/health",
    ]
    if audio_url:
        lines.append(f"  Âm thanh:   {audio_url}/audio/<sha256>.mp3 (thiết bị tải về)")
        lines.append(f"  Nghe lại:   {audio_url}/nghe-lai (bà con nghe lại, podcast; góp ý qua mã QR)")
    lines += [
        f"  Broker:     {broker_url}{' (do loa quản lý)' if managed_broker else ''}",
        f"  Dữ liệu:    {data}",
    ]
    if simulated:
        lines.append(
            f"  Mô phỏng:   {config.simulation.villages} thôn (loa + bảng LED), tệp đã phát trong {data / 'sim'}"
        )
    if demo_password:
        lines.append(
            f"  Đăng nhập:  admin / {demo_password}  (chỉ hiện lần này; đổi mật khẩu ở lần đăng nhập đầu)"
        )
    elif simulated and accounts:
        lines.append("  Đăng nhập:  admin (mật khẩu in lần chạy đầu; quên: .venv/bin/loa user passwd admin --generate)")
    elif accounts is False:
        lines.append("  Chưa có tài khoản: tạo quản trị viên đầu tiên bằng .venv/bin/loa user add TEN --role admin")
    note = quiet_hours_note(config, clock)
    if note:
        lines.append(f"  {note}")
    who = "admin" if simulated or demo_password else "TEN"
    lines += [
        "Thử ngay / try it:",
        f"  TOKEN=$(.venv/bin/loa token add --user {who} --name thu-ngay --role officer)",
        f"  curl -s -X POST {api_url}/api/v1/announcements -H \"Authorization: Bearer $TOKEN\" "
        "-H 'Content-Type: application/json' "
        '-d \'{"text": "UBND xã thông báo: 7h30 sáng mai họp thôn.", "zones": ["all"], "at": "+2m"}\'',
    ]
    if config.security.require_approval:  # what an officer sends waits for an approver
        lines.append("  .venv/bin/loa approvals; .venv/bin/loa approve 1   # duyệt để phát / approve it to air")
    lines.append("  .venv/bin/loa status")
    return "\n".join(lines)
