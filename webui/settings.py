"""Settings every web app's section of kefu.yml has: its default language and time zone,
and whether cookies are marked Secure. Each is checked when the file is read, so a typo
stops the start instead of a page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from webui.words import LANGUAGES


def language_setting(section: Mapping[str, Any], default: str) -> str:
    language = str(section.get("language", default))
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    return language


def time_zone_setting(section: Mapping[str, Any], default: str) -> str:
    name = str(section.get("time_zone", default))
    try:
        ZoneInfo(name)  # read at configuration time, before the event loop serves anyone
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def secure_cookies_setting(section: Mapping[str, Any]) -> bool | None:
    """None: Secure whenever the request came over https."""
    secure = section.get("secure_cookies")
    return None if secure is None else bool(secure)
