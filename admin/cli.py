"""``kefu admin create-user NAME --role ROLE`` and ``kefu admin reset-password NAME``.

The password is asked for twice on a terminal and read from the first line of standard
input otherwise, so that provisioning scripts can pipe it in (never as an argument,
where it would show in the process list and shell history).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from admin.roles import Role
from webui.errors import BadInput


def register(subparsers: Any) -> None:
    admin = subparsers.add_parser("admin", help="console users")
    sub = admin.add_subparsers(dest="admin_command", required=True)
    create = sub.add_parser("create-user", help="add a console user (password from the terminal or stdin)")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--language", choices=["zh", "en"], default="zh")
    create.set_defaults(func=cmd_create_user)
    reset = sub.add_parser("reset-password", help="set a new password for a console user")
    reset.add_argument("name")
    reset.set_defaults(func=cmd_reset_password)


def read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise BadInput("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_create_user(args: argparse.Namespace) -> int:
    password = read_password()
    asyncio.run(_with_users(args, lambda users: users.create(args.name, Role(args.role), password, language=args.language)))
    print(f"user {args.name} ({args.role}) created")
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    password = read_password()
    asyncio.run(_with_users(args, lambda users: users.set_password(args.name, password)))
    print(f"password of {args.name} changed")
    return 0


async def _with_users(args: argparse.Namespace, action: Any) -> None:
    from bot.config import load_settings
    from bot.stores import close_stores, open_stores
    from admin.audit import AuditLog
    from admin.users import UserStore

    settings = load_settings(args.config)
    redis, mongo, embedded = await open_stores(settings)
    try:
        db = mongo.get_default_database("kefu")
        users = UserStore(db)
        await action(users)
        what = "user.create" if args.func is cmd_create_user else "user.reset_password"
        after = (await users.require(args.name)).public() if what == "user.create" else "***"
        await AuditLog(db).record("cli", what, args.name, after=after)
    finally:
        await close_stores(redis, mongo, embedded)
