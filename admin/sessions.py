"""Where the console keeps its sessions (the mechanism is :mod:`webui.sessions`)."""

from __future__ import annotations

from webui.sessions import SessionScheme

CONSOLE_SESSIONS = SessionScheme(
    cookie="kefu_console", path="/admin", prefix="kefu:console:session:", user_prefix="kefu:console:user-sessions:"
)
