"""News feeds at the server's terminal: `loa feed add URL [--zone Z]`, `loa feed list`, `loa feed remove ID`,
`loa feed poll [ID]` (read now, here, rather than waiting for the daemon's poller).

Like every `loa` command they work on the database directly, under the operating-system account that
runs them. Only the parsers are built at import (standard library alone); each command imports the
services (and, to poll, broadcaster/ingest/) when it runs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

JSON_HELP = "in kết quả dạng JSON, cho chương trình khác đọc"


def add_feed_commands(sub: Any) -> None:
    """`loa feed ...`, on `loa`'s subparsers."""
    fd = sub.add_parser("feed", help="nguồn tin RSS/Atom: bài mới thành bản nháp chờ duyệt")
    fsub = fd.add_subparsers(dest="feed_action", required=True, metavar="VIỆC")
    fa = fsub.add_parser("add", help="theo dõi một nguồn tin (đọc ngay, rồi theo chu kỳ)")
    fa.add_argument("url", metavar="ĐỊA_CHỈ", help="địa chỉ http(s) của nguồn RSS hoặc Atom")
    fa.add_argument("--zone", action="append", metavar="KHU_VỰC",
                    help="bản nháp phát ở khu vực này (lặp lại được; mặc định: cả xã)")  # fmt: skip
    fa.add_argument("--title", default="", metavar="TÊN", help="tên hiển thị (mặc định: tên trong nguồn tin)")
    fa.add_argument(
        "--every", type=int, default=None, metavar="PHÚT", help="đọc lại sau mỗi ngần ấy phút (mặc định 30)"
    )
    fl = fsub.add_parser("list", help="các nguồn tin, đang tốt hay đang lỗi và vì sao")
    fl.add_argument("--json", action="store_true", help=JSON_HELP)
    fr = fsub.add_parser("remove", help="thôi theo dõi một nguồn tin (bản nháp đã có vẫn giữ)")
    fr.add_argument("id", type=int, metavar="SỐ", help="số nguồn tin (loa feed list in ra)")
    fp = fsub.add_parser("poll", help="đọc ngay một nguồn tin (hoặc tất cả) tại đây")
    fp.add_argument("id", type=int, nargs="?", default=None, metavar="SỐ", help="số nguồn tin (mặc định: tất cả)")
    fp.add_argument("--json", action="store_true", help=JSON_HELP)
    for cmd in (fa, fl, fr, fp):
        cmd.set_defaults(run="broadcaster.cli.feeds:cmd_feed")


def _services(args: argparse.Namespace) -> Any:
    from broadcaster.config import load_config
    from broadcaster.services.build import build_services
    from schedules.clock import SystemClock

    return build_services(load_config(args.config), SystemClock())


def _state(feed: dict[str, Any]) -> str:
    if feed["status"] == "failing":
        return f"LỖI: {feed['error']}"
    if feed["status"] == "new":
        return "chưa đọc lần nào"
    return f"tốt (đọc lúc {feed['checked_local']})"


def _print_feed(feed: dict[str, Any]) -> None:
    title = f" {feed['title']}" if feed["title"] else ""
    print(f"#{feed['id']}{title} — {feed['url']}")
    print(f"  {_state(feed)}; khu vực {', '.join(feed['zones'])}; mỗi {feed['every_min']} phút")
    for p in feed["problems"]:
        print(f"  bỏ qua {p['url']}: {p['reason']}")


def cmd_feed(args: argparse.Namespace) -> int:
    from broadcaster.cli import os_account
    from broadcaster.services.feeds import active_ids, add_feed, get_feed, list_feeds, remove_feed

    svc = _services(args)
    if args.feed_action == "add":
        feed = add_feed(svc, args.url, zones=args.zone, title=args.title, every_min=args.every, actor=os_account(),
                        lang=args.lang)  # fmt: skip
        print(f"Đã thêm nguồn tin #{feed['id']}: {feed['url']} (daemon đọc ngay, hoặc: loa feed poll {feed['id']})")
    elif args.feed_action == "remove":
        feed = remove_feed(svc, args.id, actor=os_account(), lang=args.lang)
        print(f"Đã thôi theo dõi nguồn tin #{feed['id']}: {feed['url']}")
    elif args.feed_action == "list":
        feeds = list_feeds(svc, lang=args.lang)
        if args.json:
            print(json.dumps(feeds, ensure_ascii=False, indent=2))
        for feed in [] if args.json else feeds:
            _print_feed(feed)
        if not feeds and not args.json:
            print("Chưa theo dõi nguồn tin nào: loa feed add ĐỊA_CHỈ")
    else:
        from broadcaster.ingest.feeds import poll_now

        ids = [args.id] if args.id is not None else active_ids(svc)
        done = []
        for feed_id in ids:
            result = poll_now(svc, feed_id)
            feed = get_feed(svc, feed_id, lang=args.lang)
            done.append({**feed, "new_drafts": result.drafted})
            if not args.json:
                drafts = ", ".join(f"#{i}" for i in result.drafted) or "không có"
                print(f"Nguồn tin #{feed_id}: {_state(feed)}; bản nháp mới chờ duyệt: {drafts}")
                for p in feed["problems"]:
                    print(f"  bỏ qua {p['url']}: {p['reason']}")
        if args.json:
            print(json.dumps(done, ensure_ascii=False, indent=2))
        if any(f["status"] == "failing" for f in done):
            return 1
    return 0
