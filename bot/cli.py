"""The ``kefu`` command: run the gateway, try it, manage its models.

Sub-commands of optional parts (``nlu``, ``speech``) live in their packages and register
themselves here through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.config import Settings, load_settings, redact
from bot.errors import KefuError
from bot.logs import configure as configure_logging

log = logging.getLogger("kefu")

# Packages that add their own sub-commands. One whose optional third-party dependency is
# not installed is skipped; a module of ours that fails to import is an error, not a
# sub-command that silently disappears.
_OUR_PACKAGES = frozenset({"bot", "channels", "skills", "speech", "preferences", "admin", "knowledge", "portal", "webui"})
COMMAND_MODULES = ("bot.nlu.cli", "speech.cli", "skills.review_remediation.cli", "knowledge.cli", "admin.cli")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _log_section(args: argparse.Namespace) -> Mapping[str, Any]:
    """The ``log`` section, or the defaults while the config cannot be read (the
    command that reads it then reports why)."""
    try:
        return _settings(args).section("log")
    except (KefuError, OSError):
        return {}


def cmd_run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import build_app

    settings = _settings(args)
    if args.port:
        from dataclasses import replace

        settings = replace(settings, http=replace(settings.http, port=args.port))
    log.info("config: %s", settings.source)
    if settings.source == "<embedded demo>":
        from bot.demo import demo_banner

        log.warning("no kefu.yml found: running the embedded demo (public demo keys, fake WeChat API under /_sim/wechat)")
        key = str(settings.section("api")["keys"][0]["key"])
        password = str(settings.section("console")["demo_users"][0]["password"])
        print(demo_banner(key, password, settings.http.public_url, settings.data_dir), flush=True)  # for the person at the terminal, not the log
    app = build_app(settings, role=args.role)
    if args.role == "worker" and not args.port:
        asyncio.run(_run_headless(app))
        return 0
    # A worker given --port serves only /healthz, /readyz and /metrics there.
    web.run_app(app, host=settings.http.host, port=settings.http.port, print=None, access_log=None)
    return 0


async def _run_headless(app: Any) -> None:
    """Run the app's startup/cleanup (stores, workers) without serving HTTP."""
    import signal

    from aiohttp import web

    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker running; Ctrl-C to stop")
    await stop.wait()
    await runner.cleanup()


def cmd_simulate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    interactive = args.channel == "chat"
    if interactive:
        args.channel = args.chat_channel
    elif not (args.text or args.voice or args.event):
        print("kefu simulate: give --text, --voice or --event (or use `kefu simulate chat`)", file=sys.stderr)
        return 2
    accounts = settings.accounts(args.channel)
    if not accounts:
        print(f"no {args.channel} account is configured in {settings.source}", file=sys.stderr)
        return 2
    chosen = [a for a in accounts if a.get("account") == args.account] if args.account else list(accounts[:1])
    if not chosen:
        names = ", ".join(str(a.get("account")) for a in accounts)
        print(f"no {args.channel} account {args.account!r} (configured: {names})", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"channels.{args.channel}.simulator")
    except ModuleNotFoundError:
        print(f"no simulator for channel {args.channel}", file=sys.stderr)
        return 2
    gateway = args.url or settings.http.public_url
    options = module.SimulateOptions(
        **{k: v for k, v in {
            "sender": args.sender,
            "text": args.text or "",
            "voice": Path(args.voice) if args.voice else None,
            "event": args.event or "",
            "wait_s": args.wait,
        }.items() if k in module.SimulateOptions.__dataclass_fields__}
    )

    async def go() -> list[str]:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            result: list[str] = await module.simulate(session, gateway, chosen[0], options)
            return result

    if interactive:
        return _chat(module, gateway, chosen[0], options)

    try:
        replies = asyncio.run(go())
    except Exception as exc:  # the user wants one line, not a traceback
        print(f"simulation failed: {exc}", file=sys.stderr)
        return 1
    if not replies:
        print("(the gateway accepted the message; no reply seen within the wait time)")
    for reply in replies:
        print(reply)
    return 0


