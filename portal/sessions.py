"""Where the portal keeps its sessions, apart from the console's (the mechanism is
:mod:`webui.sessions`)."""

from __future__ import annotations

from webui.sessions import SessionScheme

PORTAL_SESSIONS = SessionScheme(
    cookie="kefu_portal", path="/portal", prefix="kefu:portal:session:", user_prefix="kefu:portal:person-sessions:"
)
