"""`loa backup DEST` and `loa restore ARCHIVE` (broadcaster/runtime/backup.py does the work; docs/operations.md).

Only the parsers are built at import (the standard library alone, like broadcaster/cli/main.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

JSON_HELP = "in kết quả dạng JSON, cho chương trình khác đọc"


def add_backup_commands(sub: Any) -> None:
    b = sub.add_parser("backup", help="sao lưu cơ sở dữ liệu, âm thanh và khóa của daemon vào một tệp (chạy được "
                       "khi daemon đang chạy)")  # fmt: skip
    b.add_argument("dest", type=Path, metavar="ĐÍCH",
                   help="tệp .tar sẽ ghi (hoặc thư mục: loa-backup-NGÀY-GIỜ.tar trong đó); giữ kín: "
                   "có khóa ký")  # fmt: skip
    b.add_argument("--json", action="store_true", help=JSON_HELP)
    b.set_defaults(run="broadcaster.cli.backup:cmd_backup")
    r = sub.add_parser("restore", help="khôi phục một bản sao lưu vào chỗ trống (thư mục dữ liệu mới)")
    r.add_argument("archive", type=Path, metavar="TỆP", help="tệp loa backup đã ghi")
    r.add_argument("--json", action="store_true", help=JSON_HELP)
    r.set_defaults(run="broadcaster.cli.backup:cmd_restore")


def cmd_backup(args: argparse.Namespace) -> int:
    from broadcaster.config import load_config
    from broadcaster.runtime.backup import backup

    info = backup(load_config(args.config), args.dest)
    out: dict[str, Any] = {"path": str(info.path), "database": info.database, "revision": info.revision,
                           "files": info.files, "bytes": info.bytes}  # fmt: skip
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"Đã sao lưu vào {info.path} ({info.bytes / 1_000_000:.1f} MB, cơ sở dữ liệu {info.database} "
              f"bản {info.revision}, {info.files} tệp). Giữ kín tệp này: có khóa ký của daemon.")  # fmt: skip
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from broadcaster.config import load_config
    from broadcaster.runtime.backup import restore

    config = load_config(args.config)
    manifest = restore(config, args.archive)
    if args.json:
        print(json.dumps(manifest, ensure_ascii=False))
    else:
        print(f"Đã khôi phục bản sao lưu lúc {manifest.get('created_at')} vào {config.general.data_dir} "
              f"(cơ sở dữ liệu bản {manifest.get('revision')}). Khởi động daemon để tiếp tục.")  # fmt: skip
    return 0