def _chat(module: Any, gateway: str, account: Any, options: Any) -> int:
    """An interactive conversation: each line typed goes in as the customer's message."""
    from dataclasses import replace

    import aiohttp

    print(f"Chatting with {gateway} as {options.sender} on {account.get('account')}. Empty line or Ctrl-D to leave.")

    async def say(session: aiohttp.ClientSession, text: str) -> list[str]:
        result: list[str] = await module.simulate(session, gateway, account, replace(options, text=text))
        return result

    async def loop() -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    line = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    return
                if not line.strip():
                    return
                try:
                    replies = await say(session, line)
                except Exception as exc:
                    print(f"(failed: {exc})")
                    continue
                for reply in replies or ["(no reply)"]:
                    print(f"bot> {reply}")

    asyncio.run(loop())
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    settings = _settings(args)
    shown = {
        "source": settings.source,
        "http": {"host": settings.http.host, "port": settings.http.port, "max_body_bytes": settings.http.max_body_bytes},
        "mongo_url": settings.mongo_url or "(embedded)",
        "redis_url": settings.redis_url or "(embedded)",
        "data_dir": str(settings.data_dir),
        "channels": redact({k: list(v) for k, v in settings.channels.items()}),
        "sections": redact(dict(settings.sections)),
    }
    print(json.dumps(shown, ensure_ascii=False, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kefu", description="Kefu customer-service gateway")
    parser.add_argument("--config", help="path to kefu.yml (default: $KEFU_CONFIG or ./kefu.yml)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the gateway (HTTP, workers, scheduler)")
    run.add_argument(
        "--role", choices=["all", "web", "worker", "console"], default="all",
        help="web: webhooks, APIs and pages; console: the admin console alone (pages and live streams)",
    )
    run.add_argument("--port", type=int, help="override http.port (a worker serves only its probes and /metrics there)")
    run.set_defaults(func=cmd_run)

    sim = sub.add_parser("simulate", help="send a message to the running gateway as a platform would")
    sim.add_argument("channel", help="wechat, wecom, wecom_kf, dingtalk, email; or chat for an interactive conversation")
    sim.add_argument("--channel", dest="chat_channel", default="wechat", help="with `chat`: the channel to talk through")
    sim.add_argument("--account", help="account name (default: the first configured)")
    group = sim.add_mutually_exclusive_group()
    group.add_argument("--text")
    group.add_argument("--voice", help="audio file to send as a voice note")
    group.add_argument("--event", help="an event such as subscribe")
    sim.add_argument("--sender", default="oSimulatedCustomer")
    sim.add_argument("--url", help="gateway base URL (default: from http settings)")
    sim.add_argument("--wait", type=float, default=15.0, help="seconds to wait for replies")
    sim.set_defaults(func=cmd_simulate)

    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    show = cfg_sub.add_parser("show", help="print the effective configuration, secrets hidden")
    show.set_defaults(func=cmd_config_show)

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if (exc.name or "").split(".")[0] in _OUR_PACKAGES:
                raise
            log.debug("commands of %s unavailable: %s", name, exc)
            continue
        module.register(sub)
    _accept_global_options(parser)
    return parser


def _accept_global_options(parser: argparse.ArgumentParser) -> None:
    """Let ``--config`` and ``-v`` follow the sub-command too (``kefu run --config F``),
    as people type them. A sub-command with its own ``--config`` keeps it."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in action.choices.values():
            if "--config" not in child._option_string_actions:
                child.add_argument("--config", default=argparse.SUPPRESS, help="path to kefu.yml (default: $KEFU_CONFIG or ./kefu.yml)")
            if "--verbose" not in child._option_string_actions:
                child.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
            _accept_global_options(child)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(_log_section(args), verbose=args.verbose)
        return int(args.func(args))
    except KefuError as exc:
        print(f"kefu: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
