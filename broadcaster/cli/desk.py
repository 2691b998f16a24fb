"""The technician's desk at the server's terminal: what waits for approval, approving and rejecting it,
the commune's lexicon and the LED slogans (`loa approvals`, `loa approve`, `loa reject`, `loa lexicon`,
`loa slogan`).

Like every `loa` command they work on the database directly, under the operating-system account that
runs them (`os_account`), and a running daemon picks an approval up within its reconcile interval.
Only the parsers are built at import (the standard library alone, like broadcaster/cli/main.py); each
command imports the services when it runs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

JSON_HELP = "in kết quả dạng JSON, cho chương trình khác đọc"


PROGRAMME_HELP = "SỐ là số của một chương trình lặp lại (loa approvals in ra), không phải của thông báo"


def add_desk_commands(sub: Any) -> None:
    """The desk's subcommands, on `loa`'s subparsers."""
    w = sub.add_parser("approvals", help="các thông báo đang chờ duyệt, chờ lâu nhất trước")
    w.add_argument("--json", action="store_true", help=JSON_HELP)
    w.set_defaults(run="broadcaster.cli.desk:cmd_approvals")

    a = sub.add_parser("approve", help="duyệt một thông báo đang chờ: nó được lên lịch phát ngay")
    a.add_argument("id", type=int, metavar="SỐ", help="số thông báo (loa approvals in ra)")
    a.add_argument("--programme", action="store_true", help=PROGRAMME_HELP)
    a.add_argument("--json", action="store_true", help=JSON_HELP)
    a.set_defaults(run="broadcaster.cli.desk:cmd_approve")

    r = sub.add_parser("reject", help="trả lại một thông báo đang chờ duyệt, kèm lý do để cán bộ sửa")
    r.add_argument("id", type=int, metavar="SỐ", help="số thông báo (loa approvals in ra)")
    r.add_argument("--programme", action="store_true", help=PROGRAMME_HELP)
    r.add_argument("--reason", required=True, metavar="LÝ_DO", help="cần sửa gì (cán bộ soạn tin sẽ đọc)")
    r.add_argument("--json", action="store_true", help=JSON_HELP)
    r.set_defaults(run="broadcaster.cli.desk:cmd_reject")

    lx = sub.add_parser("lexicon", help="từ điển của xã: cách đọc chữ viết tắt, tên thôn, tên người")
    lsub = lx.add_subparsers(dest="lexicon_action", required=True, metavar="VIỆC")
    la = lsub.add_parser("add", help="thêm cách đọc (nghe thấy ngay ở lần chuyển giọng nói sau)")
    la.add_argument("written", metavar="CHỮ_VIẾT", help="như khi viết, ví dụ NVH hoặc 'Nà Hẩu'")
    la.add_argument("spoken", metavar="CÁCH_ĐỌC", help="đọc thành chữ, ví dụ 'nhà văn hóa'")
    ll = lsub.add_parser("list", help="các cách đọc của xã")
    ll.add_argument("--json", action="store_true", help=JSON_HELP)
    lr = lsub.add_parser("remove", help="bỏ một cách đọc")
    lr.add_argument("id", type=int, metavar="SỐ", help="số mục (loa lexicon list in ra)")
    for cmd in (la, ll, lr):
        cmd.set_defaults(run="broadcaster.cli.desk:cmd_lexicon")

    sg = sub.add_parser("slogan", help="khẩu hiệu: bảng LED lần lượt hiện khi không có tin")
    ssub = sg.add_subparsers(dest="slogan_action", required=True, metavar="VIỆC")
    sa = ssub.add_parser("add", help="thêm khẩu hiệu (cuối vòng, trừ khi có --order)")
    sa.add_argument("text", metavar="NỘI_DUNG", help="nội dung khẩu hiệu")
    sa.add_argument("--zone", action="append", metavar="KHU_VỰC", help="chỉ các bảng LED ở khu vực này (lặp lại được)")
    sa.add_argument("--order", type=int, default=None, metavar="SỐ", help="thứ tự trong vòng (nhỏ hiện trước)")
    sl = ssub.add_parser("list", help="các khẩu hiệu theo thứ tự hiện")
    sl.add_argument("--json", action="store_true", help=JSON_HELP)
    sr = ssub.add_parser("remove", help="bỏ một khẩu hiệu")
    sr.add_argument("id", type=int, metavar="SỐ", help="số khẩu hiệu (loa slogan list in ra)")
    for cmd in (sa, sl, sr):
        cmd.set_defaults(run="broadcaster.cli.desk:cmd_slogan")


def _services(args: argparse.Namespace) -> Any:
    from broadcaster.config import load_config
    from broadcaster.services.build import build_services
    from schedules.clock import SystemClock

    return build_services(load_config(args.config), SystemClock())


def _print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _when(item: dict[str, Any]) -> str:
    start = item["request"]["start_at_local"]
    return f"lúc {start}" if start else "ngay khi được duyệt"


def cmd_approvals(args: argparse.Namespace) -> int:
    from broadcaster.services.approvals import waiting, waiting_programmes

    svc = _services(args)
    items = waiting(svc, lang=args.lang)
    programmes = waiting_programmes(svc)
    if args.json:
        _print_json({"announcements": items, "programmes": programmes})
        return 0
    if not items and not programmes:
        print("Không có thông báo hay chương trình nào chờ duyệt.")
        return 0
    for prog in programmes:
        print(f"chương trình #{prog['id']} {prog['title']} ({prog['kind']}): {prog['recurrence']}"
              f" tại {', '.join(prog['zones'])}; soạn bởi {prog['created_by']}"
              f" — duyệt: loa approve {prog['id']} --programme")  # fmt: skip
    for item in items:
        sent = item["approval"]["submitted"]["at_local"] or ""
        zones = ", ".join(item["request"]["zones"])
        print(f"#{item['id']} {item['title']} ({item['priority']})")
        print(f"  soạn bởi {item['created_by']}, gửi duyệt {sent}; phát {_when(item)} tại {zones}")
        print(f"  {item['text'][:200]}")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from broadcaster.cli import os_account
    from broadcaster.services.approvals import approve, approve_programme

    if args.programme:
        prog = approve_programme(_services(args), args.id, actor=os_account())
        if args.json:
            _print_json(prog)
            return 0
        print(f"Đã duyệt chương trình #{args.id}: {len(prog.get('placements', []))} lượt phát đã xếp lịch")
        return 0
    item = approve(_services(args), args.id, actor=os_account(), lang=args.lang)
    if args.json:
        _print_json(item)
        return 0
    print(f"Đã duyệt thông báo #{item['id']}: {item['title']}")
    for p in item["placements"]:
        print(f"  phát tại {', '.join(p['village_names'])} lúc {p['start_at_local']} — {p['explanation']}")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    from broadcaster.cli import os_account
    from broadcaster.services.approvals import reject, reject_programme

    if args.programme:
        prog = reject_programme(_services(args), args.id, args.reason, actor=os_account())
        if args.json:
            _print_json(prog)
            return 0
        print(f"Đã trả lại chương trình #{prog['id']}: {prog['title']} — lý do: {prog['decision_reason']}")
        return 0
    item = reject(_services(args), args.id, args.reason, actor=os_account(), lang=args.lang)
    if args.json:
        _print_json(item)
        return 0
    print(f"Đã trả lại thông báo #{item['id']}: {item['title']} — lý do: {item['approval']['reason']}")
    return 0


def cmd_lexicon(args: argparse.Namespace) -> int:
    from broadcaster.cli import os_account
    from broadcaster.services.lexicon import add_entry, delete_entry, list_entries

    svc = _services(args)
    if args.lexicon_action == "add":
        entry = add_entry(svc, args.written, args.spoken, actor=os_account())
        print(f"Đã thêm #{entry['id']}: {entry['written']} → {entry['spoken']}")
    elif args.lexicon_action == "remove":
        entry = delete_entry(svc, args.id, actor=os_account())
        print(f"Đã bỏ #{entry['id']}: {entry['written']} → {entry['spoken']}")
    elif args.json:
        _print_json(list_entries(svc))
    else:
        entries = list_entries(svc)
        for entry in entries:
            print(f"#{entry['id']} {entry['written']} → {entry['spoken']}  ({entry['updated_by']})")
        if not entries:
            print("Từ điển của xã đang trống.")
    return 0


def cmd_slogan(args: argparse.Namespace) -> int:
    from broadcaster.cli import os_account
    from broadcaster.services.slogans import add_slogan, delete_slogan, list_slogans

    svc = _services(args)
    if args.slogan_action == "add":
        slogan = add_slogan(svc, args.text, zones=args.zone, order=args.order, actor=os_account())
        print(f"Đã thêm khẩu hiệu #{slogan['id']} (thứ tự {slogan['order']}): {slogan['text']}")
    elif args.slogan_action == "remove":
        slogan = delete_slogan(svc, args.id, actor=os_account())
        print(f"Đã bỏ khẩu hiệu #{slogan['id']}: {slogan['text']}")
    elif args.json:
        _print_json(list_slogans(svc))
    else:
        slogans = list_slogans(svc)
        for s in slogans:
            where = ", ".join(s["zones"]) or "mọi bảng LED"
            state = "" if s["active"] else " (tạm ẩn)"
            print(f"#{s['id']} [{s['order']}] {s['text']} — {where}{state}")
        if not slogans:
            print("Chưa có khẩu hiệu nào.")
    return 0
