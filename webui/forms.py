"""Reading form fields in any of our web apps: strings only, bounded, stripped."""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web

from webui.errors import BadInput


FORM = web.RequestKey("web_form", dict)


async def fields(request: web.Request) -> dict[str, str]:
    """The form's text fields (files ignored), read once per request; a body that is no
    form, or text that is not UTF-8, is a BadInput rather than replacement characters."""
    if FORM in request:
        return request[FORM]
    try:
        if request.content_type == "application/x-www-form-urlencoded":
            raw = await request.read()
            pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=200)
            data = dict(pairs)
        else:
            form = await request.post()
            data = {k: v for k, v in form.items() if isinstance(v, str)}
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"the form could not be read ({type(exc).__name__})") from None
    request[FORM] = data
    return data


def one(data: dict[str, str], name: str, *, max_len: int = 4000, required: bool = True) -> str:
    value = data.get(name, "").strip()
    if required and not value:
        raise BadInput(f"{name} is required")
    if len(value) > max_len:
        raise BadInput(f"{name} may have at most {max_len} characters")
    if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise BadInput(f"{name} holds characters that cannot be stored")
    return value
