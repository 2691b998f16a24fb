"""`loa user` and `loa token`: the commune's accounts and API tokens, from the server's own terminal.

Like every `loa` command they work on the database directly, so the first admin of a real commune is
made here (`loa user add NAME --role admin`), before anyone can sign in. The audit log names the
operating-system account that ran the command (`os_account`): that is who was authenticated.
Passwords are asked twice on a terminal, never taken as an argument (it would sit in the shell's
history and in `ps`); a script pipes one line with `--password-stdin`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from broadcaster.cli import os_account
from broadcaster.config import load_config
from broadcaster.errors import LoaError
from broadcaster.services import Services
from broadcaster.services.accounts import (
    create_user,
    disable_user,
    generate_password,
    issue_token,
    list_tokens,
    list_users,
    revoke_token,
    set_password,
)
from broadcaster.services.build import build_services
from schedules.clock import SystemClock


def _services(args: argparse.Namespace) -> Services:
    return build_services(load_config(args.config), SystemClock())


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The new password and whether it was generated (then it is shown once and works once)."""
    if args.generate:
        return generate_password(), True
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if not sys.stdin.isatty():
        raise LoaError("password_needed", {})
    first = getpass.getpass("Mật khẩu: ")
    if getpass.getpass("Nhập lại mật khẩu: ") != first:
        raise LoaError("password_mismatch", {})
    return first, False


def cmd_user(args: argparse.Namespace) -> int:
    svc = _services(args)
    actor = os_account()
    if args.user_action == "list":
        users = list_users(svc)
        if args.json:
            print(json.dumps(users, ensure_ascii=False, indent=2))
            return 0
        for u in users:
            state = "" if u["active"] else " (đã khóa)"
            first = " (chưa đổi mật khẩu một lần)" if u["must_change_password"] and u["active"] else ""
            print(f"  {u['username']:<20} {u['role']:<9} {u['display_name']}{state}{first}")
        return 0
    if args.user_action == "disable":
        disable_user(svc, args.name, actor=actor)
        print(f"Đã khóa tài khoản {args.name}: mọi phiên đăng nhập và mã truy cập của họ ngừng hoạt động.")
        return 0
    password, generated = _password(args)
    if args.user_action == "add":
        user = create_user(
            svc,
            args.name,
            args.role,
            password,
            actor=actor,
            display_name=args.display_name or "",
            must_change_password=generated,
        )
        print(f"Đã tạo tài khoản {user['username']} ({user['role']}).")
    else:
        set_password(svc, args.name, password, actor=actor, must_change_password=generated)
        print(f"Đã đặt mật khẩu mới cho {args.name}; các phiên đăng nhập cũ đã kết thúc.")
    if generated:
        print(f"Mật khẩu dùng một lần (chỉ hiện lần này, đổi ở lần đăng nhập đầu): {password}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    svc = _services(args)
    if args.token_action == "add":
        token = issue_token(svc, args.user, args.name, args.role, actor=os_account(), scopes=args.scopes)
        # stdout: the secret alone, for TOKEN=$(loa token add ...); stderr: what it is, for the person
        print(token["secret"])
        print(
            f"Mã truy cập #{token['id']} «{token['name']}» của {token['user']} ({token['role']}); chỉ hiện một lần, "
            f"dùng: Authorization: Bearer <mã>. Thu hồi: loa token revoke {token['id']}",
            file=sys.stderr,
        )
        return 0
    if args.token_action == "revoke":
        token = revoke_token(svc, args.id, actor=os_account())
        print(f"Đã thu hồi mã truy cập #{token['id']} «{token['name']}» của {token['user']}.")
        return 0
    tokens = list_tokens(svc, args.user)
    if args.json:
        print(json.dumps(tokens, ensure_ascii=False, indent=2))
        return 0
    for t in tokens:
        state = "đã thu hồi" if t["revoked_at"] else f"dùng lần cuối {t['last_used_at'] or '-'}"
        print(f"  #{t['id']:<4} {t['user']:<16} {t['role']:<9} {t['name']:<24} {state}")
    return 0
