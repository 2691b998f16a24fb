"""`loa voice install NAME` and `loa voice list`: the Piper voices (neural, offline) on this server.

An install fetches the voice's model and config once from `[speech] voices_base_url` (or `--base-url`,
a mirror on the office network), checks them against the pins kept in the repository, and is audited
under the operating-system account that runs it, like every `loa` command. Only the parsers are built
at import (the standard library alone, like broadcaster/cli/main.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

JSON_HELP = "in kết quả dạng JSON, cho chương trình khác đọc"


def add_voice_commands(sub: Any) -> None:
    v = sub.add_parser("voice", help="giọng đọc tự nhiên Piper (không cần mạng khi đã cài): cài đặt, liệt kê")
    vsub = v.add_subparsers(dest="voice_action", required=True, metavar="VIỆC")
    vi = vsub.add_parser("install", help="tải một giọng về (một lần), kiểm tra kích thước và SHA-256 rồi cài")
    vi.add_argument("name", metavar="TÊN", help="tên giọng, ví dụ vi_VN-vais1000-medium (loa voice list)")
    vi.add_argument("--base-url", default=None, metavar="URL",
                    help="nơi tải (mặc định: [speech] voices_base_url, kho giọng Piper)")  # fmt: skip
    vl = vsub.add_parser("list", help="các giọng đã cài và có thể cài")
    vl.add_argument("--json", action="store_true", help=JSON_HELP)
    for cmd in (vi, vl):
        cmd.set_defaults(run="broadcaster.cli.voices:cmd_voice")


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


class _Progress:
    """Whole percents on stderr when it is a terminal; nothing in a script's log."""

    def __init__(self) -> None:
        self.shown = -1
        self.tty = sys.stderr.isatty()

    def __call__(self, got: int, total: int) -> None:
        percent = int(100 * got / total) if total else 0
        if self.tty and percent != self.shown:
            self.shown = percent
            print(f"\rĐang tải: {percent}% ({_megabytes(got)})", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and self.shown >= 0:
            print(file=sys.stderr)


def cmd_voice(args: argparse.Namespace) -> int:
    from broadcaster.cli import os_account
    from broadcaster.config import load_config
    from broadcaster.services.audio import effective_engine
    from broadcaster.services.voices import install_voice, list_voices

    if args.voice_action == "list":
        config = load_config(args.config)
        voices = list_voices(config)
        if args.json:
            print(json.dumps({"engine": effective_engine(config), "voices": voices}, ensure_ascii=False, indent=2))
            return 0
        for voice in voices:
            state = f"đã cài, {_megabytes(voice['size'])}" if voice["installed"] else "chưa cài"
            if voice["size"] and not voice["installed"]:
                state = f"hỏng hoặc chưa đủ ({_megabytes(voice['size'])}); cài lại: loa voice install {voice['name']}"
            default = " — giọng mặc định ([speech] piper_voice)" if voice["default"] else ""
            print(f"{voice['name']}: {state}{default}")
            if voice["description"]:
                print(f"  {voice['description']}; giấy phép {voice['licence']}")
        print(f"Bộ đọc đang dùng: {effective_engine(config)} ([speech] engine = {config.speech.engine})")
        return 0
    from broadcaster.services.build import build_services
    from schedules.clock import SystemClock

    svc = build_services(load_config(args.config), SystemClock())
    bar = _Progress()
    try:
        done = install_voice(svc, args.name, actor=os_account(), base_url=args.base_url, progress=bar)
    finally:
        bar.close()
    print(f"Đã cài giọng {done['name']}: {_megabytes(done['size'])}, {done['sample_rate']} Hz, "
          f"SHA-256 {done['sha256']}")  # fmt: skip
    print(f"  {done['path']}")
    if svc.config.speech.engine == "auto" and svc.config.speech.piper_voice == done["name"]:
        print("Giọng này là giọng mặc định từ lần khởi động loa sau (espeak-ng đọc thay khi nó lỗi).")
    return 0
