"""What the marketers' workspace pages share: the engines they work on and error mapping.

The pages (``views_marketing_*``) reach the preference services and the skills' services
through the console's deps; a gateway built without them answers 404 on these pages.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from aiohttp import web

from admin.state import console
from bot.errors import KefuError
from preferences.services import PreferenceServices
from skills.services import SkillServices
from webui.errors import BadInput, NotFound
from webui.forms import fields
from webui.routes import Handler
from webui.sessions import SESSION

log = logging.getLogger(__name__)


def log_refused(request: web.Request, code: str) -> None:
    """One line for a change refused with the reason shown beside the form (the same line
    the console's error middleware writes for the errors it answers)."""
    log.info("console: %s %s refused: %s (400)", request.method, request.path, code)


def prefs(request: web.Request) -> PreferenceServices:
    found = console(request).deps.preferences
    if found is None:
        raise NotFound("preferences are not configured on this gateway")
    return found


def skills(request: web.Request) -> SkillServices:
    found = console(request).deps.skills
    if found is None:
        raise NotFound("the business skills are not configured on this gateway")
    return found


def refusing(handler: Handler) -> Handler:
    """An engine's refusal (invalid setting, unknown customer, a customer's own choice)
    becomes the console's clear 4xx, with the engine's message."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (web.HTTPException, BadInput, NotFound):
            raise
        except KefuError as exc:
            err = BadInput(exc.message)
            err.status = int(getattr(exc, "status", 400))
            err.code = exc.code
            raise err from None

    return wrapped


def json_field(raw: str, name: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadInput(f"{name}: not valid JSON ({exc})") from None


async def version_field(request: web.Request) -> int:
    """The ``version`` a restore or undo form names."""
    try:
        return int((await fields(request)).get("version", ""))
    except ValueError:
        raise BadInput("version must be a number") from None


async def done(request: web.Request, where: str, message_key: str, **values: object) -> web.StreamResponse:
    """After a change: the message on the next page, and there."""
    c = console(request)
    await c.sessions.set_flash(request[SESSION], c.pages.text(request, message_key, **values))
    raise web.HTTPSeeOther(where)
